"""The Anthropic Messages adapter: recorded traffic over a socket, requests, faults, properties."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chatscope.adapters.providers.anthropic.messages import AnthropicProvider
from chatscope.errors import (
    AuthenticationFailedError,
    ErrorCategory,
    InvalidRequestError,
    MissingProviderRuntimeError,
    ModelNotFoundError,
    ProviderError,
    ProviderNetworkError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
    redact_secrets,
)
from chatscope.services.events import (
    FinishEvent,
    FinishReason,
    ProviderEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallEvent,
    UsageEvent,
)
from chatscope.services.frozen import deep_freeze, thaw
from chatscope.services.messages import (
    Block,
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
    Usage,
)
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.tools.ports import ToolDeclaration
from tests.support.adapter_helpers import (
    JSON_OBJECTS,
    JSON_VALUES,
    ODD_KEYS,
    SOCKET,
    SPLITS,
    TRANSPORT_FAILURES,
    assemble,
    native_invocation,
    scripted,
    split_at,
    sse_frames,
    transport_failure_raised,
)
from tests.support.adapter_helpers import collect as _collect
from tests.support.adapter_helpers import collect_until_error as _collect_until_error
from tests.support.adapter_helpers import pieces as _pieces
from tests.support.adapter_helpers import responding_client as _mock_client
from tests.support.adapter_helpers import sse_response as _sse_response
from tests.support.cassettes import Interaction, fixture_path, load_cassette, raw_fixture
from tests.support.replay_server import ReplayServer, ScriptedResponse, replay_server

KEY = "sk-ant-api03-chatscope-test-key-000000000000"
TOOL_ID = re.compile(r"[a-zA-Z0-9_-]+")
STOP_REASONS = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}
REPLAYED = [
    "test_anthropic_model_instructions.yaml",
    "test_anthropic_model_thinking_part_stream.yaml",
    "test_stream_events_text.yaml",
    "test_thinking_prompt.yaml",
]
RECORDED_ERRORS = [
    (
        "test_anthropic_explicit_effort_xhigh_unsupported_model_errors.yaml",
        InvalidRequestError,
        ErrorCategory.INVALID_REQUEST,
        400,
        "This model does not support effort level 'xhigh'. "
        "Supported levels: high, low, max, medium.",
    ),
    (
        "test_model_name_suggestion[anthropic].yaml",
        ModelNotFoundError,
        ErrorCategory.NOT_FOUND,
        404,
        "model: claude-sonet-4-5",
    ),
]
MULTI_TURN = [
    "test_multiple_parallel_tool_calls.yaml",
    "test_anthropic_tool_with_thinking.yaml",
    "test_fixed_version_tool_chain_regression.yaml",
    "test_anthropic_model_thinking_part.yaml",
]
CODE_EXECUTION = "test_anthropic_code_execution_tool_stream.yaml"
RAW_SSE = "tool_use_response.txt"
SSE_RECORDINGS = [
    ("test_anthropic_model_thinking_part_stream.yaml", 0),
    ("test_fixed_version_tool_chain_regression.yaml", 0),
    ("test_fixed_version_tool_chain_regression.yaml", 1),
    ("test_stream_events_text.yaml", 0),
    ("test_thinking_prompt.yaml", 0),
]


# --- helpers ------------------------------------------------------------------------------------


_invocation = partial(native_invocation, provider="anthropic", key=KEY, model="claude-test")
_scripted = partial(scripted, keep_content_type=True)
_split_at = partial(split_at, wrap=True)
_frames = sse_frames
_assemble = partial(assemble, provider="anthropic", redacted=True)


def _sse(*payloads: Mapping[str, Any], padding: str = "") -> bytes:
    """An Anthropic-style stream; `padding` mimics the spaces Anthropic puts before a final `}`."""
    frames = []
    for payload in payloads:
        data = json.dumps(payload)
        frames.append(f"event: {payload['type']}\ndata: {data[:-1]}{padding}}}\n\n")
    return "".join(frames).encode()


def _message_start(input_tokens: int = 7, output_tokens: int = 1, **usage: int) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "content": [],
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens, **usage},
        },
    }


def _message_end(stop_reason: str = "end_turn", **usage: int) -> list[dict[str, Any]]:
    return [
        {"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": usage},
        {"type": "message_stop"},
    ]


def _text_block(index: int, pieces: Sequence[str]) -> list[dict[str, Any]]:
    deltas = [
        {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}}
        for p in pieces
    ]
    start = {
        "type": "content_block_start",
        "index": index,
        "content_block": {"type": "text", "text": ""},
    }
    return [start, *deltas, {"type": "content_block_stop", "index": index}]


def _tool_block(
    index: int, call_id: str, name: str, fragments: Sequence[str]
) -> list[dict[str, Any]]:
    start = {
        "type": "content_block_start",
        "index": index,
        "content_block": {"type": "tool_use", "id": call_id, "name": name, "input": {}},
    }
    deltas = [
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "input_json_delta", "partial_json": fragment},
        }
        for fragment in fragments
    ]
    return [start, *deltas, {"type": "content_block_stop", "index": index}]


def _thinking_block(index: int, pieces: Sequence[str], signature: str) -> list[dict[str, Any]]:
    start = {
        "type": "content_block_start",
        "index": index,
        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
    }
    deltas = [
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "thinking_delta", "thinking": p},
        }
        for p in pieces
    ]
    signed = {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "signature_delta", "signature": signature},
    }
    return [start, *deltas, signed, {"type": "content_block_stop", "index": index}]


def _summary(events: Sequence[ProviderEvent]) -> dict[str, Any]:
    """What a response said, in a form the recording can be compared with."""
    return {
        "text": "".join(e.text for e in events if isinstance(e, TextDelta)),
        "thinking": "".join(e.text for e in events if isinstance(e, ThinkingDelta)),
        "signatures": [e.signature for e in events if isinstance(e, ThinkingDelta) and e.signature],
        "redacted": [
            e.redacted_data for e in events if isinstance(e, ThinkingDelta) and e.redacted_data
        ],
        "tool_calls": [
            (e.call.id, e.call.name, thaw(e.call.arguments))
            for e in events
            if isinstance(e, ToolCallEvent)
        ],
        "usage": [e.usage for e in events if isinstance(e, UsageEvent)],
        "finish": [(e.reason, e.raw) for e in events if isinstance(e, FinishEvent)],
    }


def _expected_usage(usage: Mapping[str, Any]) -> Usage:
    cache_read = usage.get("cache_read_input_tokens") or 0
    cache_write = usage.get("cache_creation_input_tokens") or 0
    return Usage(
        usage["input_tokens"] + cache_read + cache_write, usage["output_tokens"], cache_read
    )


def _expected_from_json(body: Mapping[str, Any]) -> dict[str, Any]:
    """An independent reading of a recorded whole-message body."""
    blocks = body["content"]
    return {
        "text": "".join(b["text"] for b in blocks if b["type"] == "text"),
        "thinking": "".join(b["thinking"] for b in blocks if b["type"] == "thinking"),
        "signatures": [b["signature"] for b in blocks if b["type"] == "thinking"],
        "redacted": [b["data"] for b in blocks if b["type"] == "redacted_thinking"],
        "tool_calls": [(b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"],
        "usage": [_expected_usage(body["usage"])],
        "finish": [(STOP_REASONS[body["stop_reason"]], body["stop_reason"])],
    }


def _expected_from_sse(body: bytes) -> dict[str, Any]:
    """An independent reading of a recorded stream: its `data:` lines, one JSON payload each."""
    payloads = [
        json.loads(line.removeprefix("data:"))
        for line in body.decode().splitlines()
        if line.startswith("data:")
    ]
    deltas = [p for p in payloads if p["type"] == "content_block_delta"]
    tools = [p for p in payloads if p["type"] == "content_block_start"]
    tools = [p for p in tools if p["content_block"]["type"] == "tool_use"]
    final = [p for p in payloads if p["type"] == "message_delta"][-1]
    usage = next(p for p in payloads if p["type"] == "message_start")["message"]["usage"]
    usage = {**usage, **{k: v for k, v in final["usage"].items() if v is not None}}

    def tool_input(index: int) -> Any:
        text = "".join(
            d["delta"]["partial_json"]
            for d in deltas
            if d["index"] == index and d["delta"]["type"] == "input_json_delta"
        )
        return json.loads(text) if text else {}

    def joined(kind: str, key: str) -> list[str]:
        return [d["delta"][key] for d in deltas if d["delta"]["type"] == kind]

    stop = final["delta"]["stop_reason"]
    return {
        "text": "".join(joined("text_delta", "text")),
        "thinking": "".join(joined("thinking_delta", "thinking")),
        "signatures": joined("signature_delta", "signature"),
        "redacted": [],
        "tool_calls": [
            (t["content_block"]["id"], t["content_block"]["name"], tool_input(t["index"]))
            for t in tools
        ],
        "usage": [_expected_usage(usage)],
        "finish": [(STOP_REASONS[stop], stop)],
    }


def _expected(interaction: Interaction) -> dict[str, Any]:
    if interaction.is_sse:
        return _expected_from_sse(interaction.body)
    return _expected_from_json(interaction.json())


def _wire_content(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    content = message["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _history_from_wire(
    messages: Iterable[Mapping[str, Any]], names: Mapping[str, str] | None = None
) -> tuple[Message, ...]:
    """Recorded wire messages as the neutral history chatscope would hold, one for one."""
    names = dict(names or {})
    history = []
    for message in messages:
        blocks = tuple(_block_from_wire(block, names) for block in _wire_content(message))
        if message["role"] == "assistant":
            role = Role.ASSISTANT
        elif all(isinstance(block, ToolResultBlock) for block in blocks):
            role = Role.TOOL
        else:
            role = Role.USER
        history.append(Message(role, blocks))
    return tuple(history)


def _block_from_wire(block: Mapping[str, Any], names: dict[str, str]) -> Block:
    kind = block["type"]
    if kind == "text":
        return TextBlock(block["text"])
    if kind == "thinking":
        return ThinkingBlock(block["thinking"], signature=block["signature"], provider="anthropic")
    if kind == "redacted_thinking":
        return ThinkingBlock("", redacted_data=block["data"], provider="anthropic")
    if kind == "tool_use":
        names[block["id"]] = block["name"]
        return ToolCallBlock.create(block["id"], block["name"], block["input"])
    assert kind == "tool_result", kind
    name = names[block["tool_use_id"]]
    if block.get("is_error"):
        return ToolResultBlock(block["tool_use_id"], name, error=block["content"])
    return ToolResultBlock(block["tool_use_id"], name, result=block["content"])


def _invocation_from_request(
    base_url: str, body: Mapping[str, Any], history: Sequence[Message]
) -> ModelInvocation:
    """The invocation that should make the adapter send the recorded request."""
    tools = [
        ToolDeclaration(t["name"], t.get("description", ""), deep_freeze(t["input_schema"]))
        for t in body.get("tools", ())
        if "input_schema" in t
    ]
    own = {"model", "messages", "system", "tools", "tool_choice"}
    params = {key: value for key, value in body.items() if key not in own}
    return _invocation(
        base_url,
        history,
        model=body["model"],
        tools=tools,
        params=params,
        system=body.get("system"),
    )


def _comparable(body: Mapping[str, Any]) -> dict[str, Any]:
    """A request body without what chatscope does not send: `tool_choice`, `is_error: false`."""
    messages = [
        {
            "role": message["role"],
            "content": [
                {k: v for k, v in block.items() if not (k == "is_error" and v is False)}
                for block in _wire_content(message)
            ],
        }
        for message in body["messages"]
    ]
    return {**{k: v for k, v in body.items() if k != "tool_choice"}, "messages": messages}


def _ok_stream() -> httpx.Response:
    return _sse_response(_sse(_message_start(), *_text_block(0, ["ok"]), *_message_end()))


# --- recorded traffic over a real socket --------------------------------------------------------


def test_every_anthropic_fixture_is_replayed() -> None:
    """Each recording in fixtures/anthropic is exercised by one of the replay tests below."""
    covered = {*REPLAYED, *MULTI_TURN, CODE_EXECUTION, RAW_SSE}
    covered |= {name for name, *_ in RECORDED_ERRORS}
    assert covered == {path.name for path in fixture_path("anthropic").iterdir()}


@pytest.mark.parametrize("name", REPLAYED)
async def test_recorded_response_replays_to_the_recorded_content(name: str) -> None:
    """A recorded 200 sends the recorded request and parses to the recorded text, calls, usage."""
    (interaction,) = load_cassette(f"anthropic/{name}")
    request = interaction.request_body
    with replay_server(_scripted(interaction)) as server:
        async with httpx.AsyncClient() as client:
            history = _history_from_wire(request["messages"])
            invocation = _invocation_from_request(server.url, request, history)
            events = await _collect(AnthropicProvider(client), invocation)
    assert _comparable(server.requests[0].json()) == _comparable(request)
    assert server.requests[0].headers["x-api-key"] == KEY
    assert _summary(events) == _expected(interaction)
    assert isinstance(events[-1], FinishEvent)


async def test_raw_sdk_fixture_replays_text_and_a_fragmented_tool_call() -> None:
    """The SDK's raw tool_use stream gives its text, the reassembled Paris call and its usage."""
    body = raw_fixture(f"anthropic/{RAW_SSE}")
    with replay_server(ScriptedResponse.sse(body)) as server:
        async with httpx.AsyncClient() as client:
            events = await _collect(AnthropicProvider(client), _invocation(server.url))
    summary = _summary(events)
    assert summary["text"] == "I'll check the current weather in Paris for you."
    assert summary["tool_calls"] == [
        ("toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather", {"location": "Paris"})
    ]
    assert summary["usage"] == [Usage(input_tokens=377, output_tokens=65)]
    assert summary["finish"] == [(FinishReason.TOOL_CALLS, "tool_use")]
    assert summary == _expected_from_sse(body)


