"""The OpenAI Chat Completions adapter against recorded traffic, a mock transport and properties."""

from __future__ import annotations

import asyncio
import itertools
import json
import string
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.adapters.providers.openai.chat import OpenAIChatProvider
from chatscope.errors import (
    ErrorCategory,
    InvalidRequestError,
    MissingProviderRuntimeError,
    ModelNotFoundError,
    ProviderError,
    ProviderNetworkError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
)
from chatscope.services.events import (
    FinishEvent,
    FinishReason,
    TextDelta,
    ThinkingDelta,
    ToolCallEvent,
)
from chatscope.services.frozen import thaw
from chatscope.services.messages import (
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
    Usage,
)
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.ports import ModelProvider
from tests.support.adapter_helpers import (
    PROPERTY,
    SOCKET_PROPERTY,
    assistant_message,
    collect,
    declaration,
    is_json_object,
    make_invocation,
    mock_client,
    mocked_events,
    outcome,
    recording_client,
    replay_events,
    scripted,
    secrets,
    split_at,
    sse_body,
)
from tests.support.adapter_helpers import openai_arguments as arguments
from tests.support.adapter_helpers import openai_json_values as json_values
from tests.support.cassettes import Interaction, fixture_path, load_cassette
from tests.support.replay_server import ReplayServer, ScriptedResponse, replay_server

SUCCESS = [
    ("test_chat_completion_with_content.yaml", 0),
    ("test_openai_instructions.yaml", 0),
    ("test_temporal_agent_run_stream.yaml", 0),
    ("test_chat_completion_streaming.yaml", 0),
    ("test_chat_completion_tool_calls_with_content.yaml", 0),
    ("test_chat_completion_tool_calls_with_content.yaml", 1),
    ("test_run_stream_sync_streams_real_model.yaml", 0),
    ("test_run_stream_sync_streams_real_model.yaml", 1),
    ("test_chat_completion_multiple_choices_streaming.yaml", 0),
    ("test_openai_instructions_with_tool_calls_keep_instructions.yaml", 0),
    ("test_openai_instructions_with_tool_calls_keep_instructions.yaml", 1),
]
ERRORS = [
    ("test_chat_completion_404.yaml", ModelNotFoundError, ErrorCategory.NOT_FOUND),
    (
        "test_openai_o1_mini_system_role[system].yaml",
        InvalidRequestError,
        ErrorCategory.INVALID_REQUEST,
    ),
    (
        "test_openai_web_search_tool_model_not_supported.yaml",
        InvalidRequestError,
        ErrorCategory.INVALID_REQUEST,
    ),
]
MULTI_TURN = [
    "test_chat_completion_tool_calls_with_content.yaml",
    "test_run_stream_sync_streams_real_model.yaml",
    "test_openai_instructions_with_tool_calls_keep_instructions.yaml",
]
STREAMED = [
    (name, index) for name, index in SUCCESS if load_cassette(f"openai/{name}")[index].is_sse
]


def recorded(name: str, index: int = 0) -> Interaction:
    return load_cassette(f"openai/{name}")[index]


def chunk(
    delta: dict[str, Any] | None = None,
    *,
    finish: str | None = None,
    index: int = 0,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A `chat.completion.chunk` shaped like OpenAI's."""
    choices = (
        []
        if delta is None and finish is None
        else [{"index": index, "delta": delta or {}, "logprobs": None, "finish_reason": finish}]
    )
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": choices,
        "usage": usage,
    }


def usage_payload(
    prompt: int, completion: int, cached: int = 0, reasoning: int = 0
) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def invocation_for(interaction: Interaction, base_url: str, **overrides: Any) -> ModelInvocation:
    """An invocation mirroring a recorded request: model, system prompt, tools, stream flag, n."""
    request = interaction.request_body
    messages = request["messages"]
    params: dict[str, Any] = {} if request.get("stream") else {"stream": False}
    if "n" in request:
        params["n"] = request["n"]
    options: dict[str, Any] = {
        "model": request["model"],
        "system": next((m["content"] for m in messages if m["role"] == "system"), None),
        "history": [Message.user(next(m["content"] for m in messages if m["role"] == "user"))],
        "tools": [
            declaration(
                t["function"]["name"], t["function"].get("description"), t["function"]["parameters"]
            )
            for t in request.get("tools", [])
        ],
        "params": params,
    }
    return make_invocation(base_url, **(options | overrides))


def expected_from_recording(interaction: Interaction) -> tuple[str, list[Any], Usage, str]:
    """Text, calls, usage and finish read straight off the recording, choice 0 only."""
    if interaction.is_sse:
        return _expected_from_sse(interaction.body)
    payload = interaction.json()
    choice = payload["choices"][0]
    calls = [
        (call["id"], call["function"]["name"], json.loads(call["function"]["arguments"]))
        for call in choice["message"].get("tool_calls") or []
    ]
    return (
        choice["message"]["content"] or "",
        calls,
        _usage(payload["usage"]),
        choice["finish_reason"],
    )


def _expected_from_sse(body: bytes) -> tuple[str, list[Any], Usage, str]:
    lines = body.decode().splitlines()
    chunks = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    choices = [choice for c in chunks for choice in c["choices"] if choice["index"] == 0]
    text = "".join(choice["delta"].get("content") or "" for choice in choices)
    calls: dict[int, list[Any]] = {}
    for choice in choices:
        for fragment in choice["delta"].get("tool_calls") or []:
            entry = calls.setdefault(fragment["index"], [fragment.get("id"), None, ""])
            entry[1] = entry[1] or fragment["function"].get("name")
            entry[2] += fragment["function"].get("arguments") or ""
    finish = [choice["finish_reason"] for choice in choices if choice["finish_reason"]][-1]
    usage = [c["usage"] for c in chunks if c.get("usage")][-1]
    parsed = [(cid, name, json.loads(args)) for cid, name, args in calls.values()]
    return text, parsed, _usage(usage), finish


