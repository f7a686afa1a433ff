"""The Gemini adapter: recorded traffic over a real socket, requests, faults and properties."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.adapters.providers.gemini import GeminiProvider
from chatscope.errors import (
    ErrorCategory,
    InvalidRequestError,
    MissingProviderRuntimeError,
    ModelNotFoundError,
    ProviderError,
    ProviderNetworkError,
    RateLimitError,
    StreamProtocolError,
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

KEY = "AIzaSyChatscopeTestKey000000000000000000"
UNSIGNED = base64.b64encode(b"skip_thought_signature_validator").decode()
FINISH_REASONS = {
    "STOP": FinishReason.STOP,
    "MAX_TOKENS": FinishReason.LENGTH,
    "SAFETY": FinishReason.CONTENT_FILTER,
    "RECITATION": FinishReason.CONTENT_FILTER,
    "BLOCKLIST": FinishReason.CONTENT_FILTER,
    "PROHIBITED_CONTENT": FinishReason.CONTENT_FILTER,
    "SPII": FinishReason.CONTENT_FILTER,
    "IMAGE_SAFETY": FinishReason.CONTENT_FILTER,
}
VERTEX = "test_multimodal_tool_return_matrix[direct-url-image-google_vertex].yaml"
REPLAYED = [
    "test_google_model.yaml",
    "test_google_model_stream.yaml",
    "test_google_model_thinking_part_iter.yaml",
]
MULTI_TURN = [
    "test_google_model_structured_output.yaml",
    "test_google_model_retry.yaml",
    "test_google_model_iter_stream.yaml",
    "test_google_model_thinking_part.yaml",
]
SSE_RECORDINGS = [
    ("test_google_model_stream.yaml", 0),
    ("test_google_model_iter_stream.yaml", 0),
    ("test_google_model_iter_stream.yaml", 2),
    ("test_google_model_thinking_part_iter.yaml", 0),
]
RETRY_INFO = "google-429-retry-info.json"
NOT_FOUND = "test_model_name_suggestion[google].yaml"


# --- helpers ------------------------------------------------------------------------------------


_invocation = partial(native_invocation, provider="gemini", key=KEY, model="gemini-test")
_scripted = partial(scripted, keep_content_type=True)
_split_at = partial(split_at, wrap=True)
_frames = partial(sse_frames, separator="\r\n\r\n")
_assemble = partial(assemble, provider="gemini", redacted=False)


async def _raised_by(response: httpx.Response) -> ProviderError:
    async with _mock_client(lambda request: response) as client:
        with pytest.raises(ProviderError) as caught:
            await _collect(GeminiProvider(client), _invocation("https://g.test/v1beta"))
    return caught.value


def _sse(*chunks: Mapping[str, Any]) -> bytes:
    """A Gemini-style stream: `data:` lines separated by CRLF CRLF."""
    return b"".join(b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n" for chunk in chunks)


def _chunk(
    *parts: Mapping[str, Any],
    finish: str | None = None,
    usage: Mapping[str, int] | None = None,
    response_id: str = "resp-1",
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    chunk: dict[str, Any] = {"candidates": [candidate], "responseId": response_id}
    if usage is not None:
        chunk["usageMetadata"] = dict(usage)
    return chunk


def _standard_b64(signature: str) -> str:
    """The SDK writes signatures URL-safe in requests; responses use the standard alphabet."""
    return signature.replace("-", "+").replace("_", "/")


def _summary(events: Sequence[ProviderEvent]) -> dict[str, Any]:
    """What a response said, in a form the recording can be compared with."""
    return {
        "text": "".join(e.text for e in events if isinstance(e, TextDelta)),
        "thinking": "".join(e.text for e in events if isinstance(e, ThinkingDelta)),
        "text_signatures": [
            e.signature for e in events if isinstance(e, TextDelta) and e.signature
        ],
        "thought_signatures": [
            e.signature for e in events if isinstance(e, ThinkingDelta) and e.signature
        ],
        "tool_calls": [
            (e.call.id, e.call.name, thaw(e.call.arguments), e.call.signature)
            for e in events
            if isinstance(e, ToolCallEvent)
        ],
        "usage": [e.usage for e in events if isinstance(e, UsageEvent)],
        "finish": [(e.reason, e.raw) for e in events if isinstance(e, FinishEvent)],
    }


def _recorded_chunks(interaction: Interaction) -> list[dict[str, Any]]:
    if not interaction.is_sse:
        return [interaction.json()]
    lines = interaction.body.decode().splitlines()
    return [json.loads(line.removeprefix("data:")) for line in lines if line.startswith("data:")]


def _expected(interaction: Interaction) -> dict[str, Any]:
    """An independent reading of a recorded response: its chunks' parts, last usage and reason."""
    chunks = _recorded_chunks(interaction)
    parts = [p for c in chunks for p in c["candidates"][0].get("content", {}).get("parts", [])]
    texts = [p for p in parts if "text" in p and not p.get("thought")]
    thoughts = [p for p in parts if p.get("thought")]
    calls = [p for p in parts if "functionCall" in p]
    response_id = chunks[-1].get("responseId", "")
    meta = chunks[-1]["usageMetadata"]
    thoughts_tokens = meta.get("thoughtsTokenCount", 0)
    raw = [
        c["candidates"][0]["finishReason"] for c in chunks if "finishReason" in c["candidates"][0]
    ]
    reason = FinishReason.TOOL_CALLS if calls else FINISH_REASONS[raw[-1]]
    return {
        "text": "".join(p["text"] for p in texts),
        "thinking": "".join(p["text"] for p in thoughts),
        "text_signatures": [p["thoughtSignature"] for p in texts if "thoughtSignature" in p],
        "thought_signatures": [p["thoughtSignature"] for p in thoughts if "thoughtSignature" in p],
        "tool_calls": [
            (
                f"gemini_{i}_{p['functionCall']['name']}_{response_id}",
                p["functionCall"]["name"],
                p["functionCall"]["args"],
                p.get("thoughtSignature"),
            )
            for i, p in enumerate(calls)
        ],
        "usage": [
            Usage(
                meta["promptTokenCount"],
                meta.get("candidatesTokenCount", 0) + thoughts_tokens,
                meta.get("cachedContentTokenCount", 0),
                thoughts_tokens,
            )
        ],
        "finish": [(reason, raw[-1])],
    }