async def test_streamed_thinking_ends_with_its_signature() -> None:
    """Thinking deltas come first, then one signature-only delta, then the visible text."""
    interaction = load_cassette("anthropic/test_thinking_prompt.yaml")[0]
    with replay_server(_scripted(interaction)) as server:
        async with httpx.AsyncClient() as client:
            events = await _collect(AnthropicProvider(client), _invocation(server.url))
    thinking = [e for e in events if isinstance(e, ThinkingDelta)]
    assert [e.signature is not None for e in thinking] == [False] * 29 + [True]
    assert thinking[-1].text == ""
    assert thinking[-1].signature is not None
    assert thinking[-1].signature.startswith("EvoCCkYICxgCKkCY593DZILKPT3")
    assert events.index(thinking[-1]) < min(
        i for i, e in enumerate(events) if isinstance(e, TextDelta)
    )
    assert _summary(events)["text"] == "- Captain\n- Scoop"
    assert _summary(events)["usage"] == [Usage(input_tokens=46, output_tokens=84)]


@pytest.mark.parametrize(("name", "kind", "category", "status", "message"), RECORDED_ERRORS)
async def test_recorded_error_response_raises_its_typed_error(
    name: str, kind: type[ProviderError], category: ErrorCategory, status: int, message: str
) -> None:
    """A recorded 400/404 becomes the typed error with its category, status and message."""
    interaction = load_cassette(f"anthropic/{name}")[0]
    request = interaction.request_body
    with replay_server(_scripted(interaction)) as server:
        async with httpx.AsyncClient() as client:
            invocation = _invocation_from_request(
                server.url, request, _history_from_wire(request["messages"])
            )
            with pytest.raises(kind) as caught:
                await _collect(AnthropicProvider(client), invocation)
    assert type(caught.value) is kind
    assert caught.value.category is category
    assert caught.value.status == status
    assert caught.value.provider_message == message
    assert _comparable(server.requests[0].json()) == _comparable(request)