def _usage(usage: dict[str, Any]) -> Usage:
    return Usage(
        usage["prompt_tokens"],
        usage["completion_tokens"],
        usage["prompt_tokens_details"]["cached_tokens"],
        usage["completion_tokens_details"]["reasoning_tokens"],
    )


async def replay(response: ScriptedResponse, **options: Any) -> list[Any]:
    """Serve one response on a real socket and collect the adapter's events."""
    return await replay_events(OpenAIChatProvider, response, **options)


async def mocked(pieces: list[bytes], **options: Any) -> list[Any]:
    """Stream `pieces` through a mock transport and collect the adapter's events."""
    return await mocked_events(OpenAIChatProvider, pieces, **options)


# --- recorded traffic over a real socket ---------------------------------------------------


def test_every_chat_fixture_is_covered() -> None:
    """Every recorded Chat Completions interaction in the fixtures is replayed by a test here."""
    chat_files = {
        path.name
        for path in fixture_path("openai").glob("*.yaml")
        if load_cassette(f"openai/{path.name}")[0].uri.endswith("/chat/completions")
    }
    covered = {name for name, _ in SUCCESS} | {name for name, _, _ in ERRORS}
    assert covered == chat_files
    for name in chat_files - {name for name, _, _ in ERRORS}:
        indexes = {index for file, index in SUCCESS if file == name}
        assert indexes == set(range(len(load_cassette(f"openai/{name}"))))


@pytest.mark.parametrize(("name", "index"), SUCCESS)
async def test_recorded_response_parses_to_recorded_content(name: str, index: int) -> None:
    """Text, tool calls, usage and finish equal what the recording holds, for every interaction."""
    interaction = recorded(name, index)
    with replay_server(scripted(interaction)) as server:
        async with httpx.AsyncClient() as client:
            invocation = invocation_for(interaction, server.url + "/v1")
            events = await collect(OpenAIChatProvider(client), invocation)
    text, calls, usage, finish = expected_from_recording(interaction)
    result = outcome(events)
    assert result.text == text
    assert result.calls == calls
    assert result.usage == usage
    assert result.finish.raw == finish
    assert result.finish.reason == FinishReason(finish)
    assert server.requests[0].path == "/v1/chat/completions"


async def test_recorded_stream_literal_values() -> None:
    """The temporal stream reads as the literal recorded sentence and usage."""
    events = await replay(scripted(recorded("test_temporal_agent_run_stream.yaml")))
    result = outcome(events)
    assert result.text == "The capital of Mexico is Mexico City."
    assert result.usage == Usage(input_tokens=14, output_tokens=8)
    assert result.finish.reason is FinishReason.STOP
    assert all(isinstance(event, TextDelta) for event in events[:-2])


async def test_recorded_streamed_tool_call_literal_values() -> None:
    """The streamed tool call is assembled from its five argument fragments into one call."""
    events = await replay(scripted(recorded("test_run_stream_sync_streams_real_model.yaml")))
    result = outcome(events)
    assert result.calls == [("call_ZR5UUuTt3pf61kjwAJIYdVMj", "get_capital", {"country": "UK"})]
    assert result.usage == Usage(input_tokens=53, output_tokens=15)
    assert result.finish.reason is FinishReason.TOOL_CALLS
    assert result.text == ""


async def test_recorded_parallel_tool_calls_literal_values() -> None:
    """Both parallel calls of the non-streamed recording come out in order with their ids."""
    interaction = recorded("test_chat_completion_tool_calls_with_content.yaml")
    result = outcome(await replay(scripted(interaction), params={"stream": False}))
    assert result.calls == [
        ("call_JpNb8OiAkbIbHzDggfpdDHpi", "get_current_weather", {"location": "Seattle, WA"}),
        ("call_vaFQc3zK6hHTRZKXRI5Eo2cJ", "get_current_weather", {"location": "San Francisco, CA"}),
    ]
    assert result.usage == Usage(input_tokens=75, output_tokens=51)


async def test_recorded_multiple_choices_keep_choice_zero_only() -> None:
    """With n=2 only choice 0's text is emitted, and usage covers the whole response."""
    interaction = recorded("test_chat_completion_multiple_choices_streaming.yaml")
    result = outcome(await replay(scripted(interaction), params={"n": 2}))
    assert result.text == (
        "I'm unable to provide real-time weather updates. To get the latest weather information "
        "for Seattle and San Francisco, I recommend checking a reliable weather website or using "
        "a weather app. You can also ask a voice assistant or search online for the current "
        "weather conditions."
    )
    assert "my capabilities do not include accessing live data" not in result.text
    assert result.usage == Usage(input_tokens=26, output_tokens=104)


@pytest.mark.parametrize(("name", "kind", "category"), ERRORS)
async def test_recorded_error_becomes_typed_error(
    name: str, kind: type[ProviderError], category: ErrorCategory
) -> None:
    """A recorded HTTP error raises its typed error with the provider's message and status."""
    interaction = recorded(name)
    with pytest.raises(kind) as caught:
        await replay(scripted(interaction))
    error = caught.value
    assert error.category is category
    assert error.status == interaction.status
    assert error.provider == "openai"
    assert error.provider_message == interaction.json()["error"]["message"]
    assert not error.retryable