_SNAKE = {
    "function_call": "functionCall",
    "function_response": "functionResponse",
    "thought_signature": "thoughtSignature",
}


def _camel(part: Mapping[str, Any]) -> dict[str, Any]:
    """Vertex recordings use protobuf snake_case names; the API takes both spellings."""
    return {_SNAKE.get(key, key): value for key, value in part.items()}


def _history_from_wire(
    contents: Iterable[Mapping[str, Any]], ids: Mapping[str, str] | None = None
) -> tuple[Message, ...]:
    """Recorded contents as the neutral history chatscope would hold, one message per content.

    `ids` maps recorded call ids to the ids chatscope gave the same calls.
    """
    ids = dict(ids or {})
    history = []
    for content in contents:
        blocks = tuple(_block_from_wire(_camel(part), ids) for part in content["parts"])
        if content["role"] == "model":
            role = Role.ASSISTANT
        elif all(isinstance(block, ToolResultBlock) for block in blocks):
            role = Role.TOOL
        else:
            role = Role.USER
        history.append(Message(role, blocks))
    return tuple(history)


def _block_from_wire(part: Mapping[str, Any], ids: Mapping[str, str]) -> Block:
    signature = part.get("thoughtSignature")
    if "functionCall" in part:
        call = part["functionCall"]
        call_id = ids.get(call["id"], call["id"])
        return ToolCallBlock.create(call_id, call["name"], call["args"], signature=signature)
    if "functionResponse" in part:
        reply = part["functionResponse"]
        call_id = ids.get(reply["id"], reply["id"])
        if "error" in reply["response"]:
            return ToolResultBlock(call_id, reply["name"], error=reply["response"]["error"])
        # A multimodal reply (Vertex `parts` with file_data) has no text: it travels as "".
        result = reply["response"].get("return_value", "")
        return ToolResultBlock(call_id, reply["name"], result=result)
    if part.get("thought"):
        return ThinkingBlock(part["text"], signature=signature, provider="gemini")
    return TextBlock(part["text"], signature=signature)


def _invocation_from_request(
    base_url: str, interaction: Interaction, history: Sequence[Message]
) -> ModelInvocation:
    """The invocation that should make the adapter send the recorded request."""
    body = interaction.request_body
    model = interaction.uri.split("/models/")[1].split(":")[0]
    declarations = [d for tool in body.get("tools", ()) for d in tool["functionDeclarations"]]
    tools = [
        ToolDeclaration(d["name"], d.get("description", ""), deep_freeze(_schema(d)))
        for d in declarations
    ]
    params = {
        **body.get("generationConfig", {}),
        "stream": ":streamGenerateContent" in interaction.uri,
    }
    if "toolConfig" in body:
        params["toolConfig"] = body["toolConfig"]
    system = body.get("systemInstruction", {}).get("parts", [{}])[0].get("text")
    return _invocation(base_url, history, model=model, tools=tools, params=params, system=system)


def _schema(declaration: Mapping[str, Any]) -> Any:
    for key in ("parametersJsonSchema", "parameters_json_schema", "parameters"):
        if key in declaration:
            return declaration[key]
    return {}


def _comparable(body: Mapping[str, Any]) -> dict[str, Any]:
    """A request body with the recorders' spellings and chatscope's own choices made neutral.

    Call ids become their order of appearance (so pairing is still compared), signatures the
    standard base64 alphabet, tool schemas one key, `return_value` replies `result` ones, and the
    placeholder signature of unsigned calls is dropped (its own test pins it).
    """
    ids: dict[str, str] = {}
    contents = [
        {"role": c["role"], "parts": [_comparable_part(_camel(p), ids) for p in c["parts"]]}
        for c in body["contents"]
    ]
    declarations = [d for tool in body.get("tools", ()) for d in tool["functionDeclarations"]]
    tools = [
        {"name": d["name"], "description": d.get("description") or "", "schema": _schema(d)}
        for d in declarations
    ]
    config = {k: v for k, v in body.get("generationConfig", {}).items() if k != "maxOutputTokens"}
    system = [p["text"] for p in body.get("systemInstruction", {}).get("parts", [])]
    return {
        "contents": contents,
        "tools": tools,
        "generationConfig": config,
        "system": system,
        "toolConfig": body.get("toolConfig"),
    }


