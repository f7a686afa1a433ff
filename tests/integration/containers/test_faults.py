"""Faults over a real socket, end to end through a chat: each ends in success or the right
typed error, and history never holds a half turn."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chatscope.config.settings import ExplicitSettings
from chatscope.containers import ApplicationContainer
from chatscope.errors import (
    ChatscopeError,
    InvalidRequestError,
    ProviderNetworkError,
    StreamProtocolError,
)
from chatscope.services.chat.session import ChatSession
from chatscope.services.events import TextDelta
from chatscope.services.messages import Role
from tests.support.replay_server import ReplayServer, ScriptedResponse, replay_server


def _sse(*pieces: str, finish: str = "stop") -> bytes:
    chunks = [_chunk({"content": piece}, None) for piece in pieces]
    chunks.append(_chunk({}, finish))
    chunks.append({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}})
    body = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks)
    return body.encode() + b"data: [DONE]\n\n"


def _chunk(delta: dict[str, str], finish: str | None) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


ANSWER = _sse("All ", "good.")


def _ok() -> ScriptedResponse:
    return ScriptedResponse.sse(ANSWER)


def _status(status: int, **headers: str) -> ScriptedResponse:
    return ScriptedResponse.json_body({"error": {"message": f"status {status}"}}, status, **headers)


@dataclass(frozen=True)
class Fault:
    """A scripted server behaviour and what the turn must end in."""

    responses: tuple[ScriptedResponse, ...]
    error: type[ChatscopeError] | None
    requests: int


FAULTS = {
    "dropped mid-stream": Fault(
        (ScriptedResponse.sse(ANSWER, drop_after=1), _ok()), ProviderNetworkError, 1
    ),
    "malformed SSE line": Fault(
        (
            ScriptedResponse.sse(
                b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\ndata: {oops\n\n'
            ),
        ),
        StreamProtocolError,
        1,
    ),
    "invalid JSON body": Fault(
        (ScriptedResponse(200, {"content-type": "application/json"}, [b"{not json"]),),
        StreamProtocolError,
        1,
    ),
    "429 with Retry-After, then success": Fault(
        (_status(429, **{"retry-after": "0"}), _ok()), None, 2
    ),
    "500 twice, then success": Fault((_status(500), _status(500), _ok()), None, 3),
    "529 overloaded, then success": Fault((_status(529), _ok()), None, 2),
    "slow first byte, then success": Fault(
        (ScriptedResponse.sse(ANSWER, first_byte_delay=1.0), _ok()), None, 2
    ),
    "400 is not retried": Fault((_status(400), _ok()), InvalidRequestError, 1),
}


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    """One live server for the module; each test queues its own responses."""
    with replay_server() as live:
        yield live


@pytest.fixture
async def app(server: ReplayServer, tmp_path: Path) -> AsyncIterator[ApplicationContainer]:
    """An application on the real OpenAI adapter pointed at the local server, tiny delays."""
    settings = ExplicitSettings(
        workspace=tmp_path,
        provider="openai",
        model="local-model",
        providers={"openai": {"base_url": f"{server.url}/v1", "auth_required": False}},
        retry={"initial_delay": 0.001, "max_delay": 0.002},
        http={"first_byte_timeout": 0.3},
    )
    container = ApplicationContainer(settings=settings, environ={})
    await container.init_resources()  # type: ignore[misc]
    yield container
    await container.shutdown_resources()  # type: ignore[misc]


async def _chat_with_one_turn(app: ApplicationContainer, server: ReplayServer) -> ChatSession:
    server.enqueue(_ok())
    chat: ChatSession = app.runtime.chat_session(context=app.runtime.scopes().foreground())
    await chat.send("first question")
    return chat


@pytest.mark.parametrize("name", sorted(FAULTS))
async def test_a_fault_ends_cleanly_and_history_keeps_only_whole_turns(
    app: ApplicationContainer, server: ReplayServer, name: str
) -> None:
    """Each fault ends in success or its typed error; a failed turn leaves history as it was."""
    fault = FAULTS[name]
    chat = await _chat_with_one_turn(app, server)
    before = await chat.context.history.messages()
    server.reset()
    server.enqueue(*fault.responses)
    if fault.error is None:
        turn = await chat.send("second question")
        assert turn.text == "All good."
        after = await chat.context.history.messages()
        assert after[: len(before)] == before
        assert [m.role for m in after[len(before) :]] == [Role.USER, Role.ASSISTANT]
    else:
        with pytest.raises(fault.error):
            await chat.send("second question")
        assert await chat.context.history.messages() == before
    assert len(server.requests) == fault.requests
    server.enqueue(_ok())  # leftovers of this fault must not leak into the next test
    server.requests.clear()
    _drain(server)


def _drain(server: ReplayServer) -> None:
    while server._queue:
        server._queue.popleft()


async def test_cancelling_a_turn_closes_the_stream_and_keeps_history(
    app: ApplicationContainer, server: ReplayServer
) -> None:
    """A turn cancelled mid-stream is gone: its task ends cancelled and history is unchanged."""
    chat = await _chat_with_one_turn(app, server)
    before = await chat.context.history.messages()
    server.enqueue(ScriptedResponse.sse(_sse("a ", "b ", "c ", "d "), chunk_delay=0.2))
    first_text = asyncio.Event()

    async def run_turn() -> None:
        async for event in chat.stream("second question"):
            if isinstance(event, TextDelta):
                first_text.set()

    task = asyncio.create_task(run_turn())
    await asyncio.wait_for(first_text.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await chat.context.history.messages() == before
    assert [m.role for m in before] == [Role.USER, Role.ASSISTANT]
    server.reset()
