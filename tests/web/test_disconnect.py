"""A turn is stored whole or not at all: when its client disconnects (over a real socket), and
when the server stops while it runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from chatscope.adapters.storage.catalog import SessionCatalog
from chatscope.containers.application import ApplicationContainer
from chatscope.services.events import (
    FinishEvent,
    FinishReason,
    ProviderEvent,
    TextDelta,
    UsageEvent,
)
from chatscope.services.messages import Role, Usage
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.testing import build_test_app
from chatscope.web import create_app
from tests.support.web import on_socket, serving

WHOLE_ANSWER = "first half, second half"


class GatedProvider:
    """Streams the first half of its answer, then waits for the test to open the gate."""

    name = "openai"

    def __init__(self) -> None:
        self.streaming = asyncio.Event()
        self.gate = asyncio.Event()

    async def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
        """First half, wait, second half."""
        yield TextDelta("first half, ")
        self.streaming.set()
        await self.gate.wait()
        yield TextDelta("second half")
        yield UsageEvent(Usage(3, 4))
        yield FinishEvent(FinishReason.STOP)


def app_with(provider: GatedProvider, tmp_path: Path, grace: float = 30) -> ApplicationContainer:
    """A container saving sessions in SQLite, on the gated provider."""
    return build_test_app(
        provider,
        workspace=tmp_path,
        history_backend="database",
        data_dir=tmp_path / "data",
        server={"grace_seconds": grace},
    )


async def wait_for_turns(catalog: SessionCatalog, session_id: str, turns: int) -> None:
    """Until the session has `turns` turns (10 s at most)."""
    async with asyncio.timeout(10):
        while (await catalog.get(session_id)).turn_count < turns:  # noqa: ASYNC110 - polls a database
            await asyncio.sleep(0.02)


async def test_a_turn_whose_client_disconnects_completes_and_is_stored_whole(
    tmp_path: Path,
) -> None:
    """The client reads the first event and hangs up; the turn runs on and is stored whole,
    and the session takes its next turn as usual."""
    provider = GatedProvider()
    container = app_with(provider, tmp_path)
    async with on_socket(create_app(container)) as url, httpx.AsyncClient(base_url=url) as http:
        session = (await http.post("/v1/sessions", json={"model": "openai"})).json()["id"]
        path = f"/v1/sessions/{session}/messages"
        async with http.stream("POST", path, json={"content": "tell me"}) as response:
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    break  # hang up after the first event
        await asyncio.wait_for(provider.streaming.wait(), timeout=10)
        catalog: SessionCatalog = container.storage.session_catalog()
        assert (await catalog.get(session)).turn_count == 0
        provider.gate.set()
        await wait_for_turns(catalog, session, 1)
        stored = [item.message for item in await catalog.transcript(session)]
        assert [(m.role, m.text) for m in stored] == [
            (Role.USER, "tell me"),
            (Role.ASSISTANT, WHOLE_ANSWER),
        ]
        again = await http.post(path, json={"content": "more"})
        assert again.status_code == 200
        assert "event: done" in again.text
        await wait_for_turns(catalog, session, 2)


async def test_turns_still_running_at_shutdown_get_the_grace_period(tmp_path: Path) -> None:
    """The app stops while a turn runs: shutdown waits for it (within `grace_seconds`), so it
    is stored whole before the database closes."""
    provider = GatedProvider()
    container = app_with(provider, tmp_path, grace=10)
    async with serving(container) as http:
        session = (await http.post("/v1/sessions", json={"model": "openai"})).json()["id"]
        running = asyncio.create_task(
            http.post(f"/v1/sessions/{session}/messages", json={"content": "x"})
        )
        await asyncio.wait_for(provider.streaming.wait(), timeout=10)
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, provider.gate.set)  # while shutting down
        stopping = loop.time()
    assert loop.time() - stopping >= 0.3  # shutdown waited for the turn
    assert "event: done" in (await running).text
    async with serving(app_with(GatedProvider(), tmp_path)) as http:
        assert (await http.get(f"/v1/sessions/{session}")).json()["turns"] == 1


async def test_turns_past_the_grace_period_are_cancelled_and_store_nothing(
    tmp_path: Path,
) -> None:
    """A turn still running when the grace period ends is cancelled: its client is told, and
    the session holds nothing of it."""
    provider = GatedProvider()
    container = app_with(provider, tmp_path, grace=0.2)
    async with serving(container) as http:
        session = (await http.post("/v1/sessions", json={"model": "openai"})).json()["id"]
        running = asyncio.create_task(
            http.post(f"/v1/sessions/{session}/messages", json={"content": "x"})
        )
        await asyncio.wait_for(provider.streaming.wait(), timeout=10)
    events = (await running).text
    assert "event: error" in events
    assert "nothing of it was stored" in events
    restarted = app_with(GatedProvider(), tmp_path)
    async with serving(restarted) as http:
        read = (await http.get(f"/v1/sessions/{session}")).json()
    assert (read["turns"], read["messages"]) == (0, [])