def _comparable_part(part: Mapping[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    out = dict(part)
    signature = out.pop("thoughtSignature", None)
    if signature is not None and signature != UNSIGNED:
        out["thoughtSignature"] = _standard_b64(signature)
    for key in ("functionCall", "functionResponse"):
        if key in out:
            inner = dict(out[key])
            inner["id"] = ids.setdefault(inner["id"], f"call#{len(ids)}")
            inner.pop("parts", None)
            if key == "functionResponse":
                response = inner["response"]
                kind = "error" if "error" in response else "result"
                value = response.get("error", response.get("return_value", response.get("result")))
                inner["response"] = {kind: value if value is not None else ""}
            out[key] = inner
    return out


def _ok_stream() -> httpx.Response:
    return _sse_response(_sse(_chunk({"text": "ok"}, finish="STOP")))


# --- recorded traffic over a real socket --------------------------------------------------------


def test_every_gemini_fixture_is_replayed() -> None:
    """Each recording in fixtures/gemini is exercised by one of the replay tests below."""
    covered = {*REPLAYED, *MULTI_TURN, VERTEX, RETRY_INFO, NOT_FOUND}
    assert covered == {path.name for path in fixture_path("gemini").iterdir()}


@pytest.mark.parametrize("name", REPLAYED)
async def test_recorded_response_replays_to_the_recorded_content(name: str) -> None:
    """A recorded 200 sends the recorded request and parses to the recorded text, calls, usage."""
    (interaction,) = load_cassette(f"gemini/{name}")
    with replay_server(_scripted(interaction)) as server:
        async with httpx.AsyncClient() as client:
            history = _history_from_wire(interaction.request_body["contents"])
            invocation = _invocation_from_request(f"{server.url}/v1beta", interaction, history)
            events = await _collect(GeminiProvider(client), invocation)
    (request,) = server.requests
    method = interaction.uri.split(":")[-1]
    assert request.path.endswith(f"/v1beta/models/{invocation.model}:{method}")
    assert request.headers["x-goog-api-key"] == KEY
    assert _comparable(request.json()) == _comparable(interaction.request_body)
    assert _summary(events) == _expected(interaction)
    assert isinstance(events[-1], FinishEvent)


async def test_streamed_thoughts_come_before_the_signed_text() -> None:
    """Four thought parts stream as thinking, then the first text part carries the signature."""
    interaction = load_cassette("gemini/test_google_model_thinking_part_iter.yaml")[0]
    with replay_server(_scripted(interaction)) as server:
        async with httpx.AsyncClient() as client:
            events = await _collect(GeminiProvider(client), _invocation(f"{server.url}/v1beta"))
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["ThinkingDelta"] * 4 + ["TextDelta"] * 19 + ["UsageEvent", "FinishEvent"]
    texts = [e for e in events if isinstance(e, TextDelta)]
    assert texts[0].text.startswith("This is a great question!")
    assert texts[0].signature is not None
    assert texts[0].signature.startswith("CiIB0e2Kb6Syj1a961EfbWv4W5C8RgAA/hGleV9VYJtnJFh4")
    assert all(t.signature is None for t in texts[1:])
    assert events[-2:] == [
        UsageEvent(Usage(input_tokens=34, output_tokens=469 + 787, reasoning_tokens=787)),
        FinishEvent(FinishReason.STOP, raw="STOP"),
    ]


async def test_retry_info_429_is_a_rate_limit_with_its_delay() -> None:
    """The 429 RESOURCE_EXHAUSTED body with RetryInfo 34.4s is a RateLimitError to retry then."""
    body = raw_fixture(f"gemini/{RETRY_INFO}")
    scripted = ScriptedResponse(429, {"content-type": "application/json"}, [body])
    with replay_server(scripted) as server:
        async with httpx.AsyncClient() as client:
            with pytest.raises(RateLimitError) as caught:
                await _collect(GeminiProvider(client), _invocation(f"{server.url}/v1beta"))
    assert caught.value.retry_after == 34.4
    assert (caught.value.status, caught.value.category) == (429, ErrorCategory.RATE_LIMIT)
    assert (
        caught.value.provider_message == "You exceeded your current quota, please check your plan."
    )
    assert caught.value.retryable


async def test_recorded_404_is_a_model_not_found_error() -> None:
    """A misspelled model's recorded 404 becomes ModelNotFoundError with Google's message."""
    interaction = load_cassette(f"gemini/{NOT_FOUND}")[0]
    with replay_server(_scripted(interaction)) as server:
        async with httpx.AsyncClient() as client:
            history = _history_from_wire(interaction.request_body["contents"])
            invocation = _invocation_from_request(f"{server.url}/v1beta", interaction, history)
            with pytest.raises(ModelNotFoundError) as caught:
                await _collect(GeminiProvider(client), invocation)
    assert (caught.value.status, caught.value.category) == (404, ErrorCategory.NOT_FOUND)
    assert caught.value.provider_message.startswith(
        "models/gemini-3.6-flahs is not found for API version v1beta"
    )
    assert server.requests[0].path == "/v1beta/models/gemini-3.6-flahs:generateContent"


@pytest.mark.parametrize("name", MULTI_TURN)
async def test_multi_turn_recording_is_continued_with_the_recorded_requests(name: str) -> None:
    """Parsed turns plus recorded tool results rebuild every later request, signatures included."""
    interactions = load_cassette(f"gemini/{name}")
    with replay_server(*map(_scripted, interactions)) as server:
        async with httpx.AsyncClient() as client:
            provider = GeminiProvider(client)
            history = _history_from_wire(interactions[0].request_body["contents"])
            for turn, interaction in enumerate(interactions):
                invocation = _invocation_from_request(f"{server.url}/v1beta", interaction, history)
                events = await _collect(provider, invocation)
                _assert_sent_as_recorded(server.requests[turn], interaction, history)
                assert _summary(events) == _expected(interaction)
                if turn + 1 < len(interactions):
                    history = _extend(history, _assemble(events), interactions[turn + 1])
    assert len(server.requests) == len(interactions) >= 2


async def test_vertex_conversation_ends_in_its_recorded_400() -> None:
    """Two signed Vertex call turns replay, then the third request meets its recorded 400."""
    interactions = load_cassette(f"gemini/{VERTEX}")
    with replay_server(*map(_scripted, interactions)) as server:
        async with httpx.AsyncClient() as client:
            provider = GeminiProvider(client)
            history = _history_from_wire(interactions[0].request_body["contents"])
            for turn, interaction in enumerate(interactions[:2]):
                invocation = _invocation_from_request(f"{server.url}/v1beta", interaction, history)
                events = await _collect(provider, invocation)
                _assert_sent_as_recorded(server.requests[turn], interaction, history)
                assert _summary(events) == _expected(interaction)
                history = _extend(history, _assemble(events), interactions[turn + 1])
            invocation = _invocation_from_request(f"{server.url}/v1beta", interactions[2], history)
            with pytest.raises(InvalidRequestError) as caught:
                await _collect(provider, invocation)
    _assert_sent_as_recorded(server.requests[2], interactions[2], history)
    assert (caught.value.status, caught.value.category) == (400, ErrorCategory.INVALID_REQUEST)
    assert caught.value.provider_message.startswith("Cannot fetch content from the provided URL")


def _assert_sent_as_recorded(
    request: Any, interaction: Interaction, history: Sequence[Message]
) -> None:
    """Same structure as the recorded request, and every signature exactly as Gemini gave it."""
    body = request.json()
    assert _comparable(body) == _comparable(interaction.request_body)
    expected = [
        block.signature
        for message in history
        if message.role is Role.ASSISTANT
        for block in message.blocks
        if not isinstance(block, ToolResultBlock) and block.signature is not None
    ]
    model_parts = [p for c in body["contents"] if c["role"] == "model" for p in c["parts"]]
    sent = [p["thoughtSignature"] for p in model_parts if "thoughtSignature" in p]
    assert [s for s in sent if s != UNSIGNED] == expected


def _extend(
    history: tuple[Message, ...], reply: Message, following: Interaction
) -> tuple[Message, ...]:
    """Our parsed reply, then what the recording sent after it, its call ids mapped to ours."""
    recorded = following.request_body["contents"]
    parts = [_camel(part) for part in recorded[len(history)]["parts"]]
    calls = [part["functionCall"] for part in parts if "functionCall" in part]
    ids = {call["id"]: ours.id for call, ours in zip(calls, reply.tool_calls, strict=True)}
    return (*history, reply, *_history_from_wire(recorded[len(history) + 1 :], ids))


# --- the request: URL, headers, body ------------------------------------------------------------


def _recording_client(seen: list[httpx.Request]) -> httpx.AsyncClient:
    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _ok_stream()

    return _mock_client(respond)


async def test_request_has_the_url_headers_and_body_of_the_invocation() -> None:
    """URL, method, the key header and every body field come from the invocation."""
    seen: list[httpx.Request] = []
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    invocation = _invocation(
        "https://generativelanguage.test/v1beta/",
        tools=[ToolDeclaration("get_weather", "Weather of a city", deep_freeze(schema))],
        params={
            "temperature": 0.5,
            "thinkingConfig": {"includeThoughts": True},
            "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        },
        system="Be brief.",
        max_output_tokens=2048,
    )
    async with _recording_client(seen) as client:
        await _collect(GeminiProvider(client), invocation)
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == (
        "https://generativelanguage.test/v1beta/models/gemini-test:streamGenerateContent?alt=sse"
    )
    assert request.headers["x-goog-api-key"] == KEY
    assert "key" not in request.url.params
    assert KEY not in str(request.url)
    assert json.loads(request.content) == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {
            "maxOutputTokens": 2048,
            "temperature": 0.5,
            "thinkingConfig": {"includeThoughts": True},
        },
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Weather of a city",
                        "parametersJsonSchema": schema,
                    }
                ]
            }
        ],
    }