async def test_code_execution_stream_fails_on_the_server_tool_block() -> None:
    """Server tool blocks cannot be represented: the stream stops with an error naming the type."""
    interaction = load_cassette(f"anthropic/{CODE_EXECUTION}")[0]
    events: list[ProviderEvent] = []
    with replay_server(_scripted(interaction)) as server:
        async with httpx.AsyncClient() as client:
            with pytest.raises(StreamProtocolError, match="'server_tool_use'"):
                await _collect_until_error(
                    AnthropicProvider(client), _invocation(server.url), events
                )
    summary = _summary(events)
    assert summary["thinking"] == "Let me calculate this mathematical expression."
    assert summary["signatures"][0].startswith("EusBClsIDRgCKkBpzetW9oKOZtFP6IeFJJr3gnQB")
    assert summary["text"] == "I'll calculate that expression for you right away!"
    assert summary["finish"] == []


@pytest.mark.parametrize("name", MULTI_TURN)
async def test_multi_turn_recording_is_continued_with_the_recorded_requests(name: str) -> None:
    """Parsed turns plus recorded tool results rebuild every later request exactly."""
    interactions = load_cassette(f"anthropic/{name}")
    recorded = [interaction.request_body for interaction in interactions]
    with replay_server(*map(_scripted, interactions)) as server:
        async with httpx.AsyncClient() as client:
            provider = AnthropicProvider(client)
            history = _history_from_wire(recorded[0]["messages"])
            for turn, interaction in enumerate(interactions):
                invocation = _invocation_from_request(server.url, recorded[turn], history)
                events = await _collect(provider, invocation)
                assert _comparable(server.requests[turn].json()) == _comparable(recorded[turn])
                assert _summary(events) == _expected(interaction)
                if turn + 1 < len(interactions):
                    history += (_assemble(events),)
                    names = {c.id: c.name for m in history for c in m.tool_calls}
                    later = recorded[turn + 1]["messages"][len(history) :]
                    history += _history_from_wire(later, names)
    assert len(server.requests) == len(interactions) >= 2


# --- the request: URL, headers, body ------------------------------------------------------------