@pytest.mark.parametrize("name", MULTI_TURN)
async def test_second_turn_request_matches_recording(name: str) -> None:
    """Turn 1's parsed output plus tool results rebuild the recorded turn-2 request exactly."""
    first, second = load_cassette(f"openai/{name}")
    with replay_server(scripted(first), scripted(second)) as server:
        async with httpx.AsyncClient() as client:
            provider = OpenAIChatProvider(client)
            invocation = invocation_for(first, server.url + "/v1")
            assistant = assistant_message(await collect(provider, invocation), provider.name)
            history = [*invocation.history, assistant, tool_results(second, assistant)]
            replayed = invocation_for(second, server.url + "/v1", history=history)
            events = await collect(provider, replayed)
    sent, wanted = server.requests[1].json(), second.request_body
    assert message_shape(sent["messages"]) == message_shape(wanted["messages"])
    assert tool_shape(sent.get("tools", [])) == tool_shape(wanted.get("tools", []))
    assert sent["model"] == wanted["model"]
    assert sent["stream"] == bool(wanted.get("stream"))
    result = outcome(events)
    assert result.text == expected_from_recording(second)[0]
    assert result.finish.reason is FinishReason.STOP


def tool_results(interaction: Interaction, assistant: Message) -> Message:
    """The tool results the recorded second request sent, as a neutral tool message."""
    names = {call.id: call.name for call in assistant.tool_calls}
    return Message(
        Role.TOOL,
        tuple(
            ToolResultBlock(m["tool_call_id"], names[m["tool_call_id"]], result=m["content"])
            for m in interaction.request_body["messages"]
            if m["role"] == "tool"
        ),
    )


def message_shape(messages: list[dict[str, Any]]) -> list[Any]:
    """Roles, contents, tool call ids, names and parsed arguments; no content equals null."""
    return [
        (
            m["role"],
            m.get("content") or None,
            m.get("tool_call_id"),
            [
                (c["id"], c["type"], c["function"]["name"], json.loads(c["function"]["arguments"]))
                for c in m.get("tool_calls") or []
            ],
        )
        for m in messages
    ]


def tool_shape(tools: list[dict[str, Any]]) -> list[Any]:
    return [(t["type"], t["function"]["name"], t["function"]["parameters"]) for t in tools]


# --- the request: mock transport --------------------------------------------------------------


def text_reply(_: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        headers={"content-type": "text/event-stream"},
        content=sse_body([chunk({"content": "ok"}, finish="stop")], done=True),
    )


async def test_request_carries_url_auth_and_body_fields() -> None:
    """URL, method, bearer key, model, system prompt, tools, params and stream flags are sent."""
    seen: list[httpx.Request] = []
    tool = declaration("get_capital", "Capital of a country", {"type": "object"})
    invocation = make_invocation(
        "https://api.example.test/v1",
        key="sk-live-abcdef123456",
        model="gpt-4.1-mini",
        system="Be brief.",
        tools=[tool],
        params={"temperature": 0.2, "max_completion_tokens": 64},
    )
    async with recording_client(text_reply, seen) as client:
        await collect(OpenAIChatProvider(client), invocation)
    request = seen[0]
    body = json.loads(request.content)
    assert request.method == "POST"
    assert str(request.url) == "https://api.example.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-live-abcdef123456"
    assert body == {
        "model": "gpt-4.1-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_capital",
                    "description": "Capital of a country",
                    "parameters": {"type": "object"},
                },
            }
        ],
        "temperature": 0.2,
        "max_completion_tokens": 64,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_stream_false_sends_a_non_streaming_request() -> None:
    """`stream: False` in model params asks for a whole body and it is parsed as JSON."""
    seen: list[httpx.Request] = []
    payload = recorded("test_openai_instructions.yaml").json()

    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=payload)

    async with recording_client(answer, seen) as client:
        events = await collect(
            OpenAIChatProvider(client), make_invocation("http://x/v1", params={"stream": False})
        )
    body = json.loads(seen[0].content)
    assert body["stream"] is False
    assert "stream_options" not in body
    assert outcome(events).text == "The capital of France is Paris."


async def test_response_is_parsed_by_content_type_not_by_request() -> None:
    """A JSON answer to a streaming request and an SSE answer to a non-streaming one both parse."""
    payload = recorded("test_chat_completion_with_content.yaml").json()
    async with mock_client([json.dumps(payload).encode()], content_type="application/json") as c:
        as_json = outcome(await collect(OpenAIChatProvider(c), make_invocation("http://x/v1")))
    sse = recorded("test_chat_completion_streaming.yaml").body
    async with mock_client([sse]) as client:
        invocation = make_invocation("http://x/v1", params={"stream": False})
        as_sse = outcome(await collect(OpenAIChatProvider(client), invocation))
    assert as_json.text == "This is a test."
    assert as_sse.text == '"This is a test."'


async def test_missing_base_url_raises_missing_runtime() -> None:
    """No base URL means no call: the runtime scope is incomplete, and no default is used."""
    async with httpx.AsyncClient() as client:
        with pytest.raises(MissingProviderRuntimeError) as caught:
            await collect(OpenAIChatProvider(client), make_invocation(None, runtime_id="sub-7"))
    assert caught.value.missing == ("base_url",)
    assert caught.value.runtime_id == "sub-7"


async def test_provider_holds_its_client_name_and_sent_history() -> None:
    """No per-call state can hide on the adapter: no instance dict, and three slots, its client,
    its name and the wire form of the history it last sent (reused only for the same messages)."""
    async with httpx.AsyncClient() as client:
        provider = OpenAIChatProvider(client, name="local")
        assert provider.name == "local"
        assert isinstance(provider, ModelProvider)
        assert not hasattr(provider, "__dict__")
        slots = {
            slot for kind in OpenAIChatProvider.__mro__ for slot in getattr(kind, "__slots__", ())
        }
        assert slots == {"_client", "_name", "_sent"}