async def test_stream_false_uses_generate_content_and_parses_json() -> None:
    """`stream: False` asks generateContent for one JSON body, parsed to the same events."""
    seen: list[httpx.Request] = []
    body = _chunk({"text": "Paris."}, finish="MAX_TOKENS", usage={"promptTokenCount": 3})

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=body)

    invocation = _invocation("https://g.test/v1beta", params={"stream": False})
    async with _mock_client(respond) as client:
        events = await _collect(GeminiProvider(client), invocation)
    assert str(seen[0].url) == "https://g.test/v1beta/models/gemini-test:generateContent"
    assert "stream" not in json.loads(seen[0].content)["generationConfig"]
    assert events == [
        TextDelta("Paris."),
        UsageEvent(Usage(input_tokens=3)),
        FinishEvent(FinishReason.LENGTH, raw="MAX_TOKENS"),
    ]


async def test_provider_holds_its_client_name_and_sent_history() -> None:
    """No per-call state can hide on the adapter: no instance dict, and three slots, its client,
    its name and the wire form of the history it last sent (reused only for the same messages)."""
    async with httpx.AsyncClient() as client:
        provider = GeminiProvider(client, name="vertex")
        slots = {slot for kind in GeminiProvider.__mro__ for slot in getattr(kind, "__slots__", ())}
        assert slots == {"_client", "_name", "_sent"}
        assert not hasattr(provider, "__dict__")
        assert provider.name == "vertex"


async def test_missing_base_url_raises_with_the_runtime_id() -> None:
    """Without a base URL there is no default host: the call fails naming the runtime."""
    async with _recording_client([]) as client:
        with pytest.raises(MissingProviderRuntimeError) as caught:
            await _collect(GeminiProvider(client), _invocation(None))
    assert (caught.value.missing, caught.value.runtime_id) == (("base_url",), "rt-test")


async def test_history_from_other_providers_maps_to_user_and_model_contents() -> None:
    """Foreign thinking is left out; a foreign call gets the documented placeholder, even when
    it carries a signature field of its own, since only Gemini's signatures verify at Gemini."""
    seen: list[httpx.Request] = []
    call = ToolCallBlock.create(
        "toolu_01abc", "search", {"q": "x"}, signature="Zm9yZWlnbg==", provider="anthropic"
    )
    history = (
        Message.user("find x"),
        Message(
            Role.ASSISTANT,
            (
                ThinkingBlock("claude thoughts", signature="c2ln", provider="anthropic"),
                ThinkingBlock("gemini thoughts", signature="Z2Vt", provider="gemini"),
                TextBlock("Searching.", signature="dGV4dA=="),
                call,
            ),
        ),
        Message(Role.TOOL, (ToolResultBlock(call.id, "search", error="boom"),)),
        Message.user("and y?"),
    )
    async with _recording_client(seen) as client:
        await _collect(GeminiProvider(client), _invocation("https://g.test/v1beta", history))
    assert json.loads(seen[0].content)["contents"] == [
        {"role": "user", "parts": [{"text": "find x"}]},
        {
            "role": "model",
            "parts": [
                {"text": "gemini thoughts", "thought": True, "thoughtSignature": "Z2Vt"},
                {"text": "Searching.", "thoughtSignature": "dGV4dA=="},
                {
                    "functionCall": {"name": "search", "args": {"q": "x"}, "id": "toolu_01abc"},
                    "thoughtSignature": UNSIGNED,
                },
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "search",
                        "response": {"error": "boom"},
                        "id": "toolu_01abc",
                    }
                },
                {"text": "and y?"},
            ],
        },
    ]


# --- malformed input and faults -----------------------------------------------------------------


