"""The values `DriverStatements` hands SQLite's driver are the ones SQLAlchemy Core sends.

A compiled statement fills its `?` markers from precomputed steps: a parameter taken as it is,
a parameter through its type's bind processor (a `DateTime` becomes SQLite's text), or a
constant of the statement itself, processed once. For the saved-turn statements and for
statements with constants of their own, the values equal those Core passes to the cursor for
the same parameters, in the same order, and the SQL text is the same.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import bindparam, event, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Executable

from chatscope.adapters.storage import driver as driver_module
from chatscope.adapters.storage.database import Database
from chatscope.adapters.storage.schema import sessions_table
from chatscope.adapters.storage.statements import (
    BUMP_LABELLED_TURN,
    BUMP_TURN,
    INSERT_MESSAGES,
    INSERT_SESSION,
    SESSION_OWNER,
)
from tests.support.databases import migrated_database

EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
STAMPED = (
    update(sessions_table)
    .where(sessions_table.c.id == bindparam("p_session"))
    .values(updated_at=EPOCH, title="fixed", turn_count=sessions_table.c.turn_count + 2)
)
"""A statement whose constants (a time, a text, a number) are its own, not parameters."""
RELABELLED = (
    update(sessions_table)
    .where(sessions_table.c.id == bindparam("p_session"))
    .values(created_at=bindparam("p_then"), updated_at=bindparam("p_now"), model="m")
)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh, migrated SQLite database file."""
    async with migrated_database("sqlite", tmp_path) as database:
        yield database


times = st.datetimes(
    min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
)
texts = st.text(max_size=12)
counts = st.integers(-(2**40), 2**40)


@st.composite
def statements(draw: st.DrawFn) -> tuple[Executable, dict[str, Any]]:
    """A statement of the saved-turn path, or one with its own constants, and parameters."""
    session = {"p_session": draw(texts), "p_owner": draw(texts)}
    bump = session | {"p_now": draw(times), "p_added": draw(counts), "p_title": draw(texts)}
    labels = {"p_provider": draw(texts), "p_model": draw(st.none() | texts)}
    row = {"id": draw(texts), "created_at": draw(times), "updated_at": draw(times)}
    row |= {"provider": draw(st.none() | texts), "model": None, "title": draw(texts)}
    row |= {"message_count": draw(counts), "turn_count": draw(counts), "owner": draw(texts)}
    row |= {"system_prompt": draw(st.none() | texts)}
    message = {"session_id": draw(texts), "position": draw(counts), "turn": draw(counts)}
    message |= {"role": "user", "payload": draw(texts), "usage": draw(st.none() | texts)}
    cases: list[tuple[Executable, dict[str, Any]]] = [
        (INSERT_SESSION, row),
        (INSERT_MESSAGES, message),
        (BUMP_TURN, bump),
        (BUMP_LABELLED_TURN, bump | labels),
        (SESSION_OWNER, session),
        (STAMPED, session),
        (RELABELLED, session | {"p_then": draw(times), "p_now": draw(times)}),
    ]
    return cases[draw(st.integers(0, len(cases) - 1))]


def sent_by_core(connection: Connection, statement: Executable, parameters: Any) -> Any:
    """The SQL and values Core gives the cursor for `statement` (run, then rolled back; a
    message naming no session breaks the foreign key, after its values were sent)."""
    sent: list[tuple[str, Any]] = []

    def record(*args: Any) -> None:
        sent.append((args[2], args[3]))

    event.listen(connection, "before_cursor_execute", record)
    transaction = connection.begin()
    try:
        with suppress(IntegrityError):
            connection.execute(statement, parameters)
    finally:
        transaction.rollback()
        event.remove(connection, "before_cursor_execute", record)
    return sent[-1]


@given(case=statements())
async def test_the_driver_values_are_the_ones_core_sends(
    database: Database, case: tuple[Executable, dict[str, Any]]
) -> None:
    """Same SQL, same values, same order, constants and processed times included."""
    statement, parameters = case
    with database.sync_engine.connect() as connection:
        compiled = driver_module._compile(connection, statement)
        sql, values = sent_by_core(connection, statement, parameters)
    assert compiled.sql == sql
    assert compiled.values(parameters) == tuple(values)
