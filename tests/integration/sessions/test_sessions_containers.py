"""Saved sessions through the containers: the backend is chosen there, chats resume by id."""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.pool import QueuePool

from chatscope.adapters.storage.catalog import SessionCatalog
from chatscope.adapters.storage.database import Database
from chatscope.adapters.storage.sql_history import SqlHistoryStore
from chatscope.containers import ApplicationContainer
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.messages import Message, Role
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.testing import FunctionProvider, ScriptedReply, build_test_app
from tests.support.databases import DATABASE_BACKENDS, fresh_database


@pytest.fixture(params=DATABASE_BACKENDS)
async def database_settings(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[dict[str, Any]]:
    """Settings for the database backend on a fresh database of each kind."""
    async with fresh_database(request.param, tmp_path) as url:
        yield {"history_backend": "database", "data_dir": tmp_path / "data", "database_url": url}


class Recorder:
    """A fake model that answers with the number of messages it was sent."""

    def __init__(self) -> None:
        self.histories: list[tuple[Message, ...]] = []

    def __call__(self, invocation: ModelInvocation) -> ScriptedReply:
        self.histories.append(invocation.history)
        return ScriptedReply(text=f"seen {len(invocation.history)}")


async def started(app: ApplicationContainer) -> ApplicationContainer:
    """`app` with its resources initialised (the database migrated)."""
    await app.init_resources()  # type: ignore[misc]
    return app


async def test_a_chat_is_saved_and_a_new_application_resumes_it(
    tmp_path: Path, database_settings: dict[str, Any]
) -> None:
    """Turns saved by one application are the history a later application continues from."""
    recorder = Recorder()
    first = await started(
        build_test_app(FunctionProvider(recorder), workspace=tmp_path, **database_settings)
    )
    context = first.runtime.scopes().foreground()
    assert isinstance(context.history, SqlHistoryStore)
    chat = first.runtime.chat_session(context=context)
    await chat.send("one")
    await chat.send("two")
    await first.shutdown_resources()  # type: ignore[misc]

    second = await started(
        build_test_app(FunctionProvider(recorder), workspace=tmp_path, **database_settings)
    )
    request = ScopeRequest(session_id=context.state.session_id)
    resumed = second.runtime.scopes().foreground(request)
    turn = await second.runtime.chat_session(context=resumed).send("three")
    catalog: SessionCatalog = second.storage.session_catalog()
    summary = await catalog.get(context.state.session_id)
    await second.shutdown_resources()  # type: ignore[misc]

    assert turn.text == "seen 5"
    assert [m.text for m in recorder.histories[-1]] == ["one", "seen 1", "two", "seen 3", "three"]
    assert (summary.turn_count, summary.message_count) == (3, 6)
    assert (summary.provider, summary.model) == (resumed.state.provider, resumed.state.model)
    assert resumed.runtime_id != context.runtime_id


async def test_subagents_keep_their_history_in_memory(
    tmp_path: Path, database_settings: dict[str, Any]
) -> None:
    """With the database backend a subagent still gets a fresh in-memory history of its own."""
    app = await started(build_test_app(workspace=tmp_path, **database_settings))
    scopes = app.runtime.scopes()
    parent = scopes.foreground()
    child = scopes.subagent(ScopeRequest(subagent_name="helper"), parent)
    await app.shutdown_resources()  # type: ignore[misc]
    assert isinstance(parent.history, SqlHistoryStore)
    assert isinstance(child.history, InMemoryHistory)


async def test_the_memory_backend_never_touches_the_data_dir(tmp_path: Path) -> None:
    """Resources start and stop and chats run without creating a file."""
    data_dir = tmp_path / "data"
    app = await started(build_test_app(workspace=tmp_path, data_dir=data_dir))
    context = app.runtime.scopes().foreground()
    await app.runtime.chat_session(context=context).send("hello")
    await app.shutdown_resources()  # type: ignore[misc]
    assert isinstance(context.history, InMemoryHistory)
    assert not data_dir.exists()


async def test_shutdown_closes_the_database_pool(tmp_path: Path) -> None:
    """After shutdown no connection of the database is left checked out or open (those it
    held between transactions included), and none of its worker threads is left running."""
    threads_before = database_threads()
    app = await started(
        build_test_app(workspace=tmp_path, history_backend="database", data_dir=tmp_path / "d")
    )
    context = app.runtime.scopes().foreground()
    await app.runtime.chat_session(context=context).send("hello")
    database: Database = app.storage.database()
    used = database.sync_engine.pool
    assert isinstance(used, QueuePool)
    # The database holds at most its two on-loop connections (one reads, one writes).
    assert 1 <= used.checkedout() <= 2
    await app.shutdown_resources()  # type: ignore[misc]
    for pool in (used, database.sync_engine.pool):
        assert isinstance(pool, QueuePool)
        assert (pool.checkedout(), pool.checkedin()) == (0, 0)
    assert database_threads() - threads_before == set()
    assert (tmp_path / "d" / "chatscope.db").is_file()


@settings(max_examples=10)
@given(
    prompts=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=4),
    chats=st.integers(2, 4),
)
async def test_scopes_of_one_application_save_separate_sessions(
    tmp_path: Path, prompts: list[str], chats: int
) -> None:
    """Every foreground scope is its own session; none sees another's turns."""
    data_dir = tmp_path / uuid.uuid4().hex
    app = await started(
        build_test_app(workspace=tmp_path, history_backend="database", data_dir=data_dir)
    )
    try:
        contexts = [app.runtime.scopes().foreground() for _ in range(chats)]
        for index, context in enumerate(contexts):
            chat = app.runtime.chat_session(context=context)
            for prompt in prompts[: index + 1]:
                await chat.send(prompt)
        catalog: SessionCatalog = app.storage.session_catalog()
        summaries = {s.id: s for s in await catalog.list_sessions()}
        for index, context in enumerate(contexts):
            own = prompts[: index + 1]
            database = app.storage.database()
            stored = await SqlHistoryStore(database, session_id=context.state.session_id).messages()
            assert [m.text for m in stored if m.role is Role.USER] == own
            assert summaries[context.state.session_id].turn_count == len(own)
    finally:
        await app.shutdown_resources()  # type: ignore[misc]


def database_threads() -> set[threading.Thread]:
    """The live worker threads of session databases."""
    return {t for t in threading.enumerate() if t.name.startswith("chatscope-db")}
