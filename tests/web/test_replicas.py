"""Two `chatscope serve` processes on one database, as two replicas behind a balancer.

A session started on one continues on the other, and turns sent at the same moment to one
session through both replicas are each stored whole, one after the other: never interleaved,
never lost. It runs on one SQLite file, and on PostgreSQL where the suite has a server
(`CHATSCOPE_TEST_DATABASE_URL`, set by `.ci/run`), like every database case of the suite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.cli import cli_env
from tests.support.databases import DATABASE_BACKENDS, fresh_database
from tests.support.web import serve


@contextmanager
def replica(database_url: str, workspace: Path) -> Iterator[str]:
    """A `chatscope serve` process on `database_url` (the offline demo provider); its URL."""
    env = cli_env(
        workspace / ".data",
        CHATSCOPE_DATABASE_URL=database_url,
        CHATSCOPE_SERVER__MAX_TURNS_PER_TENANT="64",
    )
    with serve(workspace, env) as served:
        yield served.url


async def _send(client: httpx.AsyncClient, url: str, session: str, prompt: str) -> int:
    """One turn through `url`; the HTTP status, after reading the stream to its end."""
    async with client.stream(
        "POST", f"{url}/v1/sessions/{session}/messages", json={"content": prompt}
    ) as response:
        async for _ in response.aiter_lines():
            pass
        return response.status_code


@pytest.mark.parametrize("backend", DATABASE_BACKENDS)
async def test_two_replicas_share_sessions_and_store_concurrent_turns_whole(
    backend: str, tmp_path: Path
) -> None:
    """Start on A, continue on B; then 8 turns at once to one session, alternating replicas:
    every accepted turn is stored whole and contiguous, a refused one (409) not at all."""
    async with fresh_database(backend, tmp_path) as database_url:
        with ExitStack() as stack:
            first = stack.enter_context(replica(database_url, tmp_path))
            second = stack.enter_context(replica(database_url, tmp_path))
            async with httpx.AsyncClient(timeout=60) as client:
                created = await client.post(f"{first}/v1/sessions", json={})
                assert created.status_code == 201, created.text
                session = created.json()["id"]
                assert await _send(client, first, session, "turn on A") == 200
                assert await _send(client, second, session, "turn on B") == 200
                shown = (await client.get(f"{first}/v1/sessions/{session}")).json()
                assert shown["turns"] == 2

                prompts = [f"at once {index}" for index in range(8)]
                statuses = await asyncio.gather(
                    *(
                        _send(client, (first, second)[index % 2], session, prompt)
                        for index, prompt in enumerate(prompts)
                    )
                )
                assert set(statuses) <= {200, 409}, statuses
                accepted = [p for p, status in zip(prompts, statuses, strict=True) if status == 200]
                assert accepted
                stored = (await client.get(f"{second}/v1/sessions/{session}")).json()
    assert stored["turns"] == 2 + len(accepted)
    users = [m["text"] for m in stored["messages"] if m["role"] == "user"]
    assert users[:2] == ["turn on A", "turn on B"]
    assert sorted(users[2:]) == sorted(accepted)
    # Each turn is whole and contiguous: a user prompt, then that turn's assistant and tool
    # messages, until the next prompt; the last message of every turn is the final answer.
    turns: list[list[dict[str, object]]] = []
    for message in stored["messages"]:
        if message["role"] == "user":
            turns.append([message])
        else:
            turns[-1].append(message)
    for turn in turns:
        assert [m["role"] for m in turn][-1] == "assistant"
        assert turn[-1]["text"]
        assert len(turn) == len(turns[0])