async def test_request_has_the_url_headers_and_body_of_the_invocation() -> None:
    """URL, method, auth headers and body fields all come from the invocation."""
    seen: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _ok_stream()

    tool = ToolDeclaration(
        "get_weather", "Weather of a city", deep_freeze({"type": "object", "properties": {}})
    )
    invocation = _invocation(
        "https://api.anthropic.test/",
        tools=[tool],
        params={"thinking": {"type": "enabled", "budget_tokens": 1024}, "temperature": 1.0},
        system="Be brief.",
        max_output_tokens=2048,
    )
    async with _mock_client(respond) as client:
        await _collect(AnthropicProvider(client), invocation)
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "https://api.anthropic.test/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert json.loads(request.content) == {
        "model": "claude-test",
        "max_tokens": 2048,
        "stream": True,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "temperature": 1.0,
        "system": "Be brief.",
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather of a city",
                "input_schema": {"type": "object", "properties": {}},
            }
        ],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }


async def test_provider_holds_its_client_name_and_sent_history() -> None:
    """No per-call state can hide on the adapter: no instance dict, and three slots, its client,
    its name and the wire form of the history it last sent (reused only for the same messages)."""
    async with httpx.AsyncClient() as client:
        provider = AnthropicProvider(client, name="claude-proxy")
        slots = {
            slot for kind in AnthropicProvider.__mro__ for slot in getattr(kind, "__slots__", ())
        }
        assert slots == {"_client", "_name", "_sent"}
        assert not hasattr(provider, "__dict__")
        assert provider.name == "claude-proxy"


async def test_stream_false_sends_a_whole_body_request_and_parses_json() -> None:
    """`stream: False` in model params asks for one JSON body, which parses to the same events."""
    seen: list[httpx.Request] = []
    body = {
        "content": [{"type": "text", "text": "Paris."}],
        "stop_reason": "max_tokens",
        "usage": {"input_tokens": 3, "output_tokens": 2, "cache_read_input_tokens": 5},
    }

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=body)

    invocation = _invocation("https://api.test", params={"stream": False, "max_tokens": 7})
    async with _mock_client(respond) as client:
        events = await _collect(AnthropicProvider(client), invocation)
    sent = json.loads(seen[0].content)
    assert (sent["stream"], sent["max_tokens"]) == (False, 7)
    assert events == [
        TextDelta("Paris."),
        UsageEvent(Usage(input_tokens=8, output_tokens=2, cached_tokens=5)),
        FinishEvent(FinishReason.LENGTH, raw="max_tokens"),
    ]


async def test_missing_base_url_raises_with_the_runtime_id() -> None:
    """Without a base URL there is no default host: the call fails naming the runtime."""
    async with _mock_client(lambda request: _ok_stream()) as client:
        with pytest.raises(MissingProviderRuntimeError) as caught:
            await _collect(AnthropicProvider(client), _invocation(None))
    assert caught.value.missing == ("base_url",)
    assert caught.value.runtime_id == "rt-test"


async def test_foreign_ids_are_rewritten_and_thinking_of_other_providers_left_out() -> None:
    """A Gemini-style id is made valid for call and result alike; Gemini thinking is omitted."""
    seen: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _ok_stream()

    call = ToolCallBlock.create("gemini_0_tools.search:1", "search", {"q": "x"})
    history = (
        Message.user("find x"),
        Message(
            Role.ASSISTANT,
            (
                ThinkingBlock("gemini thoughts", signature="Zm9v", provider="gemini"),
                ThinkingBlock("mine", signature="sig-1", provider="anthropic"),
                call,
            ),
        ),
        Message(Role.TOOL, (ToolResultBlock(call.id, "search", error="boom"),)),
    )
    async with _mock_client(respond) as client:
        await _collect(AnthropicProvider(client), _invocation("https://api.test", history))
    messages = json.loads(seen[0].content)["messages"]
    thinking, tool_use = messages[1]["content"]
    assert thinking == {"type": "thinking", "thinking": "mine", "signature": "sig-1"}
    (result,) = messages[2]["content"]
    assert tool_use["id"] == result["tool_use_id"]
    assert tool_use["id"].startswith("gemini_0_tools_search_1_")
    assert TOOL_ID.fullmatch(tool_use["id"])
    assert result == {
        "type": "tool_result",
        "tool_use_id": tool_use["id"],
        "content": "Error: boom",
        "is_error": True,
    }


# --- malformed input and faults -----------------------------------------------------------------


async def test_http_529_is_an_overloaded_server_error() -> None:
    """Anthropic's 529 status maps to the overloaded category with its message kept."""
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with replay_server(ScriptedResponse.json_body(error, status=529)) as server:
        async with httpx.AsyncClient() as client:
            with pytest.raises(ServerError) as caught:
                await _collect(AnthropicProvider(client), _invocation(server.url))
    assert (caught.value.category, caught.value.status) == (ErrorCategory.OVERLOADED, 529)
    assert caught.value.provider_message == "Overloaded"


async def test_connection_dropped_mid_stream_is_a_network_error() -> None:
    """The server closing the socket after two events raises ProviderNetworkError, not a hang."""
    body = raw_fixture(f"anthropic/{RAW_SSE}")
    events: list[ProviderEvent] = []
    with replay_server(ScriptedResponse.sse(body, drop_after=2)) as server:
        async with httpx.AsyncClient() as client:
            with pytest.raises(ProviderNetworkError) as caught:
                await _collect_until_error(
                    AnthropicProvider(client), _invocation(server.url), events
                )
    assert caught.value.category is ErrorCategory.NETWORK
    assert isinstance(caught.value.__cause__, httpx.TransportError)
    assert events == []


# --- properties ---------------------------------------------------------------------------------

WIRE_IDS = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-",
    min_size=1,
    max_size=24,
)
NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
SIGNATURES = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=",
    min_size=1,
    max_size=40,
)


async def _events_of(*chunks: bytes) -> list[ProviderEvent]:
    async with _mock_client(lambda request: _sse_response(*chunks)) as client:
        return await _collect(AnthropicProvider(client), _invocation("https://api.test"))


@given(recording=st.sampled_from(SSE_RECORDINGS), points=SPLITS)
async def test_any_chunking_of_a_recorded_stream_gives_the_same_events(
    recording: tuple[str, int], points: list[int]
) -> None:
    """Cutting a recorded SSE body at arbitrary byte offsets never changes the events."""
    name, index = recording
    body = load_cassette(f"anthropic/{name}")[index].body
    assert await _events_of(*_split_at(body, points)) == await _events_of(body)