async def test_blocked_prompt_finishes_as_content_filter() -> None:
    """A response with no candidates but a prompt block reason ends as CONTENT_FILTER."""
    blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {}}
    async with _mock_client(lambda request: _sse_response(_sse(blocked))) as client:
        events = await _collect(GeminiProvider(client), _invocation("https://g.test/v1beta"))
    assert events == [
        UsageEvent(Usage()),
        FinishEvent(FinishReason.CONTENT_FILTER, raw="PROHIBITED_CONTENT"),
    ]


async def test_connection_dropped_mid_stream_is_a_network_error() -> None:
    """The server closing the socket after two chunks raises ProviderNetworkError."""
    interaction = load_cassette("gemini/test_google_model_thinking_part_iter.yaml")[0]
    events: list[ProviderEvent] = []
    with replay_server(ScriptedResponse.sse(interaction.body, drop_after=2)) as server:
        async with httpx.AsyncClient() as client:
            invocation = _invocation(f"{server.url}/v1beta")
            with pytest.raises(ProviderNetworkError) as caught:
                await _collect_until_error(GeminiProvider(client), invocation, events)
    assert caught.value.category is ErrorCategory.NETWORK
    assert isinstance(caught.value.__cause__, httpx.TransportError)
    assert [type(e) for e in events] == [ThinkingDelta, ThinkingDelta]


# --- properties ---------------------------------------------------------------------------------

NAMES = st.from_regex(r"[a-z][a-z0-9_.]{0,12}", fullmatch=True)
SIGNATURES = st.binary(min_size=1, max_size=30).map(lambda raw: base64.b64encode(raw).decode())


async def _events_of(*chunks: bytes) -> list[ProviderEvent]:
    async with _mock_client(lambda request: _sse_response(*chunks)) as client:
        return await _collect(GeminiProvider(client), _invocation("https://g.test/v1beta"))


@given(recording=st.sampled_from(SSE_RECORDINGS), points=SPLITS)
async def test_any_chunking_of_a_recorded_stream_gives_the_same_events(
    recording: tuple[str, int], points: list[int]
) -> None:
    """Cutting a recorded CRLF-separated stream at arbitrary byte offsets never changes events."""
    name, index = recording
    body = load_cassette(f"gemini/{name}")[index].body
    assert await _events_of(*_split_at(body, points)) == await _events_of(body)


@SOCKET
@given(pieces=st.integers(min_value=1, max_value=120))
async def test_any_chunking_over_a_real_socket_gives_the_same_events(
    socket_server: ReplayServer, pieces: int
) -> None:
    """The recorded thinking stream sent in n TCP chunks parses to the recording for every n."""
    interaction = load_cassette("gemini/test_google_model_thinking_part_iter.yaml")[0]
    socket_server.enqueue(ScriptedResponse.sse(interaction.body, pieces=pieces))
    async with httpx.AsyncClient() as client:
        invocation = _invocation(f"{socket_server.url}/v1beta")
        events = await _collect(GeminiProvider(client), invocation)
    assert _summary(events) == _expected(interaction)


@given(
    calls=st.lists(st.tuples(NAMES, JSON_OBJECTS, st.none() | SIGNATURES), min_size=1, max_size=4),
    response_id=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", max_size=20),
    one_chunk=st.booleans(),
)
async def test_function_calls_parse_with_stable_distinct_ids(
    calls: list[tuple[str, dict[str, Any], str | None]], response_id: str, one_chunk: bool
) -> None:
    """Id-less calls keep their arguments and signature and get ids that are stable and distinct."""
    parts = [
        {"functionCall": {"name": name, "args": args}} | ({"thoughtSignature": sig} if sig else {})
        for name, args, sig in calls
    ]
    if one_chunk:
        body = _sse(_chunk(*parts, finish="STOP", response_id=response_id))
    else:
        chunks = [_chunk(part, response_id=response_id) for part in parts]
        body = _sse(*chunks, _chunk(finish="STOP", response_id=response_id))
    first, again = await _events_of(body), await _events_of(body)
    parsed = [e.call for e in first if isinstance(e, ToolCallEvent)]
    assert [(c.name, thaw(c.arguments), c.signature) for c in parsed] == calls
    assert [c.id for c in parsed] == [e.call.id for e in again if isinstance(e, ToolCallEvent)]
    assert len({c.id for c in parsed}) == len(parsed)
    assert all(response_id in c.id for c in parsed)
    assert first[-1] == FinishEvent(FinishReason.TOOL_CALLS, raw="STOP")


@given(
    counts=st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(0, 10**5), st.integers(0, 10**5)),
        min_size=1,
        max_size=6,
    ),
    cached=st.integers(0, 10**5),
)
async def test_usage_repeated_in_every_chunk_is_reported_once(
    counts: list[tuple[int, int, int]], cached: int
) -> None:
    """However many chunks repeat usageMetadata, one UsageEvent carries the last chunk's counts."""
    chunks = [
        _chunk(
            {"text": f"t{i}"},
            usage={
                "promptTokenCount": prompt,
                "candidatesTokenCount": out,
                "thoughtsTokenCount": thoughts,
                "cachedContentTokenCount": cached,
            },
            finish="STOP" if i == len(counts) - 1 else None,
        )
        for i, (prompt, out, thoughts) in enumerate(counts)
    ]
    events = await _events_of(_sse(*chunks))
    prompt, out, thoughts = counts[-1]
    assert [e.usage for e in events if isinstance(e, UsageEvent)] == [
        Usage(prompt, out + thoughts, cached, thoughts)
    ]


@given(
    raw=st.sampled_from(sorted(FINISH_REASONS)) | st.from_regex(r"[A-Z_]{3,20}", fullmatch=True),
    with_call=st.booleans(),
)
async def test_finish_reason_maps_once_and_last(raw: str, with_call: bool) -> None:
    """Known reasons map to their finish reason, others to OTHER; STOP after calls is TOOL_CALLS."""
    part = {"functionCall": {"name": "f", "args": {}}} if with_call else {"text": "x"}
    events = await _events_of(_sse(_chunk(part), _chunk(finish=raw)))
    expected = FINISH_REASONS.get(raw, FinishReason.OTHER)
    if with_call and expected is FinishReason.STOP:
        expected = FinishReason.TOOL_CALLS
    assert [e for e in events if isinstance(e, FinishEvent)] == [FinishEvent(expected, raw=raw)]
    assert events[-1] == FinishEvent(expected, raw=raw)


