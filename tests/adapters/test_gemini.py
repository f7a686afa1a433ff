"""The Gemini adapter: recorded traffic over a real socket, requests, faults and properties."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from chatscope.adapters.gemini import GeminiProvider
from chatscope.config.ephemeral import EphemeralSettings
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
from chatscope.services.invocation import Credentials, ModelInvocation, ToolDeclaration
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
from tests.support.cassettes import FIXTURES, Interaction, load_cassette, raw_fixture
from tests.support.replay_server import ScriptedResponse, replay_server

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
    ("test_google_model.yaml", 0),
    ("test_google_model_stream.yaml", 0),
    ("test_google_model_structured_output.yaml", 0),
    ("test_google_model_structured_output.yaml", 1),
    ("test_google_model_retry.yaml", 0),
    ("test_google_model_retry.yaml", 1),
    ("test_google_model_retry.yaml", 2),
    ("test_google_model_iter_stream.yaml", 0),
    ("test_google_model_iter_stream.yaml", 1),
    ("test_google_model_iter_stream.yaml", 2),
    ("test_google_model_thinking_part_iter.yaml", 0),
    ("test_google_model_thinking_part.yaml", 0),
    ("test_google_model_thinking_part.yaml", 1),
    (VERTEX, 0),
    (VERTEX, 1),
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


def _invocation(
    base_url: str | None,
    history: Sequence[Message] = (Message.user("hi"),),
    *,
    key: str | None = KEY,
    model: str = "gemini-test",
    tools: Sequence[ToolDeclaration] = (),
    params: Mapping[str, Any] | None = None,
    system: str | None = None,
    max_output_tokens: int = 1024,
) -> ModelInvocation:
    return ModelInvocation(
        runtime_id="rt-test",
        provider="gemini",
        model=model,
        base_url=base_url,
        credentials=Credentials(SecretStr(key) if key is not None else None),
        history=tuple(history),
        tools=tuple(tools),
        model_params=deep_freeze(dict(params or {})),
        ephemerals=EphemeralSettings(maxOutputTokens=max_output_tokens),
        system_prompt=system,
    )


async def _collect(provider: GeminiProvider, invocation: ModelInvocation) -> list[ProviderEvent]:
    return [event async for event in provider.stream(invocation)]


def _scripted(interaction: Interaction) -> ScriptedResponse:
    """The recorded response as the local server sends it, with its recorded content type."""
    if interaction.is_sse:
        response = ScriptedResponse.sse(interaction.body)
        response.headers = {"content-type": interaction.content_type}
        return response
    return ScriptedResponse(
        interaction.status, {"content-type": interaction.content_type}, [interaction.body]
    )


def _mock_client(respond: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(respond))


def _sse_response(*chunks: bytes) -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())


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


def _split_at(body: bytes, points: Iterable[int]) -> list[bytes]:
    cuts = sorted({point % (len(body) + 1) for point in points} | {0, len(body)})
    return [body[start:end] for start, end in zip(cuts, cuts[1:], strict=False) if end > start]


def _pieces(text: str, points: Iterable[int]) -> list[str]:
    cuts = sorted({point % (len(text) + 1) for point in points} | {0, len(text)})
    return [text[start:end] for start, end in zip(cuts, cuts[1:], strict=False)] or [""]


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


def _assemble(events: Sequence[ProviderEvent], provider: str = "gemini") -> Message:
    """Fold a response's events into the assistant message a chat loop would store."""
    blocks: list[Block] = []
    run: list[TextDelta | ThinkingDelta] = []
    for event in events:
        if isinstance(event, TextDelta | ThinkingDelta):
            if run and type(run[-1]) is not type(event):
                blocks.append(_close(run, provider))
                run = []
            run.append(event)
            if event.signature is not None:
                blocks.append(_close(run, provider))
                run = []
        elif isinstance(event, ToolCallEvent):
            if run:
                blocks.append(_close(run, provider))
                run = []
            blocks.append(event.call)
    if run:
        blocks.append(_close(run, provider))
    return Message(Role.ASSISTANT, tuple(blocks))


def _close(run: Sequence[TextDelta | ThinkingDelta], provider: str) -> Block:
    text = "".join(event.text for event in run)
    if isinstance(run[-1], TextDelta):
        return TextBlock(text, signature=run[-1].signature)
    return ThinkingBlock(text, signature=run[-1].signature, provider=provider)


def _ok_stream() -> httpx.Response:
    return _sse_response(_sse(_chunk({"text": "ok"}, finish="STOP")))


# --- recorded traffic over a real socket --------------------------------------------------------


def test_every_gemini_fixture_is_replayed() -> None:
    """Each recording in fixtures/gemini is exercised by one of the replay tests below."""
    covered = {name for name, _ in REPLAYED} | {RETRY_INFO, NOT_FOUND}
    assert covered == {path.name for path in (FIXTURES / "gemini").iterdir()}


@pytest.mark.parametrize(("name", "index"), REPLAYED)
async def test_recorded_response_replays_to_the_recorded_content(name: str, index: int) -> None:
    """A recorded 200 sends the recorded request and parses to the recorded text, calls, usage."""
    interaction = load_cassette(f"gemini/{name}")[index]
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
    assert kinds == ["ThinkingDelta"] * 4 + ["TextDelta"] * 18 + ["UsageEvent", "FinishEvent"]
    texts = [e for e in events if isinstance(e, TextDelta)]
    assert texts[0].text.startswith("This is a great question!")
    assert texts[0].signature is not None
    assert texts[0].signature.startswith("CiIB0e2Kb6Syj1a961EfbWv4W5C8RgAA/hGleV9VYJtnJFh4")
    assert all(t.signature is None for t in texts[1:])
    assert events[-2:] == [
        UsageEvent(Usage(input_tokens=34, output_tokens=469 + 787, reasoning_tokens=787)),
        FinishEvent(FinishReason.STOP, raw="STOP"),
    ]


async def test_repeated_cumulative_usage_is_reported_once_from_the_last_chunk() -> None:
    """Three chunks each carry usage; one event reports the last chunk's figures (13 in, 8 out)."""
    interaction = load_cassette("gemini/test_google_model_stream.yaml")[0]
    with replay_server(_scripted(interaction)) as server:
        async with httpx.AsyncClient() as client:
            events = await _collect(GeminiProvider(client), _invocation(f"{server.url}/v1beta"))
    assert [e for e in events if isinstance(e, TextDelta)] == [
        TextDelta("The"),
        TextDelta(" capital of France"),
        TextDelta(" is Paris.\n"),
    ]
    assert [e.usage for e in events if isinstance(e, UsageEvent)] == [Usage(13, 8)]


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