@SOCKET
@given(pieces=st.integers(min_value=1, max_value=120))
async def test_any_chunking_over_a_real_socket_gives_the_same_events(
    socket_server: ReplayServer, pieces: int
) -> None:
    """The raw SDK stream sent in n chunked-encoding pieces over TCP parses the same for every n."""
    body = raw_fixture(f"anthropic/{RAW_SSE}")
    socket_server.enqueue(ScriptedResponse.sse(body, pieces=pieces))
    async with httpx.AsyncClient() as client:
        events = await _collect(AnthropicProvider(client), _invocation(socket_server.url))
    assert _summary(events) == _expected_from_sse(body)


@given(arguments=JSON_OBJECTS, points=SPLITS, padding=st.sampled_from(["", "   ", " " * 13]))
async def test_tool_input_fragments_split_anywhere_reassemble(
    arguments: dict[str, Any], points: list[int], padding: str
) -> None:
    """Tool input JSON cut into arbitrary input_json_delta fragments parses to the same dict."""
    fragments = _pieces(json.dumps(arguments), points)
    body = _sse(
        _message_start(),
        *_tool_block(0, "toolu_x", "tool", fragments),
        *_message_end("tool_use", output_tokens=9),
        padding=padding,
    )
    events = await _events_of(body)
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert [(c.id, c.name, thaw(c.arguments)) for c in calls] == [("toolu_x", "tool", arguments)]
    assert events[-1] == FinishEvent(FinishReason.TOOL_CALLS, raw="tool_use")


@given(text=st.text(), points=SPLITS, padding=st.sampled_from(["", " ", "      "]))
async def test_text_split_into_deltas_streams_back_exactly(
    text: str, points: list[int], padding: str
) -> None:
    """Any text, newlines and quotes included, split into deltas, arrives joined unchanged."""
    body = _sse(
        _message_start(), *_text_block(0, _pieces(text, points)), *_message_end(), padding=padding
    )
    events = await _events_of(body)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == text


@given(
    input_tokens=st.integers(0, 10**6),
    cache_read=st.integers(0, 10**6),
    cache_write=st.integers(0, 10**6),
    first_output=st.integers(0, 50),
    extra_output=st.integers(0, 10**5),
    repeat_input=st.booleans(),
)
async def test_usage_is_reported_once_with_cumulative_output(
    input_tokens: int,
    cache_read: int,
    cache_write: int,
    first_output: int,
    extra_output: int,
    repeat_input: bool,
) -> None:
    """message_start and a cumulative message_delta give one usage event, none double-counted."""
    final = first_output + extra_output
    delta_usage = {"output_tokens": final}
    if repeat_input:
        delta_usage |= {"input_tokens": input_tokens, "cache_read_input_tokens": cache_read}
    body = _sse(
        _message_start(
            input_tokens,
            first_output,
            cache_read_input_tokens=cache_read,
            cache_creation_input_tokens=cache_write,
        ),
        *_text_block(0, ["a", "b"]),
        *_message_end("end_turn", **delta_usage),
    )
    events = await _events_of(body)
    expected = Usage(input_tokens + cache_read + cache_write, final, cache_read)
    assert [e.usage for e in events if isinstance(e, UsageEvent)] == [expected]


@given(stop_reason=st.sampled_from(sorted(STOP_REASONS)) | st.text(min_size=1, max_size=12))
async def test_stop_reason_maps_to_one_final_finish_event(stop_reason: str) -> None:
    """Known stop reasons map to their finish reason, any other to OTHER, always last and once."""
    body = _sse(_message_start(), *_text_block(0, ["x"]), *_message_end(stop_reason))
    events = await _events_of(body)
    expected = STOP_REASONS.get(stop_reason, FinishReason.OTHER)
    assert [e for e in events if isinstance(e, FinishEvent)] == [
        FinishEvent(expected, raw=stop_reason)
    ]
    assert events[-1] == FinishEvent(expected, raw=stop_reason)


RESPONSE_BLOCKS = st.one_of(
    st.tuples(st.just("text"), st.text(min_size=1), SPLITS),
    st.tuples(st.just("thinking"), st.text(min_size=1), SPLITS, SIGNATURES),
    st.tuples(st.just("redacted_thinking"), SIGNATURES),
    st.tuples(st.just("tool_use"), WIRE_IDS, NAMES, JSON_OBJECTS, SPLITS),
)


def _as_json_block(block: tuple[Any, ...]) -> dict[str, Any]:
    if block[0] == "text":
        return {"type": "text", "text": block[1]}
    if block[0] == "thinking":
        return {"type": "thinking", "thinking": block[1], "signature": block[3]}
    if block[0] == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block[1]}
    return {"type": "tool_use", "id": block[1], "name": block[2], "input": block[3]}


def _as_sse_block(index: int, block: tuple[Any, ...]) -> list[dict[str, Any]]:
    if block[0] == "text":
        return _text_block(index, _pieces(block[1], block[2]))
    if block[0] == "thinking":
        return _thinking_block(index, _pieces(block[1], block[2]), block[3])
    if block[0] == "redacted_thinking":
        start = {
            "type": "content_block_start",
            "index": index,
            "content_block": _as_json_block(block),
        }
        return [start, {"type": "content_block_stop", "index": index}]
    return _tool_block(index, block[1], block[2], _pieces(json.dumps(block[3]), block[4]))


@given(
    blocks=st.lists(RESPONSE_BLOCKS, min_size=1, max_size=5),
    stop_reason=st.sampled_from(sorted(STOP_REASONS)),
    usage=st.tuples(st.integers(0, 10**5), st.integers(0, 10**5)),
)
async def test_streamed_and_whole_body_forms_of_a_message_agree(
    blocks: list[tuple[Any, ...]], stop_reason: str, usage: tuple[int, int]
) -> None:
    """The same message as SSE (arbitrarily fragmented) and as JSON folds to the same reply."""
    whole = {
        "content": [_as_json_block(block) for block in blocks],
        "stop_reason": stop_reason,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }
    streamed = _sse(
        _message_start(usage[0], 1),
        *[payload for i, block in enumerate(blocks) for payload in _as_sse_block(i, block)],
        *_message_end(stop_reason, output_tokens=usage[1]),
    )
    async with _mock_client(lambda request: httpx.Response(200, json=whole)) as client:
        from_json = await _collect(AnthropicProvider(client), _invocation("https://api.test"))
    from_sse = await _events_of(streamed)
    assert _summary(from_json) == _expected_from_json(whole)
    assert _assemble(from_sse) == _assemble(from_json)
    assert from_sse[-2:] == from_json[-2:]
    assert from_json[-2:] == [
        UsageEvent(Usage(usage[0], usage[1])),
        FinishEvent(STOP_REASONS[stop_reason], raw=stop_reason),
    ]