@given(text=st.text(), points=SPLITS, separator=st.sampled_from([b"\r\n\r\n", b"\n\n", b"\r\r"]))
async def test_text_split_across_chunks_streams_back_exactly(
    text: str, points: list[int], separator: bytes
) -> None:
    """Any text split over chunks, with any SSE line ending, arrives joined unchanged."""
    pieces = _pieces(text, points)
    chunks = [
        _chunk({"text": p}, finish="STOP" if i == len(pieces) - 1 else None)
        for i, p in enumerate(pieces)
    ]
    body = b"".join(b"data: " + json.dumps(c).encode() + separator for c in chunks)
    events = await _events_of(body)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == text


PARTS = st.one_of(
    st.builds(
        lambda t, s: {"text": t} | ({"thoughtSignature": s} if s else {}),
        st.text(min_size=1),
        st.none() | SIGNATURES,
    ),
    st.builds(
        lambda t, s: {"text": t, "thought": True} | ({"thoughtSignature": s} if s else {}),
        st.text(min_size=1),
        st.none() | SIGNATURES,
    ),
    st.builds(
        lambda n, a, s: (
            {"functionCall": {"name": n, "args": a}} | ({"thoughtSignature": s} if s else {})
        ),
        NAMES,
        JSON_OBJECTS,
        st.none() | SIGNATURES,
    ),
)


@given(
    parts=st.lists(PARTS, min_size=1, max_size=6), finish=st.sampled_from(sorted(FINISH_REASONS))
)
async def test_streamed_and_whole_body_forms_of_a_reply_agree(
    parts: list[dict[str, Any]], finish: str
) -> None:
    """The same parts as one generateContent body and as one SSE chunk each give equal events."""
    usage = {"promptTokenCount": 5, "candidatesTokenCount": 7}
    whole = _chunk(*parts, finish=finish, usage=usage)
    streamed = [_chunk(part, usage=usage) for part in parts] + [_chunk(finish=finish, usage=usage)]
    async with _mock_client(lambda request: httpx.Response(200, json=whole)) as client:
        from_json = await _collect(GeminiProvider(client), _invocation("https://g.test/v1beta"))
    assert await _events_of(_sse(*streamed)) == from_json
    assert from_json == [*_expected_events(parts), UsageEvent(Usage(5, 7)), from_json[-1]]


def _expected_events(parts: Sequence[Mapping[str, Any]]) -> list[ProviderEvent]:
    """Each part's events by the contract: a thought's signature arrives on its own delta."""
    events: list[ProviderEvent] = []
    calls = 0
    for part in parts:
        signature = part.get("thoughtSignature")
        if "functionCall" in part:
            call = part["functionCall"]
            call_id = f"gemini_{calls}_{call['name']}_resp-1"
            calls += 1
            block = ToolCallBlock.create(
                call_id, call["name"], call["args"], signature=signature, provider="gemini"
            )
            events.append(ToolCallEvent(block))
        elif part.get("thought"):
            events.append(ThinkingDelta(part["text"]))
            if signature:
                events.append(ThinkingDelta("", signature=signature))
        else:
            events.append(TextDelta(part["text"], signature=signature))
    return events


@given(
    key=st.from_regex(r"[a-zA-Z]{1,12}", fullmatch=True),
    whole_body=st.booleans(),
)
async def test_unknown_part_kinds_are_errors_naming_the_kind(key: str, whole_body: bool) -> None:
    """A part of a kind chatscope cannot represent is refused by name, never dropped."""
    if key in {"text", "thought", "thoughtSignature", "functionCall"}:
        key = f"{key}X"
    chunk = _chunk({key: {"any": 1}}, finish="STOP")
    response = httpx.Response(200, json=chunk) if whole_body else _sse_response(_sse(chunk))
    async with _mock_client(lambda request: response) as client:
        with pytest.raises(StreamProtocolError, match=f"'{key}'"):
            await _collect(GeminiProvider(client), _invocation("https://g.test/v1beta"))