async def test_history_mapping_sends_tools_results_and_omits_thinking() -> None:
    """Assistant text and calls, tool results and a multi-part user message map as documented."""
    seen: list[httpx.Request] = []
    call = ToolCallBlock.create("call_1", "lookup", {"q": "x", "n": [1, 2]})
    history = [
        Message(Role.USER, (TextBlock("one"), TextBlock("two"))),
        Message(
            Role.ASSISTANT,
            (ThinkingBlock("hmm", signature="sig", provider="openai"), TextBlock("Let me"), call),
        ),
        Message(Role.TOOL, (ToolResultBlock("call_1", "lookup", error="boom"),)),
    ]
    async with recording_client(text_reply, seen) as client:
        await collect(OpenAIChatProvider(client), make_invocation("http://x/v1", history=history))
    assert json.loads(seen[0].content)["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        },
        {
            "role": "assistant",
            "content": "Let me",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q":"x","n":[1,2]}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Error: boom"},
    ]


async def test_foreign_tool_call_ids_are_remapped_stably_and_still_pair() -> None:
    """Ids Chat Completions would reject (empty, over 40 chars) get one stable stand-in each."""
    long_id = "toolu_" + "x" * 60
    history = [
        Message.user("go"),
        Message(
            Role.ASSISTANT,
            (ToolCallBlock.create(long_id, "a", {}), ToolCallBlock.create("", "b", {})),
        ),
        Message(
            Role.TOOL,
            (ToolResultBlock("", "b", result="2"), ToolResultBlock(long_id, "a", result="1")),
        ),
    ]
    seen: list[httpx.Request] = []
    async with recording_client(text_reply, seen) as client:
        provider = OpenAIChatProvider(client)
        for _ in range(2):
            await collect(provider, make_invocation("http://x/v1", history=history))
    first, second = (json.loads(request.content)["messages"] for request in seen)
    assert first == second
    long_wire, empty_wire = (call["id"] for call in first[1]["tool_calls"])
    assert [m["tool_call_id"] for m in first[2:]] == [empty_wire, long_wire]
    assert long_wire != empty_wire
    assert all(0 < len(wire) <= 40 for wire in (long_wire, empty_wire))


async def test_timeout_becomes_retryable_timeout_error() -> None:
    """A read timeout on a real socket becomes ProviderNetworkError with category timeout."""
    slow = ScriptedResponse.sse(sse_body([chunk({"content": "late"})]), first_byte_delay=0.5)
    with replay_server(slow) as server:
        async with httpx.AsyncClient(timeout=0.05) as client:
            with pytest.raises(ProviderNetworkError) as caught:
                await collect(OpenAIChatProvider(client), make_invocation(server.url + "/v1"))
    assert caught.value.category is ErrorCategory.TIMEOUT
    assert caught.value.retryable
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


async def test_connection_refused_becomes_network_error() -> None:
    """A transport failure before any response is a retryable network error."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(ProviderNetworkError) as caught:
            await collect(OpenAIChatProvider(client), make_invocation("http://x/v1"))
    assert caught.value.category is ErrorCategory.NETWORK
    assert "connection refused" in caught.value.provider_message


async def test_reasoning_content_and_refusal_are_not_dropped() -> None:
    """Compatible servers' `reasoning_content` is thinking; a refusal is shown as text."""
    body = sse_body(
        [
            chunk({"reasoning_content": "think"}),
            chunk({"refusal": "I can't help with that."}),
            chunk({}, finish="stop"),
        ],
        done=True,
    )
    events = await mocked([body])
    assert events[0] == ThinkingDelta("think")
    assert outcome(events).text == "I can't help with that."


async def test_stop_with_tool_calls_reports_tool_calls() -> None:
    """A server that says `stop` next to tool calls still ends the response with TOOL_CALLS."""
    fragment = {
        "index": 0,
        "id": "c1",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
    }
    events = await mocked([sse_body([chunk({"tool_calls": [fragment]}, finish="stop")], done=True)])
    result = outcome(events)
    assert result.finish.reason is FinishReason.TOOL_CALLS
    assert result.finish.raw == "stop"
    assert result.calls == [("c1", "f", {})]


# --- malformed input --------------------------------------------------------------------------


async def test_invalid_json_data_line_is_a_protocol_error() -> None:
    """A `data:` line that is not JSON raises StreamProtocolError."""
    with pytest.raises(StreamProtocolError, match="invalid JSON"):
        await mocked([b'data: {"choices": [\n\n'])


async def test_unrepresentable_output_is_a_protocol_error() -> None:
    """Audio output, which has no neutral event, raises instead of being dropped."""
    body = sse_body([chunk({"audio": {"id": "a1", "data": "UklGR"}})], done=True)
    with pytest.raises(StreamProtocolError, match="audio"):
        await mocked([body])


async def test_unknown_tool_call_type_is_a_protocol_error() -> None:
    """A custom (non-function) tool call raises instead of being dropped."""
    fragment = {"index": 0, "id": "c", "type": "custom", "custom": {"name": "x", "input": "y"}}
    with pytest.raises(StreamProtocolError, match="custom"):
        await mocked([sse_body([chunk({"tool_calls": [fragment]}, finish="tool_calls")])])