@given(recording=st.sampled_from(SSE_RECORDINGS), data=st.data())
async def test_a_stream_cut_before_message_stop_is_an_error(
    recording: tuple[str, int], data: st.DataObject
) -> None:
    """Any prefix of a recorded stream ending at an event boundary before message_stop fails."""
    name, index = recording
    body = load_cassette(f"anthropic/{name}")[index].body
    frames = [frame for frame in body.split(b"\n\n") if frame.strip()]
    cut = data.draw(st.integers(min_value=0, max_value=len(frames) - 2))
    truncated = b"\n\n".join(frames[:cut]) + (b"\n\n" if cut else b"")
    with pytest.raises(StreamProtocolError, match="before message_stop"):
        await _events_of(truncated)


@given(
    block_type=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=30).filter(
        lambda kind: kind not in {"text", "thinking", "redacted_thinking", "tool_use"}
    ),
    whole_body=st.booleans(),
)
async def test_unknown_block_types_are_errors_naming_the_type(
    block_type: str, whole_body: bool
) -> None:
    """A content block of a type chatscope cannot represent is refused by name, never dropped."""
    block = {"type": block_type, "id": "x", "content": []}
    if whole_body:
        payload = {"content": [block], "stop_reason": "end_turn", "usage": {}}
        response = httpx.Response(200, json=payload)
    else:
        start = {"type": "content_block_start", "index": 0, "content_block": block}
        response = _sse_response(_sse(_message_start(), start, *_message_end()))
    async with _mock_client(lambda request: response) as client:
        with pytest.raises(StreamProtocolError, match=re.escape(repr(block_type))):
            await _collect(AnthropicProvider(client), _invocation("https://api.test"))


