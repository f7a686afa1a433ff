"""Helpers shared by the OpenAI adapter tests: invocations, replay, event summaries."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from chatscope.services.events import (
    FinishEvent,
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
    Usage,
)
from chatscope.services.ports import ModelProvider
from tests.support.cassettes import Interaction
from tests.support.replay_server import ReplayServer, ScriptedResponse, replay_server

DEFAULT_KEY = "sk-test-0123456789abcdef"


@pytest.fixture(scope="module")
def shared_server() -> Iterator[ReplayServer]:
    """One replay server for all examples of a property test: each start/stop costs ~0.5 s."""
    with replay_server() as server:
        yield server


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


def declaration(name: str, description: str | None, parameters: Any) -> ToolDeclaration:
    """A tool declaration from recorded wire values (a null description becomes empty)."""
    return ToolDeclaration(name, description or "", deep_freeze(parameters))


def scripted(interaction: Interaction) -> ScriptedResponse:
    """The recorded response, served as recorded: status, content type and body."""
    if interaction.is_sse:
        return ScriptedResponse.sse(interaction.body)
    headers = {"content-type": interaction.content_type}
    return ScriptedResponse(interaction.status, headers, [interaction.body])


async def collect(provider: ModelProvider, invocation: ModelInvocation) -> list[ProviderEvent]:
    """Every event of one call."""
    return [event async for event in provider.stream(invocation)]


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

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def recording_client(
    answer: Callable[[httpx.Request], httpx.Response], seen: list[httpx.Request]
) -> httpx.AsyncClient:
    """A client that records each request and answers it with `answer(request)`."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def sse_body(payloads: Iterable[Any], *, done: bool = False) -> bytes:
    """An SSE body with one `data:` event per JSON payload."""
    body = b"".join(b"data: " + json.dumps(payload).encode() + b"\n\n" for payload in payloads)
    return body + (b"data: [DONE]\n\n" if done else b"")


def split_at(data: bytes, points: Iterable[int]) -> list[bytes]:
    """`data` cut at the given offsets."""
    cuts = [0, *sorted(set(points)), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(cuts) if end > start]


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
    pieces: list[str] = []

    def close(signature: str | None = None, redacted: str | None = None) -> None:
        nonlocal kind, pieces
        if kind is TextDelta and "".join(pieces):
            blocks.append(TextBlock("".join(pieces)))
        elif kind is ThinkingDelta:
            blocks.append(ThinkingBlock("".join(pieces), signature, redacted, provider))
        kind, pieces = None, []

    for event in events:
        if isinstance(event, TextDelta | ThinkingDelta):
            if kind is not type(event):
                close()
                kind = type(event)
            pieces.append(event.text)
            if isinstance(event, ThinkingDelta) and (event.signature or event.redacted_data):
                close(event.signature, event.redacted_data)
        elif isinstance(event, ToolCallEvent):
            close()
            blocks.append(event.call)
    close()
    return Message(Role.ASSISTANT, tuple(blocks))