async def test_tool_arguments_that_are_not_json_give_a_call_with_an_arguments_error() -> None:
    """Assembled arguments that do not parse become a call the model is told to correct."""
    fragments = [
        {
            "index": 0,
            "id": "c",
            "type": "function",
            "function": {"name": "f", "arguments": '{"a":'},
        },
        {"index": 0, "function": {"arguments": " nope}"}},
    ]
    body = sse_body(
        [chunk({"tool_calls": [f]}) for f in fragments] + [chunk({}, finish="tool_calls")]
    )
    [call] = [e.call for e in await mocked([body]) if isinstance(e, ToolCallEvent)]
    assert (call.id, call.name, dict(call.arguments)) == ("c", "f", {})
    assert "not valid JSON" in (call.arguments_error or "")


async def test_dropped_connection_is_a_network_error() -> None:
    """A socket closed mid-body on a real server raises a retryable ProviderNetworkError."""
    body = recorded("test_temporal_agent_run_stream.yaml").body
    with pytest.raises(ProviderNetworkError) as caught:
        await replay(ScriptedResponse.sse(body, drop_after=2))
    assert caught.value.category is ErrorCategory.NETWORK
    assert caught.value.retryable


# --- properties -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "index"), STREAMED)
@PROPERTY
@given(data=st.data())
async def test_any_byte_split_of_a_recorded_stream_gives_same_events(
    name: str, index: int, data: st.DataObject
) -> None:
    """Cutting a recorded SSE body at arbitrary byte offsets changes no event."""
    body = recorded(name, index).body
    points = data.draw(st.lists(st.integers(1, len(body) - 1), max_size=40))
    assert await mocked(split_at(body, points)) == await mocked([body])


@pytest.mark.parametrize(("name", "index"), STREAMED)
@SOCKET_PROPERTY
@given(pieces=st.integers(1, 64))
async def test_any_chunking_on_a_real_socket_gives_same_events(
    shared_server: ReplayServer, name: str, index: int, pieces: int
) -> None:
    """The recorded stream sent in any number of HTTP chunks over a socket parses identically."""
    body = recorded(name, index).body
    shared_server.enqueue(ScriptedResponse.sse(body, pieces=pieces))
    async with httpx.AsyncClient() as client:
        invocation = make_invocation(shared_server.url + "/v1")
        events = await collect(OpenAIChatProvider(client), invocation)
    assert events == await mocked([body])


@PROPERTY
@given(text=st.text(), cuts=st.lists(st.integers(0, 200), max_size=12))
async def test_text_split_into_any_deltas_reassembles(text: str, cuts: list[int]) -> None:
    """However the text is cut into content deltas, the emitted text is the original."""
    bounds = sorted({0, len(text), *(cut for cut in cuts if cut < len(text))})
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    body = sse_body([*(chunk({"content": p}) for p in pieces), chunk({}, finish="stop")], done=True)
    result = outcome(await mocked([body]))
    assert result.text == text
    assert result.finish.reason is FinishReason.STOP


@PROPERTY
@given(calls=st.lists(arguments, min_size=1, max_size=3), data=st.data())
async def test_tool_argument_fragments_reassemble_to_same_dict(
    calls: list[dict[str, Any]], data: st.DataObject
) -> None:
    """Argument JSON cut anywhere, parallel calls' fragments interleaved, parses to the original."""
    fragments: list[tuple[int, str]] = []
    for index, args in enumerate(calls):
        raw = json.dumps(args)
        cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, len(raw) - 1)), max_size=6))))
        bounds = [0, *cuts, len(raw)]
        fragments += [(index, raw[a:b]) for a, b in itertools.pairwise(bounds) if b > a]
    # A random order of fragment slots: a call's own fragments keep their order, calls interleave.
    order = data.draw(st.permutations(range(len(fragments))))
    per_call: dict[int, list[str]] = {}
    for index, piece in fragments:
        per_call.setdefault(index, []).append(piece)
    stream: list[dict[str, Any]] = [
        chunk(
            {
                "tool_calls": [
                    {
                        "index": i,
                        "id": f"c{i}",
                        "type": "function",
                        "function": {"name": f"f{i}", "arguments": ""},
                    }
                ]
            }
        )
        for i in range(len(calls))
    ]
    cursors = dict.fromkeys(per_call, 0)
    for position in order:
        index = fragments[position][0]
        piece = per_call[index][cursors[index]]
        cursors[index] += 1
        stream.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    stream.append(chunk({}, finish="tool_calls"))
    result = outcome(await mocked([sse_body(stream, done=True)]))
    assert result.calls == [(f"c{i}", f"f{i}", args) for i, args in enumerate(calls)]
    assert result.finish.reason is FinishReason.TOOL_CALLS


@st.composite
def histories(draw: st.DrawFn) -> list[Message]:
    """Random conversations: user text, assistant text/thinking/calls, results in any order."""
    messages: list[Message] = []
    call_ids = st.text(max_size=8) | st.text(min_size=41, max_size=90)
    for _ in range(draw(st.integers(0, 4))):
        messages.append(Message.user(draw(st.text(max_size=10))))
        ids = draw(st.lists(call_ids, max_size=4, unique=True))
        blocks: list[Any] = [
            ToolCallBlock.create(i, f"tool{n}", draw(arguments)) for n, i in enumerate(ids)
        ]
        for extra in draw(st.lists(st.sampled_from(["text", "thinking"]), max_size=2)):
            block = TextBlock("t") if extra == "text" else ThinkingBlock("r", provider="openai")
            blocks.insert(draw(st.integers(0, len(blocks))), block)
        messages.append(Message(Role.ASSISTANT, tuple(blocks)))
        if ids:
            order = draw(st.permutations(ids))
            results = [ToolResultBlock(i, "tool", result=f"r{i}") for i in order]
            messages.append(Message(Role.TOOL, tuple(results)))
    return messages


