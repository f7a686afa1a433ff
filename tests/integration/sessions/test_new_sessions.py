"""A scope whose session id was made for it: its first turn is saved without reading first.

Nothing can be stored under an id made a moment ago, so the store is told (`mark_new_session`)
and skips the read; a scope that names a session reads it as before. Whatever the first turn
skipped, what is stored is the same: reloading gives every message back, and an id that turns
out to be taken (by this owner or another) is handled as the general path handles it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from chatscope.adapters.storage.database import Database
from chatscope.adapters.storage.schema import sessions_table
from chatscope.adapters.storage.sql_history import SqlHistoryStore
from chatscope.errors import UnknownSessionError
from chatscope.services.messages import Message, Role
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.services.runtime.state import new_id
from chatscope.testing import build_test_app
from tests.support.databases import migrated_database, statements_seen
from tests.support.histories import reply, user


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh, migrated SQLite database."""
    async with migrated_database("sqlite", tmp_path) as database:
        yield database


def verbs(statements: list[str]) -> list[str]:
    """The first word of each SQL statement, upper-case."""
    return [sql.split()[0].upper() for sql in statements]


turns = st.lists(st.tuples(st.text(min_size=1, max_size=12), st.text(max_size=12)), min_size=1)


@settings(max_examples=15, deadline=None)
@given(exchanges=turns.map(lambda pairs: pairs[:4]))
async def test_a_new_session_is_saved_without_a_read_and_reloads_whole(
    database: Database, exchanges: list[tuple[str, str]]
) -> None:
    """No SELECT before the first turn's INSERTs; every turn reloads in order."""
    store = SqlHistoryStore(database, session_id=new_id())
    store.mark_new_session()
    expected: list[Message] = []
    with statements_seen(database) as seen:
        assert await store.messages() == ()
        for prompt, answer in exchanges:
            turn = [user(prompt), reply(answer)]
            await store.append_turn(turn)
            expected += turn
    assert verbs(seen)[0] == "INSERT"
    assert "SELECT" not in verbs(seen)
    reloaded = SqlHistoryStore(database, session_id=store.session_id)
    assert await reloaded.messages() == tuple(expected)


async def test_a_store_that_has_read_its_session_is_not_told_otherwise(
    database: Database,
) -> None:
    """`mark_new_session` after a read changes nothing: the read messages stay."""
    session_id = new_id()
    await SqlHistoryStore(database, session_id=session_id).append_turn([user("a"), reply("b")])
    store = SqlHistoryStore(database, session_id=session_id)
    before = await store.messages()
    store.mark_new_session()
    assert await store.messages() == before
    assert len(before) == 2


async def test_an_id_taken_by_another_owner_is_refused_not_overwritten(
    database: Database,
) -> None:
    """Were a made id taken after all, the other owner's session is left alone."""
    session_id = new_id()
    await SqlHistoryStore(database, session_id=session_id, owner="alice").append_turn(
        [user("mine"), reply("yes")]
    )
    intruder = SqlHistoryStore(database, session_id=session_id, owner="bob")
    intruder.mark_new_session()
    with pytest.raises(UnknownSessionError) as refused:
        await intruder.append_turn([user("theirs"), reply("no")])
    assert refused.value.session_id == session_id
    owned = SqlHistoryStore(database, session_id=session_id, owner="alice")
    assert [message.text for message in await owned.messages()] == ["mine", "yes"]


async def test_a_foreground_scope_without_a_session_id_skips_the_read(tmp_path: Path) -> None:
    """Through the containers: a new chat's first turn runs no SELECT; one that names its
    session reads it first, and sees the earlier turn."""
    app = build_test_app(workspace=tmp_path, history_backend="database", data_dir=tmp_path / "data")
    await app.init_resources()  # type: ignore[misc]
    try:
        database: Database = app.storage.database()
        scopes = app.runtime.scopes()
        with statements_seen(database) as new_chat:
            context = scopes.foreground()
            await app.runtime.chat_session(context=context).send("hello")
        named = ScopeRequest(session_id=context.state.session_id)
        with statements_seen(database) as continued:
            again = scopes.foreground(named)
            await app.runtime.chat_session(context=again).send("more")
        assert "SELECT" not in verbs(new_chat)
        assert verbs(continued)[0] == "SELECT"
        stored = await again.history.messages()
        assert [m.text for m in stored if m.role is Role.USER] == ["hello", "more"]
    finally:
        await app.shutdown_resources()  # type: ignore[misc]


async def session_row(database: Database, session_id: str) -> tuple[int, int, str]:
    """The session's (message_count, turn_count, title) as stored."""

    def read(connection: Any) -> tuple[int, int, str]:
        query = select(
            sessions_table.c.message_count, sessions_table.c.turn_count, sessions_table.c.title
        ).where(sessions_table.c.id == session_id)
        row = connection.execute(query).one()
        return int(row[0]), int(row[1]), str(row[2])

    return await database.read(read)


@settings(max_examples=10, deadline=None)
@given(exchanges=turns.map(lambda pairs: pairs[:3]))
async def test_told_or_not_a_new_session_counts_its_turns_alike(
    database: Database, exchanges: list[tuple[str, str]]
) -> None:
    """A store told its session is new and one that finds out by writing store the same
    counts and title after every turn: the first turn is turn 1."""
    told = SqlHistoryStore(database, session_id=new_id())
    told.mark_new_session()
    untold = SqlHistoryStore(database, session_id=new_id())
    for number, (prompt, answer) in enumerate(exchanges, start=1):
        for store in (told, untold):
            await store.append_turn([user(prompt), reply(answer)])
        rows = [await session_row(database, store.session_id) for store in (told, untold)]
        assert rows[0] == rows[1]
        assert rows[0][:2] == (2 * number, number)