THINKING_PROVIDERS = st.sampled_from(["anthropic", "gemini", None])
OUTCOMES = st.one_of(
    st.builds(lambda text: {"result": text}, st.text(max_size=20)),
    st.builds(lambda text: {"error": text}, st.text(max_size=20)),
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[Message, ...]:
    """Conversations with text, thinking of several providers and paired calls and results."""
    ids = iter(draw(st.lists(st.text(max_size=16), min_size=12, max_size=12, unique=True)))
    messages: list[Message] = []
    for _ in range(draw(st.integers(1, 3))):
        messages.append(Message.user(draw(st.text(max_size=20))))
        for _ in range(draw(st.integers(0, 2))):
            thinking = draw(
                st.lists(
                    st.builds(
                        ThinkingBlock,
                        st.text(max_size=20),
                        signature=st.none() | SIGNATURES,
                        redacted_data=st.none() | SIGNATURES,
                        provider=THINKING_PROVIDERS,
                    ),
                    max_size=2,
                )
            )
            texts = draw(st.lists(st.builds(TextBlock, st.text(max_size=20)), max_size=2))
            calls = [
                ToolCallBlock.create(next(ids), draw(NAMES), draw(JSON_OBJECTS))
                for _ in range(draw(st.integers(0, 2)))
            ]
            messages.append(Message(Role.ASSISTANT, (*thinking, *texts, *calls)))
            if calls:
                results = [ToolResultBlock(c.id, c.name, **draw(OUTCOMES)) for c in calls]
                messages.append(Message(Role.TOOL, tuple(results)))
    return tuple(messages)


def _expected_wire_blocks(history: Sequence[Message]) -> list[tuple[Any, ...]]:
    """What should reach the wire, in order: everything but empty text and unusable thinking."""
    expected: list[tuple[Any, ...]] = []
    for message in history:
        for block in message.blocks:
            if isinstance(block, TextBlock) and block.text:
                expected.append(("text", block.text))
            elif isinstance(block, ThinkingBlock) and block.provider == "anthropic":
                if block.redacted_data is not None:
                    expected.append(("redacted_thinking", block.redacted_data))
                elif block.signature is not None:
                    expected.append(("thinking", block.text, block.signature))
            elif isinstance(block, ToolCallBlock):
                expected.append(("tool_use", block.name, thaw(block.arguments)))
            elif isinstance(block, ToolResultBlock):
                expected.append(("tool_result", block.content, block.is_error))
    return expected


def _wire_blocks(messages: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    seen: list[tuple[Any, ...]] = []
    for message in messages:
        for block in message["content"]:
            kind = block["type"]
            if kind == "text":
                seen.append(("text", block["text"]))
            elif kind == "redacted_thinking":
                seen.append((kind, block["data"]))
            elif kind == "thinking":
                seen.append((kind, block["thinking"], block["signature"]))
            elif kind == "tool_use":
                seen.append((kind, block["name"], block["input"]))
            else:
                seen.append((kind, block["content"], block.get("is_error", False)))
    return seen


async def _sent_messages(history: Sequence[Message]) -> list[dict[str, Any]]:
    seen: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _ok_stream()

    async with _mock_client(respond) as client:
        await _collect(AnthropicProvider(client), _invocation("https://api.test", history))
    messages: list[dict[str, Any]] = json.loads(seen[0].content)["messages"]
    return messages


@given(history=histories())
async def test_histories_map_to_alternating_turns_in_order(history: tuple[Message, ...]) -> None:
    """Every block that can be sent is sent, in order, in turns that alternate user/assistant."""
    messages = await _sent_messages(history)
    roles = [message["role"] for message in messages]
    assert all(a != b for a, b in itertools.pairwise(roles))
    assert all(message["content"] for message in messages)
    assert _wire_blocks(messages) == _expected_wire_blocks(history)


@given(history=histories())
async def test_every_tool_use_is_answered_by_its_result_in_the_next_turn(
    history: tuple[Message, ...],
) -> None:
    """Re-mapped ids match Anthropic's pattern, stay distinct and pair each call with its result."""
    messages = await _sent_messages(history)
    neutral_ids = [call.id for message in history for call in message.tool_calls]
    wire_ids: list[str] = []
    for position, message in enumerate(messages):
        uses = [b["id"] for b in message["content"] if b["type"] == "tool_use"]
        wire_ids += uses
        if uses:
            answer = messages[position + 1]
            assert answer["role"] == "user"
            results = [b["tool_use_id"] for b in answer["content"] if b["type"] == "tool_result"]
            assert results == uses
    assert all(TOOL_ID.fullmatch(wire_id) for wire_id in wire_ids)
    assert len(set(wire_ids)) == len(wire_ids) == len(neutral_ids)
    assert [i for i, n in zip(wire_ids, neutral_ids, strict=True) if TOOL_ID.fullmatch(n)] == [
        n for n in neutral_ids if TOOL_ID.fullmatch(n)
    ]


@given(call_id=st.text(max_size=40))
async def test_any_call_id_becomes_a_valid_id_shared_by_call_and_result(call_id: str) -> None:
    """Whatever another provider used as an id, call and result carry the same valid wire id."""
    call = ToolCallBlock.create(call_id, "tool", {})
    history = (
        Message.user("go"),
        Message(Role.ASSISTANT, (call,)),
        Message(Role.TOOL, (ToolResultBlock(call_id, "tool", result="done"),)),
    )
    messages = await _sent_messages(history)
    wire_id = messages[1]["content"][0]["id"]
    assert messages[2]["content"][0]["tool_use_id"] == wire_id
    assert TOOL_ID.fullmatch(wire_id)
    if TOOL_ID.fullmatch(call_id):
        assert wire_id == call_id


ANTHROPIC_KEYS = st.from_regex(r"sk-ant-api03-[A-Za-z0-9_-]{20,60}", fullmatch=True)


@given(
    key=ANTHROPIC_KEYS | ODD_KEYS,
    status=st.sampled_from([400, 401, 403, 404, 413, 429, 500, 529]),
    shape=st.sampled_from(["anthropic", "plain", "sse"]),
)
async def test_a_key_echoed_by_the_server_never_reaches_an_error_message(
    key: str, status: int, shape: str
) -> None:
    """However the server echoes the call's key back, the raised error does not contain it."""
    message = f"invalid x-api-key {key} (key={key})"

    def respond(request: httpx.Request) -> httpx.Response:
        if shape == "sse":
            error = {"type": "error", "error": {"type": "authentication_error", "message": message}}
            return _sse_response(_sse(_message_start(), error))
        if shape == "plain":
            return httpx.Response(status, text=message)
        error = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
        return httpx.Response(status, json=error)

    async with _mock_client(respond) as client:
        with pytest.raises(ProviderError) as caught:
            await _collect(AnthropicProvider(client), _invocation("https://api.test", key=key))
    assert key not in str(caught.value)
    assert key not in caught.value.provider_message


@given(
    calls=st.lists(
        st.tuples(
            st.none() | ANTHROPIC_KEYS,
            NAMES,
            st.sampled_from(["https://a.test", "http://127.0.0.1:8080", "https://b.test/proxy"]),
            st.integers(1, 10**5),
        ),
        min_size=1,
        max_size=5,
    )
)
async def test_each_call_carries_only_its_own_invocation_values(
    calls: list[tuple[str | None, str, str, int]],
) -> None:
    """Interleaved invocations through one provider never see each other's key, model or URL."""
    seen: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _ok_stream()

    async with _mock_client(respond) as client:
        provider = AnthropicProvider(client)
        for key, model, url, max_tokens in calls:
            invocation = _invocation(url, key=key, model=model, max_output_tokens=max_tokens)
            await _collect(provider, invocation)
    sent = [
        (
            r.headers.get("x-api-key"),
            json.loads(r.content)["model"],
            str(r.url).removesuffix("/v1/messages"),
            json.loads(r.content)["max_tokens"],
        )
        for r in seen
    ]
    assert sent == calls
    assert all("authorization" not in r.headers for r in seen)


@given(
    params=st.dictionaries(
        st.sampled_from(
            ["temperature", "top_k", "metadata", "stop_sequences", "max_tokens", "thinking"]
        ),
        JSON_VALUES,
        max_size=4,
    )
)
async def test_model_params_reach_the_top_level_of_the_body(params: dict[str, Any]) -> None:
    """Every model param is sent as given, and max_tokens falls back to the ephemeral setting."""
    seen: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _ok_stream()

    async with _mock_client(respond) as client:
        await _collect(AnthropicProvider(client), _invocation("https://api.test", params=params))
    body = json.loads(seen[0].content)
    assert {key: body[key] for key in params} == params
    assert body["max_tokens"] == params.get("max_tokens", 1024)
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


@given(recording=st.sampled_from(SSE_RECORDINGS), data=st.data())
async def test_a_corrupted_data_line_is_a_protocol_error(
    recording: tuple[str, int], data: st.DataObject
) -> None:
    """Garbage or a wrong shape in place of any event's JSON fails the stream as malformed."""
    name, index = recording
    frames = _frames(load_cassette(f"anthropic/{name}")[index].body)
    target = data.draw(st.integers(min_value=0, max_value=len(frames) - 1))
    garbage = data.draw(st.sampled_from(["{", "not json", '{"type": ', "[1, 2]", '"text"', "{}"]))
    event = frames[target].split("\n")[0]
    frames[target] = f"{event}\ndata: {garbage}"
    with pytest.raises(StreamProtocolError, match="malformed"):
        await _events_of("\n\n".join(frames).encode() + b"\n\n")


@given(
    raw=JSON_VALUES.filter(lambda value: not isinstance(value, dict)).map(json.dumps)
    | JSON_OBJECTS.map(lambda value: json.dumps(value)[:-1]),
    points=SPLITS,
)
async def test_tool_input_that_is_not_a_json_object_gives_an_arguments_error(
    raw: str, points: list[int]
) -> None:
    """Truncated JSON or a non-object as tool input, however fragmented, gives a call with no
    arguments whose `arguments_error` says why, for the model to correct."""
    body = _sse(
        _message_start(),
        *_tool_block(0, "toolu_x", "lookup", _pieces(raw, points)),
        *_message_end(),
    )
    [call] = [e.call for e in await _events_of(body) if isinstance(e, ToolCallEvent)]
    assert (call.id, call.name, dict(call.arguments)) == ("toolu_x", "lookup", {})
    assert call.arguments_error


@given(
    recording=st.sampled_from(SSE_RECORDINGS), positions=st.lists(st.integers(0, 10**4), max_size=6)
)
async def test_ping_events_anywhere_change_nothing(
    recording: tuple[str, int], positions: list[int]
) -> None:
    """Pings are skipped wherever they fall: inserting them leaves the events unchanged."""
    name, index = recording
    body = load_cassette(f"anthropic/{name}")[index].body
    frames = _frames(body)
    for position in positions:
        frames.insert(position % (len(frames) + 1), 'event: ping\ndata: {"type": "ping"}')
    pinged = "\n\n".join(frames).encode() + b"\n\n"
    assert await _events_of(pinged) == await _events_of(body)


KNOWN_EVENTS = {
    "message_start",
    "message_delta",
    "message_stop",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "ping",
    "error",
}


EVENT_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=24)


@given(
    event_type=EVENT_NAMES.filter(
        lambda kind: kind not in KNOWN_EVENTS and not kind.startswith("content_block")
    )
)
async def test_new_non_content_event_types_are_skipped(event_type: str) -> None:
    """Anthropic may add event types at any time; one that carries no content changes nothing."""
    body = _sse(_message_start(), *_message_end())
    with_new_event = _sse(_message_start(), {"type": event_type, "data": 1}, *_message_end())
    assert await _events_of(with_new_event) == await _events_of(body)


@given(suffix=EVENT_NAMES.filter(lambda s: f"content_block{s}" not in KNOWN_EVENTS))
async def test_unknown_content_block_events_are_errors_naming_the_type(suffix: str) -> None:
    """Content only travels in `content_block_*` events: an unknown one is refused by name."""
    event_type = f"content_block{suffix}"
    body = _sse(_message_start(), {"type": event_type, "index": 0}, *_message_end())
    with pytest.raises(StreamProtocolError, match=re.escape(repr(event_type))):
        await _events_of(body)


STREAM_ERRORS: dict[str, tuple[type[ProviderError], ErrorCategory]] = {
    "invalid_request_error": (InvalidRequestError, ErrorCategory.INVALID_REQUEST),
    "request_too_large": (InvalidRequestError, ErrorCategory.CONTEXT_LENGTH),
    "authentication_error": (AuthenticationFailedError, ErrorCategory.AUTHENTICATION),
    "permission_error": (AuthenticationFailedError, ErrorCategory.PERMISSION),
    "not_found_error": (ModelNotFoundError, ErrorCategory.NOT_FOUND),
    "rate_limit_error": (RateLimitError, ErrorCategory.RATE_LIMIT),
    "overloaded_error": (ServerError, ErrorCategory.OVERLOADED),
    "api_error": (ServerError, ErrorCategory.SERVER),
}


@example(error_type="overloaded_error", message="Overloaded", after_text=False)
@given(
    error_type=st.sampled_from(sorted(STREAM_ERRORS))
    | st.from_regex(r"[a-z_]{1,20}", fullmatch=True),
    message=st.text(min_size=1, max_size=40),
    after_text=st.booleans(),
)
async def test_error_events_raise_their_typed_error(
    error_type: str, message: str, after_text: bool
) -> None:
    """An `event: error` raises the class and category of its type; unknown ones: server error."""
    text = _text_block(0, ["partial"]) if after_text else []
    error = {"type": "error", "error": {"type": error_type, "message": message}}
    with pytest.raises(ProviderError) as caught:
        await _events_of(_sse(_message_start(), *text, error))
    kind, category = STREAM_ERRORS.get(error_type, (ServerError, ErrorCategory.SERVER))
    assert type(caught.value) is kind
    assert caught.value.category is category
    assert caught.value.provider_message == redact_secrets(message)
    assert caught.value.status is None


@given(
    kind=st.sampled_from(TRANSPORT_FAILURES),
    detail=st.text(max_size=30),
    key=ANTHROPIC_KEYS | ODD_KEYS,
)
async def test_transport_failures_become_network_errors(
    kind: type[httpx.TransportError], detail: str, key: str
) -> None:
    """Every httpx transport failure is a ProviderNetworkError (timeouts: TIMEOUT), keyless."""
    failure = kind(f"{detail} {key}")

    invocation = _invocation("https://api.test", key=key)
    caught = await transport_failure_raised(AnthropicProvider, invocation, failure)
    timeout = issubclass(kind, httpx.TimeoutException)
    assert caught.value.category is (ErrorCategory.TIMEOUT if timeout else ErrorCategory.NETWORK)
    # A scrubbed error does not chain to the text it replaced, or a traceback would print it.
    assert caught.value.__cause__ is (None if key in str(failure) else failure)
    assert key not in str(caught.value)


@given(
    blocks=st.lists(RESPONSE_BLOCKS, min_size=1, max_size=5).filter(
        lambda blocks: not any(a[0] == b[0] == "text" for a, b in itertools.pairwise(blocks))
    ),
    streamed=st.booleans(),
)
async def test_a_parsed_reply_goes_back_exactly_as_received(
    blocks: list[tuple[Any, ...]], streamed: bool
) -> None:
    """Text, signed and redacted thinking and calls parsed from a reply are sent back unchanged."""
    content = [_as_json_block(block) for block in blocks]
    if streamed:
        sse_blocks = [
            payload for i, block in enumerate(blocks) for payload in _as_sse_block(i, block)
        ]
        events = await _events_of(_sse(_message_start(), *sse_blocks, *_message_end()))
    else:
        whole = {"content": content, "stop_reason": "end_turn", "usage": {}}
        async with _mock_client(lambda request: httpx.Response(200, json=whole)) as client:
            events = await _collect(AnthropicProvider(client), _invocation("https://api.test"))
    messages = await _sent_messages((Message.user("q"), _assemble(events)))
    assert messages[1] == {"role": "assistant", "content": content}