@PROPERTY
@given(history=histories())
async def test_history_mapping_keeps_tool_call_order_count_and_pairing(
    history: list[Message],
) -> None:
    """Calls and results keep their order and count; a result's wire id is its call's wire id."""
    seen: list[httpx.Request] = []
    async with recording_client(text_reply, seen) as client:
        await collect(OpenAIChatProvider(client), make_invocation("http://x/v1", history=history))
    wire = json.loads(seen[0].content)["messages"]
    calls = [call for m in history for call in m.tool_calls]
    results = [result for m in history for result in m.tool_results]
    wire_calls = [c for m in wire for c in m.get("tool_calls", [])]
    wire_results = [m for m in wire if m["role"] == "tool"]
    assert [c["function"]["name"] for c in wire_calls] == [c.name for c in calls]
    assert [json.loads(c["function"]["arguments"]) for c in wire_calls] == [
        thaw(c.arguments) for c in calls
    ]
    assert [m["content"] for m in wire_results] == [r.content for r in results]
    id_of = {call.id: wire_call["id"] for call, wire_call in zip(calls, wire_calls, strict=True)}
    assert [m["tool_call_id"] for m in wire_results] == [id_of[r.call_id] for r in results]
    assert all(0 < len(c["id"]) <= 40 for c in wire_calls)
    assert all(
        c["id"] == call.id
        for call, c in zip(calls, wire_calls, strict=True)
        if 0 < len(call.id) <= 40
    )
    assert len(set(id_of.values())) == len(id_of)
    assert [m["role"] for m in wire if m["role"] != "tool"] == [
        m.role.value for m in history if m.role is not Role.TOOL
    ]


@PROPERTY
@given(
    secret=secrets,
    status=st.sampled_from([400, 401, 403, 404, 408, 429, 500, 503]),
    where=st.sampled_from(["http", "stream", "transport"]),
)
async def test_secret_never_appears_in_a_raised_error(secret: str, status: int, where: str) -> None:
    """Even a provider echoing the key verbatim never gets it into the raised error's message."""
    echo = f"Incorrect API key provided: {secret}. Authorization: Bearer {secret} ({secret})"

    def answer(request: httpx.Request) -> httpx.Response:
        if where == "transport":
            raise httpx.ReadError(echo, request=request)
        if where == "stream":
            body = sse_body([{"error": {"message": echo, "code": "server_error"}}])
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
        return httpx.Response(status, json={"error": {"message": echo}})

    seen: list[httpx.Request] = []
    async with recording_client(answer, seen) as client:
        with pytest.raises(ProviderError) as caught:
            await collect(OpenAIChatProvider(client), make_invocation("http://x/v1", key=secret))
    assert seen[0].headers["authorization"] == f"Bearer {secret}"
    assert secret not in str(caught.value)
    assert secret not in caught.value.provider_message
    assert secret not in str(caught.value.__cause__)
    assert all(secret not in str(arg) for arg in caught.value.args)


@PROPERTY
@given(
    calls=st.lists(
        st.tuples(
            secrets,
            st.sampled_from(["gpt-4o", "gpt-4.1-mini", "o3"]),
            st.sampled_from(
                ["http://a.test/v1", "http://b.test:8080/v1", "https://api.openai.com/v1"]
            ),
        ),
        min_size=2,
        max_size=5,
    )
)
async def test_one_provider_serves_concurrent_invocations_with_their_own_values(
    calls: list[tuple[str, str, str]],
) -> None:
    """Concurrent calls through one adapter each carry their own key, model and base URL."""
    seen: list[httpx.Request] = []
    async with recording_client(text_reply, seen) as client:
        provider = OpenAIChatProvider(client)
        invocations = [make_invocation(url, key=key, model=model) for key, model, url in calls]
        await asyncio.gather(*(collect(provider, invocation) for invocation in invocations))
    sent = sorted(
        (r.headers["authorization"], json.loads(r.content)["model"], str(r.url)) for r in seen
    )
    wanted = sorted(
        (f"Bearer {key}", model, f"{url}/chat/completions") for key, model, url in calls
    )
    assert sent == wanted


@PROPERTY
@given(
    params=st.dictionaries(
        st.sampled_from(
            ["temperature", "top_p", "max_completion_tokens", "seed", "model", "messages", "user"]
        ),
        st.integers(0, 5) | st.floats(0, 1),
    )
)
async def test_model_params_are_merged_but_never_replace_the_call(params: dict[str, Any]) -> None:
    """Every model param reaches the body, except that the invocation's model and messages win."""
    seen: list[httpx.Request] = []
    async with recording_client(text_reply, seen) as client:
        await collect(OpenAIChatProvider(client), make_invocation("http://x/v1", params=params))
    body = json.loads(seen[0].content)
    assert body["model"] == "gpt-4o"
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    for key, value in params.items():
        if key not in ("model", "messages"):
            assert body[key] == value


@PROPERTY
@given(
    texts=st.lists(
        st.tuples(st.sampled_from([0, 1]), st.text(min_size=1, max_size=5)), max_size=20
    ),
)
async def test_only_choice_zero_is_followed_among_interleaved_choices(
    texts: list[tuple[int, str]],
) -> None:
    """With interleaved choices, the text is exactly choice 0's deltas in order."""
    body = sse_body(
        [chunk({"content": t}, index=i) for i, t in texts]
        + [
            chunk({}, finish="stop", index=1),
            chunk({}, finish="stop"),
            chunk(usage=usage_payload(3, 4)),
        ],
        done=True,
    )
    result = outcome(await mocked([body]))
    assert result.text == "".join(t for i, t in texts if i == 0)
    assert result.usage == Usage(3, 4)