THINKING_PROVIDERS = st.sampled_from(["gemini", "anthropic", None])
OUTCOMES = st.one_of(
    st.builds(lambda text: {"result": text}, st.text(max_size=20)),
    st.builds(lambda text: {"error": text}, st.text(max_size=20)),
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[Message, ...]:
    """Conversations with signed and unsigned parts of several providers and paired tool calls."""
    ids = iter(
        draw(st.lists(st.text(min_size=1, max_size=16), min_size=12, max_size=12, unique=True))
    )
    messages: list[Message] = []
    for _ in range(draw(st.integers(1, 3))):
        messages.append(Message.user(draw(st.text(min_size=1, max_size=20))))
        for _ in range(draw(st.integers(0, 2))):
            thinking = draw(
                st.lists(
                    st.builds(
                        ThinkingBlock,
                        st.text(max_size=20),
                        signature=st.none() | SIGNATURES,
                        provider=THINKING_PROVIDERS,
                    ),
                    max_size=2,
                )
            )
            texts = draw(
                st.lists(
                    st.builds(TextBlock, st.text(max_size=20), signature=st.none() | SIGNATURES),
                    max_size=2,
                )
            )
            calls = [
                ToolCallBlock.create(
                    next(ids),
                    draw(NAMES),
                    draw(JSON_OBJECTS),
                    signature=draw(st.none() | SIGNATURES),
                )
                for _ in range(draw(st.integers(0, 2)))
            ]
            messages.append(Message(Role.ASSISTANT, (*thinking, *texts, *calls)))
            if calls:
                results = [ToolResultBlock(c.id, c.name, **draw(OUTCOMES)) for c in calls]
                messages.append(Message(Role.TOOL, tuple(results)))
    return tuple(messages)


def _expected_parts(history: Sequence[Message]) -> list[tuple[Any, ...]]:
    """What should reach the wire, in order: all but empty unsigned text and foreign thinking."""
    expected: list[tuple[Any, ...]] = []
    for message in history:
        for block in message.blocks:
            if isinstance(block, TextBlock) and (block.text or block.signature):
                expected.append(("text", block.text, block.signature))
            elif isinstance(block, ThinkingBlock) and block.provider == "gemini":
                expected.append(("thought", block.text, block.signature))
            elif isinstance(block, ToolCallBlock):
                expected.append(
                    (
                        "call",
                        block.id,
                        block.name,
                        thaw(block.arguments),
                        block.signature or UNSIGNED,
                    )
                )
            elif isinstance(block, ToolResultBlock):
                outcome = {"error": block.error} if block.is_error else {"result": block.result}
                expected.append(("result", block.call_id, block.name, outcome))
    return expected


def _sent_parts(contents: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    seen: list[tuple[Any, ...]] = []
    for content in contents:
        for part in content["parts"]:
            signature = part.get("thoughtSignature")
            if "functionCall" in part:
                call = part["functionCall"]
                seen.append(("call", call["id"], call["name"], call["args"], signature))
            elif "functionResponse" in part:
                reply = part["functionResponse"]
                seen.append(("result", reply["id"], reply["name"], reply["response"]))
            elif part.get("thought"):
                seen.append(("thought", part["text"], signature))
            else:
                seen.append(("text", part["text"], signature))
    return seen


async def _sent_contents(history: Sequence[Message]) -> list[dict[str, Any]]:
    seen: list[httpx.Request] = []
    async with _recording_client(seen) as client:
        await _collect(GeminiProvider(client), _invocation("https://g.test/v1beta", history))
    contents: list[dict[str, Any]] = json.loads(seen[0].content)["contents"]
    return contents


@given(history=histories())
async def test_histories_map_to_alternating_contents_in_order(
    history: tuple[Message, ...],
) -> None:
    """All that can be sent is sent in order, signatures verbatim, in alternating turns."""
    contents = await _sent_contents(history)
    roles = [content["role"] for content in contents]
    assert all(a != b for a, b in itertools.pairwise(roles))
    assert all(content["parts"] for content in contents)
    assert _sent_parts(contents) == _expected_parts(history)


@given(history=histories())
async def test_every_function_call_is_answered_in_the_next_user_turn(
    history: tuple[Message, ...],
) -> None:
    """Each model turn's calls are answered, same ids and names in order, by the next user turn."""
    contents = await _sent_contents(history)
    for position, content in enumerate(contents):
        calls = [p["functionCall"] for p in content["parts"] if "functionCall" in p]
        if not calls:
            continue
        answer = contents[position + 1]
        replies = [p["functionResponse"] for p in answer["parts"] if "functionResponse" in p]
        assert answer["role"] == "user"
        assert [(r["id"], r["name"]) for r in replies] == [(c["id"], c["name"]) for c in calls]


GEMINI_KEYS = st.from_regex(r"AIza[0-9A-Za-z_-]{35}", fullmatch=True)


@given(
    key=GEMINI_KEYS | ODD_KEYS,
    status=st.sampled_from([400, 401, 403, 404, 429, 500, 503]),
    in_stream=st.booleans(),
)
async def test_a_key_echoed_by_the_server_never_reaches_an_error_message(
    key: str, status: int, in_stream: bool
) -> None:
    """However the server echoes the call's key, neither the error nor the URL contains it."""
    seen: list[httpx.Request] = []
    error = {"error": {"code": status, "message": f"API key not valid: {key} (key={key})"}}

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if in_stream:
            return _sse_response(_sse(error))
        return httpx.Response(status, json=error)

    async with _mock_client(respond) as client:
        with pytest.raises(ProviderError) as caught:
            await _collect(GeminiProvider(client), _invocation("https://g.test/v1beta", key=key))
    assert key not in str(caught.value)
    assert key not in caught.value.provider_message
    assert seen[0].headers["x-goog-api-key"] == key
    assert "key" not in seen[0].url.params


@given(
    calls=st.lists(
        st.tuples(
            st.none() | GEMINI_KEYS,
            st.from_regex(r"gemini-[a-z0-9.-]{1,12}", fullmatch=True),
            st.sampled_from(["https://a.test/v1beta", "http://127.0.0.1:8080/v1beta"]),
            st.booleans(),
        ),
        min_size=1,
        max_size=5,
    )
)
async def test_each_call_carries_only_its_own_invocation_values(
    calls: list[tuple[str | None, str, str, bool]],
) -> None:
    """Interleaved invocations through one provider never see each other's key, model or mode."""
    seen: list[httpx.Request] = []
    async with _recording_client(seen) as client:
        provider = GeminiProvider(client)
        for key, model, url, stream in calls:
            invocation = _invocation(url, key=key, model=model, params={"stream": stream})
            await _collect(provider, invocation)
    method = {True: ":streamGenerateContent?alt=sse", False: ":generateContent"}
    assert [(r.headers.get("x-goog-api-key"), str(r.url)) for r in seen] == [
        (key, f"{url}/models/{model}{method[stream]}") for key, model, url, stream in calls
    ]
    assert all("key" not in r.url.params for r in seen)


@given(
    config=st.dictionaries(
        st.sampled_from(
            ["temperature", "topK", "stopSequences", "thinkingConfig", "maxOutputTokens"]
        ),
        JSON_VALUES,
        max_size=4,
    ),
    top_level=st.dictionaries(
        st.sampled_from(["toolConfig", "safetySettings", "cachedContent"]), JSON_VALUES, max_size=2
    ),
)
async def test_model_params_land_in_generation_config_or_beside_it(
    config: dict[str, Any], top_level: dict[str, Any]
) -> None:
    """Generation params go into generationConfig, request-level ones beside it, all verbatim."""
    seen: list[httpx.Request] = []
    async with _recording_client(seen) as client:
        invocation = _invocation("https://g.test/v1beta", params=config | top_level)
        await _collect(GeminiProvider(client), invocation)
    body = json.loads(seen[0].content)
    assert body["generationConfig"] == {"maxOutputTokens": 1024} | config
    assert {key: body[key] for key in top_level} == top_level
    assert set(body) == {"contents", "generationConfig", *top_level}


@given(recording=st.sampled_from(SSE_RECORDINGS), data=st.data())
async def test_a_corrupted_data_line_is_a_protocol_error(
    recording: tuple[str, int], data: st.DataObject
) -> None:
    """Garbage or a wrong shape in place of any chunk's JSON fails the stream as malformed."""
    name, index = recording
    frames = _frames(load_cassette(f"gemini/{name}")[index].body)
    target = data.draw(st.integers(min_value=0, max_value=len(frames) - 1))
    garbage = data.draw(
        st.sampled_from(
            ["{", "not json", '{"candidates": ', "[1, 2]", '"text"', '{"candidates": 7}']
        )
    )
    frames[target] = f"data: {garbage}"
    with pytest.raises(StreamProtocolError, match="malformed"):
        await _events_of("\r\n\r\n".join(frames).encode() + b"\r\n\r\n")


@given(recording=st.sampled_from(SSE_RECORDINGS), data=st.data())
async def test_a_stream_cut_before_its_finish_reason_is_an_error(
    recording: tuple[str, int], data: st.DataObject
) -> None:
    """Any prefix of a recorded stream ending before the chunk with finishReason fails."""
    name, index = recording
    frames = _frames(load_cassette(f"gemini/{name}")[index].body)
    last = max(i for i, frame in enumerate(frames) if '"finishReason"' in frame)
    cut = data.draw(st.integers(min_value=0, max_value=last))
    truncated = "".join(f"{frame}\r\n\r\n" for frame in frames[:cut])
    with pytest.raises(StreamProtocolError, match="without a finishReason"):
        await _events_of(truncated.encode())


@given(count=st.integers(min_value=2, max_value=5), whole_body=st.booleans())
async def test_several_candidates_are_refused(count: int, whole_body: bool) -> None:
    """chatscope asks for one candidate; a response with more is an error, not a silent pick."""
    candidate = {"content": {"role": "model", "parts": [{"text": "x"}]}, "finishReason": "STOP"}
    chunk = {"candidates": [candidate] * count}
    response = httpx.Response(200, json=chunk) if whole_body else _sse_response(_sse(chunk))
    async with _mock_client(lambda request: response) as client:
        with pytest.raises(StreamProtocolError, match=f"{count} candidates"):
            await _collect(GeminiProvider(client), _invocation("https://g.test/v1beta"))


@given(
    status=st.sampled_from([400, 401, 403, 404, 429, 500, 503]),
    message=st.text(min_size=1, max_size=40),
    retry=st.none() | st.floats(min_value=0, max_value=300).map(lambda s: f"{s:.1f}s"),
)
async def test_an_error_inside_a_stream_equals_the_same_error_over_http(
    status: int, message: str, retry: str | None
) -> None:
    """An error chunk in a 200 stream raises what the same body with its code as status does."""
    error: dict[str, Any] = {"code": status, "message": message, "status": "X"}
    if retry is not None:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry}
        ]
    in_stream = _sse_response(_sse(_chunk({"text": "partial"}), {"error": error}))
    over_http = httpx.Response(status, json={"error": error})
    streamed, direct = [await _raised_by(response) for response in (in_stream, over_http)]
    assert type(streamed) is type(direct)
    assert (streamed.category, streamed.status, streamed.retry_after) == (
        direct.category,
        direct.status,
        direct.retry_after,
    )
    assert streamed.provider_message == direct.provider_message
    assert direct.retryable is (status in {429, 500, 503})


