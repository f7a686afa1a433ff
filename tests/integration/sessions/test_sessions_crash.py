"""The crash test: `chatscope chat --session` killed (`kill -9`) in the middle of a streamed turn.

Two turns complete (the second with a tool call), then a third turn runs a tool, starts
streaming its answer from a deliberately slow local server, and the process is killed after
the first piece reached its stdout. Reopening the session must show exactly the two completed
turns, and a fourth chat must continue from them alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from pathlib import Path

import pytest

from chatscope.adapters.storage.catalog import SessionCatalog
from chatscope.adapters.storage.schema import prepare_database
from chatscope.services.messages import Role
from tests.support.cli import (
    CliResult,
    cli_env,
    openai_text_stream,
    openai_tool_call_stream,
    run_cli,
    start_cli,
)
from tests.support.databases import DATABASE_BACKENDS, database_for, fresh_database
from tests.support.replay_server import ReplayServer, ScriptedResponse, replay_server

SESSION_NOTICE = re.compile(r"\[session ([0-9a-f]{32}): continue with --session\]")


def sse(body: bytes, *, chunk_delay: float = 0.0) -> ScriptedResponse:
    """A streamed 200 response, one chunk per event, `chunk_delay` seconds apart."""
    return ScriptedResponse.sse(body, chunk_delay=chunk_delay)


async def chat(
    server: ReplayServer, workdir: Path, env: dict[str, str], prompt: str, *more: str
) -> CliResult:
    """`chatscope chat` on the OpenAI adapter against the local server."""
    args = ("--provider", "openai", "--model", "local-model", "--base-url", f"{server.url}/v1")
    return await run_cli("chat", prompt, *args, *more, cwd=workdir, env=env)


async def kill_during_streamed_answer(
    server: ReplayServer, workdir: Path, env: dict[str, str], session_id: str
) -> str:
    """Start a third turn, wait until its answer is streaming, `kill -9` it; returns stdout."""
    server.enqueue(
        sse(openai_tool_call_stream("call_3", "list_directory", {"path": "."})),
        sse(openai_text_stream(*(f"partial-{n} " for n in range(40))), chunk_delay=0.5),
    )
    child = await start_cli(
        "chat", "third question", "--provider", "openai", "--model", "local-model",
        "--base-url", f"{server.url}/v1", "--session", session_id, cwd=workdir, env=env,
    )  # fmt: skip
    assert child.stdout is not None
    seen = b""
    while b"partial-0" not in seen:
        piece = await asyncio.wait_for(child.stdout.read(64), timeout=60)
        assert piece, "the chat ended before its answer streamed"
        seen += piece
    os.kill(child.pid, signal.SIGKILL)
    await child.communicate()
    assert child.returncode == -signal.SIGKILL
    return seen.decode()


@pytest.mark.parametrize("backend", DATABASE_BACKENDS)
async def test_a_chat_killed_mid_stream_keeps_exactly_the_completed_turns(
    backend: str, tmp_path: Path
) -> None:
    """After `kill -9` mid-turn the session holds the two completed turns and nothing partial."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "notes.txt").write_text("hello")
    async with fresh_database(backend, tmp_path) as url:
        extra = {} if backend == "sqlite" else {"CHATSCOPE_DATABASE_URL": url}
        env = cli_env(tmp_path / "data", OPENAI_API_KEY="sk-local-test-key-1", **extra)
        with replay_server() as server:
            server.enqueue(sse(openai_text_stream("answer ", "one")))
            first = await chat(server, workdir, env, "first question")
            assert first.returncode == 0, first.stderr
            notice = SESSION_NOTICE.search(first.stderr)
            assert notice, first.stderr
            session_id = notice.group(1)

            server.enqueue(
                sse(openai_tool_call_stream("call_2", "list_directory", {"path": "."})),
                sse(openai_text_stream("answer two")),
            )
            second = await chat(server, workdir, env, "second question", "--session", session_id)
            assert second.returncode == 0, second.stderr

            streamed = await kill_during_streamed_answer(server, workdir, env, session_id)
            assert "partial-0" in streamed

            database = database_for(url)
            try:
                await prepare_database(database)
                catalog = SessionCatalog(database)
                stored = await catalog.transcript(session_id)
                summary = await catalog.get(session_id)
            finally:
                await database.dispose()

            server.reset()
            server.enqueue(sse(openai_text_stream("answer four")))
            fourth = await chat(
                server, workdir, env, "fourth question", "--session", session_id, "--json"
            )
            assert fourth.returncode == 0, fourth.stderr
            [request] = server.requests

    assert [(item.turn, item.message.role) for item in stored] == [
        (1, Role.USER), (1, Role.ASSISTANT),
        (2, Role.USER), (2, Role.ASSISTANT), (2, Role.TOOL), (2, Role.ASSISTANT),
    ]  # fmt: skip
    texts = [item.message.text for item in stored]
    assert texts == ["first question", "answer one", "second question", "", "", "answer two"]
    assert stored[3].message.tool_calls[0].id == "call_2"
    assert "notes.txt" in (stored[4].message.tool_results[0].result or "")
    assert (summary.turn_count, summary.message_count) == (2, 6)
    assert all("partial" not in text and "third" not in text for text in texts)

    sent = request.json()["messages"]
    assert [message["role"] for message in sent] == [
        "user", "assistant", "user", "assistant", "tool", "assistant", "user",
    ]  # fmt: skip
    assert "third question" not in json.dumps(sent)
    assert json.loads(fourth.stdout)["session_id"] == session_id