@PROPERTY
@given(
    text=st.text(max_size=30),
    calls=st.lists(arguments, max_size=3),
    finish=st.sampled_from(["stop", "length", "tool_calls", "content_filter", "weird"]),
    usage=st.tuples(
        st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 100), st.integers(0, 100)
    ),
)
async def test_streamed_and_whole_responses_give_the_same_content(
    text: str, calls: list[dict[str, Any]], finish: str, usage: tuple[int, int, int, int]
) -> None:
    """The same response streamed as chunks or sent as one JSON body yields the same content."""
    tool_calls = [
        {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": f"f{i}", "arguments": json.dumps(a)},
        }
        for i, a in enumerate(calls)
    ]
    whole = {
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": text or None,
                    "tool_calls": tool_calls or None,
                },
                "finish_reason": finish,
            }
        ],
        "usage": usage_payload(*usage),
    }
    streamed = sse_body(
        [
            *(chunk({"content": ch}) for ch in text),
            *(chunk({"tool_calls": [{"index": i, **c}]}) for i, c in enumerate(tool_calls)),
            chunk({}, finish=finish),
            chunk(usage=usage_payload(*usage)),
        ],
        done=True,
    )
    async with mock_client([json.dumps(whole).encode()], content_type="application/json") as client:
        from_json = outcome(
            await collect(OpenAIChatProvider(client), make_invocation("http://x/v1"))
        )
    from_sse = outcome(await mocked([streamed]))
    assert from_sse == from_json
    assert from_json.text == text
    assert from_json.usage == Usage(*usage)
    expected = {
        "stop": FinishReason.STOP,
        "length": FinishReason.LENGTH,
        "tool_calls": FinishReason.TOOL_CALLS,
        "content_filter": FinishReason.CONTENT_FILTER,
    }.get(finish, FinishReason.OTHER)
    if calls and expected is FinishReason.STOP:
        expected = FinishReason.TOOL_CALLS
    assert from_json.finish.reason is expected
    assert from_json.finish.raw == finish


@PROPERTY
@given(
    payloads=st.lists(
        json_values | st.builds(lambda c, d: {"choices": c, "usage": d}, json_values, json_values),
        max_size=4,
    )
)
async def test_any_json_payloads_raise_only_provider_errors(payloads: list[Any]) -> None:
    """Arbitrary JSON in data lines either parses or raises a ProviderError, never a crash."""
    try:
        events = await mocked([sse_body(payloads, done=True)])
    except ProviderError as error:
        failure: ProviderError | None = error
    else:
        failure = None
        outcome(events)
    assert failure is None or failure.provider == "openai"


@PROPERTY
@given(
    key=st.none() | secrets,
    model=st.text(alphabet=string.ascii_lowercase + string.digits + "-.", min_size=1, max_size=20),
    base_url=st.sampled_from(
        ["http://127.0.0.1:8080/v1", "https://api.openai.com/v1", "http://h/x/v1"]
    ),
    system=st.none() | st.text(max_size=20),
)
async def test_request_carries_exactly_the_invocations_key_model_and_url(
    key: str | None, model: str, base_url: str, system: str | None
) -> None:
    """The bearer header is the invocation's key (absent without one); URL and model are its own."""
    seen: list[httpx.Request] = []
    invocation = make_invocation(base_url, key=key, model=model, system=system)
    async with recording_client(text_reply, seen) as client:
        await collect(OpenAIChatProvider(client), invocation)
    (request,) = seen
    assert request.headers.get("authorization") == (f"Bearer {key}" if key else None)
    assert str(request.url) == f"{base_url}/chat/completions"
    body = json.loads(request.content)
    assert body["model"] == model
    system_messages = [m["content"] for m in body["messages"] if m["role"] == "system"]
    assert system_messages == ([] if system is None else [system])
    assert body["messages"][0]["role"] == ("user" if system is None else "system")


@PROPERTY
@given(
    line=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40).filter(
        lambda text: text.strip() != "[DONE]" and not is_json_object(text)
    )
)
async def test_any_data_line_that_is_not_a_json_object_is_a_protocol_error(line: str) -> None:
    """Garbage, truncated JSON or a JSON non-object in a `data:` line raises StreamProtocolError."""
    body = sse_body([chunk({"content": "before"})]) + f"data: {line}\n\n".encode()
    with pytest.raises(StreamProtocolError):
        await mocked([body, sse_body([chunk({}, finish="stop")], done=True)])


@PROPERTY
@given(
    raw=st.text(max_size=30).filter(lambda text: text != "" and not is_json_object(text))
    | st.builds(json.dumps, json_values).filter(lambda text: not is_json_object(text))
)
async def test_any_tool_arguments_that_are_not_a_json_object_give_an_arguments_error(
    raw: str,
) -> None:
    """Tool arguments that are not a JSON object, streamed or not, give a call with no
    arguments whose `arguments_error` says why; the stream itself goes on to its finish."""
    call = {"index": 0, "id": "c", "type": "function", "function": {"name": "f", "arguments": raw}}
    streamed = await mocked(
        [sse_body([chunk({"tool_calls": [call]}, finish="tool_calls")], done=True)]
    )
    whole = {"choices": [{"index": 0, "message": {"tool_calls": [call]}, "finish_reason": "stop"}]}
    async with mock_client([json.dumps(whole).encode()], content_type="application/json") as client:
        answered = await collect(OpenAIChatProvider(client), make_invocation("http://x/v1"))
    for events in (streamed, answered):
        [made] = [e.call for e in events if isinstance(e, ToolCallEvent)]
        assert (made.name, dict(made.arguments)) == ("f", {})
        assert made.arguments_error
        assert isinstance(events[-1], FinishEvent)


