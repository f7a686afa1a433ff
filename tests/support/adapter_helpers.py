"""Helpers shared by the provider-adapter tests: calls, clients, bodies, folding, strategies."""

from __future__ import annotations

import itertools
import json
import string
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from chatscope.config.ephemeral import EphemeralSettings
from chatscope.errors import ProviderNetworkError
from chatscope.services.events import (
    FinishEvent,
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
    Usage,
)
from chatscope.services.runtime.invocation import Credentials, ModelInvocation
from chatscope.services.runtime.ports import ModelProvider
from chatscope.services.tools.ports import ToolDeclaration
from tests.support.cassettes import Interaction
from tests.support.replay_server import ScriptedResponse, replay_server

DEFAULT_KEY = "sk-test-0123456789abcdef"
ProviderFactory = Callable[[httpx.AsyncClient], ModelProvider]

# --- invocations ---------------------------------------------------------------------------------


def make_invocation(
    base_url: str | None,
    *,
    history: Sequence[Message] = (Message.user("hi"),),
    key: str | None = DEFAULT_KEY,
    model: str = "gpt-4o",
    tools: Sequence[ToolDeclaration] = (),
    params: dict[str, Any] | None = None,
    system: str | None = None,
    provider: str = "openai",
    runtime_id: str = "runtime-1",
) -> ModelInvocation:
    """One call's frozen input, with sensible test defaults."""
    return ModelInvocation(
        runtime_id=runtime_id,
        provider=provider,
        model=model,
        base_url=base_url,
        credentials=Credentials(SecretStr(key) if key is not None else None),
        history=tuple(history),
        tools=tuple(tools),
        model_params=deep_freeze(params or {}),
        system_prompt=system,
    )


def native_invocation(
    base_url: str | None,
    history: Sequence[Message] = (Message.user("hi"),),
    *,
    provider: str,
    key: str | None,
    model: str,
    tools: Sequence[ToolDeclaration] = (),
    params: Mapping[str, Any] | None = None,
    system: str | None = None,
    max_output_tokens: int = 1024,
) -> ModelInvocation:
    """An invocation for a native (Anthropic, Gemini) adapter, with a max-output ephemeral."""
    return ModelInvocation(
        runtime_id="rt-test",
        provider=provider,
        model=model,
        base_url=base_url,
        credentials=Credentials(SecretStr(key) if key is not None else None),
        history=tuple(history),
        tools=tuple(tools),
        model_params=deep_freeze(dict(params or {})),
        ephemerals=EphemeralSettings.model_validate({"maxOutputTokens": max_output_tokens}),
        system_prompt=system,
    )


def declaration(name: str, description: str | None, parameters: Any) -> ToolDeclaration:
    """A tool declaration from recorded wire values (a null description becomes empty)."""
    return ToolDeclaration(name, description or "", deep_freeze(parameters))


# --- calling a provider --------------------------------------------------------------------------


async def collect(provider: ModelProvider, invocation: ModelInvocation) -> list[ProviderEvent]:
    """Every event of one call."""
    return [event async for event in provider.stream(invocation)]


async def collect_until_error(
    provider: ModelProvider, invocation: ModelInvocation, events: list[ProviderEvent]
) -> None:
    """Append each event of one call to `events` until the stream ends or raises."""
    async for event in provider.stream(invocation):
        events.append(event)


async def replay_events(
    factory: ProviderFactory, response: ScriptedResponse, **options: Any
) -> list[Any]:
    """Serve one response on a real socket and collect the adapter's events."""
    with replay_server(response) as server:
        async with httpx.AsyncClient() as client:
            return await collect(factory(client), make_invocation(server.url + "/v1", **options))


async def mocked_events(factory: ProviderFactory, pieces: list[bytes], **options: Any) -> list[Any]:
    """Stream `pieces` through a mock transport and collect the adapter's events."""
    async with mock_client(pieces) as client:
        return await collect(factory(client), make_invocation("http://llm/v1", **options))