@given(
    kind=st.sampled_from(TRANSPORT_FAILURES),
    detail=st.text(max_size=30),
    key=GEMINI_KEYS | ODD_KEYS,
)
async def test_transport_failures_become_network_errors(
    kind: type[httpx.TransportError], detail: str, key: str
) -> None:
    """Every httpx transport failure is a ProviderNetworkError (timeouts: TIMEOUT), keyless."""
    failure = kind(f"{detail} {key}")

    invocation = _invocation("https://g.test/v1beta", key=key)
    caught = await transport_failure_raised(GeminiProvider, invocation, failure)
    timeout = issubclass(kind, httpx.TimeoutException)
    assert caught.value.category is (ErrorCategory.TIMEOUT if timeout else ErrorCategory.NETWORK)
    # A scrubbed error does not chain to the text it replaced, or a traceback would print it.
    assert caught.value.__cause__ is (None if key in str(failure) else failure)
    assert key not in str(caught.value)


SIGNED_PARTS = st.one_of(
    st.builds(
        lambda text, signature: {"text": text, "thoughtSignature": signature},
        st.text(min_size=1),
        SIGNATURES,
    ),
    st.builds(
        lambda text, signature: {"text": text, "thought": True, "thoughtSignature": signature},
        st.text(min_size=1),
        SIGNATURES,
    ),
    st.builds(
        lambda name, args, signature: (
            {"functionCall": {"name": name, "args": args}}
            | ({"thoughtSignature": signature} if signature else {})
        ),
        NAMES,
        JSON_OBJECTS,
        st.none() | SIGNATURES,
    ),
)


@given(parts=st.lists(SIGNED_PARTS, min_size=1, max_size=6), streamed=st.booleans())
async def test_a_parsed_reply_goes_back_exactly_as_received(
    parts: list[dict[str, Any]], streamed: bool
) -> None:
    """Text, thoughts, calls and their signatures go back verbatim; calls gain their stable id."""
    reply = _chunk(*parts, finish="STOP")
    if streamed:
        events = await _events_of(_sse(reply))
    else:
        async with _mock_client(lambda request: httpx.Response(200, json=reply)) as client:
            events = await _collect(GeminiProvider(client), _invocation("https://g.test/v1beta"))
    contents = await _sent_contents((Message.user("q"), _assemble(events)))
    expected = []
    calls = 0
    for part in parts:
        if "functionCall" in part:
            name = part["functionCall"]["name"]
            call = {**part["functionCall"], "id": f"gemini_{calls}_{name}_resp-1"}
            expected.append({"thoughtSignature": UNSIGNED, **part, "functionCall": call})
            calls += 1
        else:
            expected.append(part)
    assert contents[1] == {"role": "model", "parts": expected}