@PROPERTY
@given(
    deltas=st.lists(st.text(min_size=1, max_size=4), max_size=5),
    finish=st.none() | st.sampled_from(["stop", "length"]),
    done=st.booleans(),
)
async def test_stream_completes_exactly_when_finish_or_done_arrives(
    deltas: list[str], finish: str | None, done: bool
) -> None:
    """A body ending with neither a finish reason nor `[DONE]` is incomplete; otherwise it ends."""
    payloads = [chunk({"content": d}) for d in deltas]
    if finish:
        payloads.append(chunk({}, finish=finish))
    body = sse_body(payloads, done=done)
    if finish is None and not done:
        with pytest.raises(StreamProtocolError, match="stream ended before completion"):
            await mocked([body])
        return
    result = outcome(await mocked([body]))
    assert result.text == "".join(deltas)
    assert result.finish.raw == finish
    assert result.finish.reason is (FinishReason(finish) if finish else FinishReason.OTHER)


@PROPERTY
@given(
    role=st.sampled_from(list(Role)),
    block=st.sampled_from(
        [
            TextBlock("t"),
            ThinkingBlock("r"),
            ToolCallBlock.create("c", "f", {}),
            ToolResultBlock("c", "f", result="x"),
        ]
    ),
)
async def test_a_block_is_sent_where_its_role_allows_and_refused_elsewhere(
    role: Role, block: Any
) -> None:
    """Blocks a role cannot carry raise InvalidRequestError; allowed ones are sent, none dropped."""
    allowed = {
        Role.USER: (TextBlock,),
        Role.ASSISTANT: (TextBlock, ThinkingBlock, ToolCallBlock),
        Role.TOOL: (ToolResultBlock,),
    }[role]
    seen: list[httpx.Request] = []
    history = [Message(role, (block,))]
    async with recording_client(text_reply, seen) as client:
        provider = OpenAIChatProvider(client)
        if not isinstance(block, allowed):
            with pytest.raises(InvalidRequestError, match=type(block).__name__):
                await collect(provider, make_invocation("http://x/v1", history=history))
            assert seen == []
            return
        await collect(provider, make_invocation("http://x/v1", history=history))
    (message,) = json.loads(seen[0].content)["messages"]
    assert message["role"] == role.value


@PROPERTY
@given(
    code=st.sampled_from(
        [
            ("rate_limit_exceeded", RateLimitError, ErrorCategory.RATE_LIMIT),
            ("insufficient_quota", QuotaExceededError, ErrorCategory.QUOTA),
            ("context_length_exceeded", InvalidRequestError, ErrorCategory.CONTEXT_LENGTH),
            ("model_not_found", ModelNotFoundError, ErrorCategory.NOT_FOUND),
            ("server_error", ServerError, ErrorCategory.SERVER),
            ("something_new", ServerError, ErrorCategory.SERVER),
        ]
    ),
    message=st.text(alphabet=string.ascii_letters + " ", min_size=1, max_size=30).filter(str.strip),
    before=st.integers(0, 3),
)
async def test_error_chunk_mid_stream_becomes_the_typed_error_of_its_code(
    code: tuple[str, type[ProviderError], ErrorCategory], message: str, before: int
) -> None:
    """An `error` object inside a 200 stream raises the error class and category its code names."""
    name, kind, category = code
    payloads = [chunk({"content": "x"}) for _ in range(before)]
    payloads.append({"error": {"message": message, "type": "error", "code": name}})
    with pytest.raises(kind) as caught:
        await mocked([sse_body(payloads, done=True)])
    assert type(caught.value) is kind
    assert caught.value.category is category
    assert caught.value.provider_message == message


@SOCKET_PROPERTY
@given(drop_after=st.integers(1, 11))
async def test_connection_dropped_after_any_chunk_is_a_network_error(
    shared_server: ReplayServer, drop_after: int
) -> None:
    """Whichever HTTP chunk the socket closes after, the result is a retryable network error."""
    body = recorded("test_temporal_agent_run_stream.yaml").body
    shared_server.enqueue(ScriptedResponse.sse(body, drop_after=drop_after))
    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderNetworkError) as caught:
            await collect(OpenAIChatProvider(client), make_invocation(shared_server.url + "/v1"))
    assert caught.value.category is ErrorCategory.NETWORK


async def test_raw_unicode_line_separators_inside_json_survive() -> None:
    """U+2028, U+2029 and U+0085 sent unescaped inside a JSON string do not split the SSE line."""
    text = "a\u2028b\u2029c\x85d"
    payload = json.dumps(chunk({"content": text}), ensure_ascii=False)
    body = f"data: {payload}\n\n".encode() + sse_body([chunk({}, finish="stop")], done=True)
    assert outcome(await mocked([body])).text == text


@PROPERTY
@given(
    ending=st.sampled_from(["\n", "\r", "\r\n"]),
    texts=st.lists(st.text(max_size=6), max_size=6),
    data=st.data(),
)
async def test_any_line_ending_style_split_anywhere_gives_the_same_text(
    ending: str, texts: list[str], data: st.DataObject
) -> None:
    """LF, CR and CRLF line ends all parse, even when a CRLF is split across two reads."""
    payloads = [*(chunk({"content": t}) for t in texts), chunk({}, finish="stop")]
    lines = [f"data: {json.dumps(p)}{ending}{ending}" for p in payloads]
    body = ("".join(lines) + f"data: [DONE]{ending}{ending}").encode()
    points = data.draw(st.lists(st.integers(1, len(body) - 1), max_size=20))
    result = outcome(await mocked(split_at(body, points)))
    assert result.text == "".join(texts)
    assert result.finish.reason is FinishReason.STOP