async def transport_failure_raised(
    factory: ProviderFactory, invocation: ModelInvocation, failure: httpx.TransportError
) -> pytest.ExceptionInfo[ProviderNetworkError]:
    """The network error a provider raises when its transport fails with `failure`."""

    def respond(request: httpx.Request) -> httpx.Response:
        raise failure

    async with responding_client(respond) as client:
        with pytest.raises(ProviderNetworkError) as caught:
            await collect(factory(client), invocation)
    return caught


# --- responses and clients -----------------------------------------------------------------------


def scripted(interaction: Interaction, *, keep_content_type: bool = False) -> ScriptedResponse:
    """The recorded response as recorded; `keep_content_type` also keeps an SSE content type."""
    if interaction.is_sse:
        response = ScriptedResponse.sse(interaction.body)
        if keep_content_type:
            response.headers = {"content-type": interaction.content_type}
        return response
    headers = {"content-type": interaction.content_type}
    return ScriptedResponse(interaction.status, headers, [interaction.body])


def responding_client(respond: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    """A client whose every request is answered by `respond(request)`."""
    return httpx.AsyncClient(transport=httpx.MockTransport(respond))


def mock_client(
    body_pieces: Iterable[bytes],
    *,
    content_type: str = "text/event-stream",
    status: int = 200,
    seen: list[httpx.Request] | None = None,
) -> httpx.AsyncClient:
    """A client whose every request is answered with `body_pieces`, streamed piece by piece."""
    pieces = list(body_pieces)

    async def stream() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, headers={"content-type": content_type}, content=stream())

    return responding_client(handler)


def recording_client(
    answer: Callable[[httpx.Request], httpx.Response], seen: list[httpx.Request]
) -> httpx.AsyncClient:
    """A client that records each request and answers it with `answer(request)`."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    return responding_client(handler)


def sse_response(*chunks: bytes) -> httpx.Response:
    """A 200 event-stream response whose body arrives as the given chunks."""

    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())


def sse_body(payloads: Iterable[Any], *, done: bool = False) -> bytes:
    """An SSE body with one `data:` event per JSON payload."""
    body = b"".join(b"data: " + json.dumps(payload).encode() + b"\n\n" for payload in payloads)
    return body + (b"data: [DONE]\n\n" if done else b"")


def sse_frames(body: bytes, separator: str = "\n\n") -> list[str]:
    """The non-blank frames of an SSE body split on `separator`."""
    return [frame for frame in body.decode().split(separator) if frame.strip()]


# --- cutting -------------------------------------------------------------------------------------


def split_at(data: bytes, points: Iterable[int], *, wrap: bool = False) -> list[bytes]:
    """`data` cut at the given offsets; with `wrap`, each offset is taken modulo len + 1."""
    if wrap:
        cuts = sorted({point % (len(data) + 1) for point in points} | {0, len(data)})
    else:
        cuts = [0, *sorted(set(points)), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(cuts) if end > start]


def pieces(text: str, points: Iterable[int]) -> list[str]:
    """`text` cut at the given offsets taken modulo len + 1; never an empty list."""
    cuts = sorted({point % (len(text) + 1) for point in points} | {0, len(text)})
    return [text[start:end] for start, end in itertools.pairwise(cuts)] or [""]


# --- summarising and folding events --------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """The content of one response, independent of how it was chunked."""

    text: str
    thinking: str
    calls: list[tuple[str, str, Any]]
    usage: Usage
    finish: FinishEvent
    signatures: list[tuple[str | None, str | None]]


def outcome(events: Sequence[ProviderEvent]) -> Outcome:
    """Summarise events, checking there is exactly one `FinishEvent` and that it is last."""
    finishes = [event for event in events if isinstance(event, FinishEvent)]
    assert len(finishes) == 1
    assert events[-1] is finishes[0]
    usage = Usage()
    for event in events:
        if isinstance(event, UsageEvent):
            usage = usage + event.usage
    return Outcome(
        text="".join(event.text for event in events if isinstance(event, TextDelta)),
        thinking="".join(event.text for event in events if isinstance(event, ThinkingDelta)),
        calls=[
            (event.call.id, event.call.name, thaw(event.call.arguments))
            for event in events
            if isinstance(event, ToolCallEvent)
        ],
        usage=usage,
        finish=finishes[0],
        signatures=[
            (event.signature, event.redacted_data)
            for event in events
            if isinstance(event, ThinkingDelta) and (event.signature or event.redacted_data)
        ],
    )


def assistant_message(events: Iterable[ProviderEvent], provider: str) -> Message:
    """The assistant message a chat loop would store: deltas joined, a signature closes thinking."""
    blocks: list[Block] = []
    kind: type[TextDelta] | type[ThinkingDelta] | None = None
    parts: list[str] = []

    def close(signature: str | None = None, redacted: str | None = None) -> None:
        nonlocal kind, parts
        if kind is TextDelta and "".join(parts):
            blocks.append(TextBlock("".join(parts)))
        elif kind is ThinkingDelta:
            blocks.append(ThinkingBlock("".join(parts), signature, redacted, provider))
        kind, parts = None, []

    for event in events:
        if isinstance(event, TextDelta | ThinkingDelta):
            if kind is not type(event):
                close()
                kind = type(event)
            parts.append(event.text)
            if isinstance(event, ThinkingDelta) and (event.signature or event.redacted_data):
                close(event.signature, event.redacted_data)
        elif isinstance(event, ToolCallEvent):
            close()
            blocks.append(event.call)
    close()
    return Message(Role.ASSISTANT, tuple(blocks))


def assemble(events: Sequence[ProviderEvent], provider: str, *, redacted: bool) -> Message:
    """Fold events into the stored assistant message; `redacted` data closes and is kept too."""
    blocks: list[Block] = []
    run: list[TextDelta | ThinkingDelta] = []
    for event in events:
        if isinstance(event, TextDelta | ThinkingDelta):
            if run and type(run[-1]) is not type(event):
                blocks.append(_close(run, provider, redacted=redacted))
                run = []
            run.append(event)
            closing = redacted and getattr(event, "redacted_data", None) is not None
            if event.signature is not None or closing:
                blocks.append(_close(run, provider, redacted=redacted))
                run = []
        elif isinstance(event, ToolCallEvent):
            if run:
                blocks.append(_close(run, provider, redacted=redacted))
                run = []
            blocks.append(event.call)
    if run:
        blocks.append(_close(run, provider, redacted=redacted))
    return Message(Role.ASSISTANT, tuple(blocks))


def _close(run: Sequence[TextDelta | ThinkingDelta], provider: str, *, redacted: bool) -> Block:
    """One block from a run of same-kind deltas, signed by the last one."""
    text = "".join(event.text for event in run)
    last = run[-1]
    if isinstance(last, TextDelta):
        return TextBlock(text, signature=last.signature)
    if redacted:
        return ThinkingBlock(
            text, signature=last.signature, redacted_data=last.redacted_data, provider=provider
        )
    return ThinkingBlock(text, signature=last.signature, provider=provider)


# --- hypothesis strategies and settings ----------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
JSON_OBJECTS = st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5)
SPLITS = st.lists(st.integers(min_value=0, max_value=100_000), max_size=30)
SOCKET = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ODD_KEYS = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=10, max_size=40
).filter(lambda key: key not in "[REDACTED]")
TRANSPORT_FAILURES: list[type[httpx.TransportError]] = [
    httpx.ConnectTimeout,
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.PoolTimeout,
    httpx.ConnectError,
    httpx.ReadError,
    httpx.WriteError,
    httpx.CloseError,
    httpx.RemoteProtocolError,
    httpx.LocalProtocolError,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
]

# The OpenAI tests draw smaller JSON than the native-adapter tests above.
openai_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
openai_arguments = st.dictionaries(st.text(max_size=8), openai_json_values, max_size=4)
secrets = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=12, max_size=48)
PROPERTY = settings(max_examples=40, deadline=None)
# One module-scoped server serves every example on purpose: it replays only what each enqueues.
SOCKET_PROPERTY = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def is_json_object(text: str) -> bool:
    """Whether `text` parses as a JSON object."""
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False
