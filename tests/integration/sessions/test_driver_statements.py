"""The saved-turn statements on SQLite's driver connection (`DriverStatements`).

With nobody listening for cursor events, `execute_rows` and `first_row` run a statement that
SQLAlchemy compiled once per engine straight on the sqlite3 connection; with a listener they run
the Core statement. Covered here: both paths store the very same rows (timestamps through the
same bind processor) and reload the same messages; which path runs when; driver errors become
SQLAlchemy's exceptions without their parameters and roll the transaction back; a write that
meets another process's lock is retried on the worker thread and stored whole; `first_row`
gives plain tuples or None on both paths; and each statement is compiled once per engine.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from chatscope.adapters.storage import database as database_module
from chatscope.adapters.storage import driver as driver_module
from chatscope.adapters.storage import sql_history
from chatscope.adapters.storage.database import Database
from chatscope.adapters.storage.driver import (
    DRIVER_STATEMENTS,
    DriverStatements,
    execute_rows,
    first_row,
)
from chatscope.adapters.storage.schema import messages_table, sessions_table
from chatscope.adapters.storage.sql_history import SqlHistoryStore
from chatscope.adapters.storage.statements import (
    BUMP_LABELLED_TURN,
    BUMP_TURN,
    INSERT_MESSAGES,
    INSERT_SESSION,
    SESSION_OWNER,
)
from chatscope.services.messages import Message, Usage
from chatscope.services.runtime.state import new_id
from tests.support.databases import migrated_database, statements_seen
from tests.support.histories import reply, user

FIXED_NOW = dt.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=dt.UTC)
Turn = tuple[list[Message], Usage | None]
Call = tuple[str, object, int]


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh, migrated SQLite database file."""
    async with migrated_database("sqlite", tmp_path) as database:
        yield database


def spying(calls: list[Call], name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """`original` (a `DriverStatements` method), recording each call in `calls`."""

    def spy(
        self: DriverStatements, connection: Connection, driver: Any, statement: Any, rows: Any
    ) -> Any:
        calls.append((name, statement, threading.get_ident()))
        return original(self, connection, driver, statement, rows)

    return spy


@contextmanager
def driver_calls() -> Iterator[list[Call]]:
    """Each `DriverStatements.execute`/`first` call in the block: (method, statement, thread)."""
    calls: list[Call] = []
    with pytest.MonkeyPatch.context() as patch:
        for name in ("execute", "first"):
            patch.setattr(
                DriverStatements, name, spying(calls, name, getattr(DriverStatements, name))
            )
        yield calls


@contextmanager
def fixed_clock() -> Iterator[None]:
    """Every write inside the block is stamped `FIXED_NOW`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sql_history, "utc_now", lambda: FIXED_NOW)
        yield


@contextmanager
def write_lock_held(database: Database, *, release_after: float) -> Iterator[None]:
    """Another connection holds the file's write lock, and gives it up after `release_after` s."""
    holder = sqlite3.connect(
        str(database.url.database), isolation_level=None, check_same_thread=False
    )
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(release_after, holder.execute, ("ROLLBACK",))
    release.start()
    try:
        yield
    finally:
        release.join()
        holder.close()


def stored_rows(session_id: str, connection: Connection) -> tuple[dict[str, Any], list[Any]]:
    """The session's row without its id, and its messages' rows without theirs (read by Core)."""
    sessions = select(sessions_table).where(sessions_table.c.id == session_id)
    session = dict(connection.execute(sessions).mappings().one())
    del session["id"]
    messages = (
        select(*(column for column in messages_table.c if column.name != "session_id"))
        .where(messages_table.c.session_id == session_id)
        .order_by(messages_table.c.position)
    )
    return session, [tuple(row) for row in connection.execute(messages)]


def stored_timestamp_text(database: Database, session_id: str) -> tuple[str, str]:
    """The session's created_at and updated_at as the file holds them (no result processor)."""
    with closing(sqlite3.connect(str(database.url.database))) as raw:
        query = "SELECT created_at, updated_at FROM sessions WHERE id = ?"
        row: tuple[str, str] = raw.execute(query, (session_id,)).fetchone()
        return row


def new_session(database: Database) -> SqlHistoryStore:
    store = SqlHistoryStore(database, session_id=new_id())
    store.mark_new_session()
    return store


async def save_turns(store: SqlHistoryStore, turns: Sequence[Turn]) -> list[Message]:
    """Append every turn; the messages appended, in order."""
    saved: list[Message] = []
    for messages, usage in turns:
        await store.append_turn(messages, usage)
        saved += messages
    return saved


def bump_parameters(session_id: str, owner: str = "local") -> dict[str, Any]:
    """What `BUMP_TURN` takes: one more turn of one message, at `FIXED_NOW`."""
    turn = {"p_added": 1, "p_title": "t", "p_now": FIXED_NOW}
    return {"p_session": session_id, "p_owner": owner, **turn}


texts = st.text(max_size=30)
usages = st.none() | st.builds(Usage, *(st.integers(0, 2**31) for _ in range(4)))
labels = st.none() | st.tuples(st.sampled_from(["openai", "anthropic"]), st.text(min_size=1))


@st.composite
def exchanges(draw: st.DrawFn) -> Turn:
    """A prompt, usually an answer, and the turn's usage or None."""
    messages = [user(draw(texts))]
    answer = draw(st.none() | texts)
    if answer is not None:
        messages.append(reply(answer))
    return messages, draw(usages)


@settings(max_examples=20, deadline=None)
@given(turns=st.lists(exchanges(), min_size=1, max_size=4), label=labels)
async def test_the_driver_path_stores_exactly_the_rows_core_stores(
    database: Database, turns: list[Turn], label: tuple[str, str] | None
) -> None:
    """Every column of `sessions` and `messages` matches the Core-written session's, down to the
    timestamps' stored text; and a fresh store reloads the messages."""
    stores = (new_session(database), new_session(database))
    if label is not None:
        for store in stores:
            store.label(provider=label[0], model=label[1])
    with fixed_clock():
        with driver_calls() as driven:
            saved = await save_turns(stores[0], turns)
        with statements_seen(database) as seen, driver_calls() as not_driven:
            await save_turns(stores[1], turns)
    assert driven
    assert seen
    assert not_driven == []
    by_driver, by_core = [await database.read(partial(stored_rows, s.session_id)) for s in stores]
    assert by_driver == by_core
    assert by_driver[0]["updated_at"] == FIXED_NOW.replace(tzinfo=None)
    driver_text, core_text = (stored_timestamp_text(database, s.session_id) for s in stores)
    assert driver_text == core_text
    reloaded = SqlHistoryStore(database, session_id=stores[0].session_id)
    assert await reloaded.messages() == tuple(saved)


async def test_the_driver_runs_a_saved_turn_unless_someone_listens(database: Database) -> None:
    """Unobserved, a new session's two turns go through `DriverStatements`; with a cursor
    listener they go through Core, where the listener sees each INSERT and UPDATE."""
    store = new_session(database)
    with driver_calls() as calls:
        await save_turns(store, [([user("a"), reply("b")], None), ([user("c")], Usage(1, 2))])
    assert [(name, statement) for name, statement, _ in calls] == [
        ("execute", INSERT_SESSION),
        ("execute", INSERT_MESSAGES),
        ("first", BUMP_TURN),
        ("execute", INSERT_MESSAGES),
    ]
    with statements_seen(database) as seen, driver_calls() as calls:
        await save_turns(new_session(database), [([user("d"), reply("e")], None)])
        await store.append_turn([user("f")])
    assert calls == []
    kinds = [" ".join(sql.split()[:3]) for sql in seen]
    assert kinds == [
        "INSERT INTO sessions",
        "INSERT INTO messages",
        "UPDATE sessions SET",
        "INSERT INTO messages",
    ]


async def test_an_error_listener_or_no_transaction_keeps_statements_on_core(
    database: Database,
) -> None:
    """A `handle_error` listener sees a driver-path statement's failure only through Core, so
    with one attached the driver stays unused; and a statement outside any transaction runs on
    Core, whose implicit transaction is rolled back on close (the driver would autocommit)."""
    failures: list[str] = []

    def record(context: Any) -> None:
        failures.append(type(context.original_exception).__name__)

    row = {"session_id": new_id(), "position": 0, "turn": 1, "role": "user"}
    row |= {"payload": "{}", "usage": None}
    engine = database.sync_engine
    event.listen(engine, "handle_error", record)
    try:
        with driver_calls() as calls, pytest.raises(IntegrityError):
            await database.write(partial(execute_rows, statement=INSERT_MESSAGES, rows=row))
    finally:
        event.remove(engine, "handle_error", record)
    assert calls == []
    assert failures == ["IntegrityError"]  # the session row it names does not exist
    store = new_session(database)
    await store.append_turn([user("kept")])
    late = row | {"session_id": store.session_id, "position": 5}
    with driver_calls() as calls, engine.connect() as connection:
        execute_rows(connection, INSERT_MESSAGES, late)  # its first statement: no transaction
    assert calls == []
    reloaded = SqlHistoryStore(database, session_id=store.session_id)
    assert [message.text for message in await reloaded.messages()] == ["kept"]


async def test_a_listener_on_one_connection_keeps_its_statements_on_core(
    database: Database,
) -> None:
    """A cursor listener attached to one connection (not its engine) sees that connection's
    statements: they run through Core, while the engine's other statements keep the driver."""
    store = new_session(database)
    await store.append_turn([user("first")])
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    parameters = bump_parameters(store.session_id)
    with driver_calls() as calls, database.sync_engine.connect() as connection:
        event.listen(connection, "before_cursor_execute", record)
        with connection.begin():
            assert first_row(connection, BUMP_TURN, parameters) == (2, 2)
    assert calls == []
    assert [" ".join(sql.split()[:3]) for sql in seen] == ["UPDATE sessions SET"]
    with driver_calls() as calls:
        await store.append_turn([user("third")])
    assert [name for name, _, _ in calls] == ["first", "execute"]


@settings(max_examples=15, deadline=None)
@given(
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=12).map("sk-".__add__)
)
async def test_a_driver_error_is_sqlalchemys_without_parameters_and_rolls_back(
    database: Database, secret: str
) -> None:
    """A duplicate (session, position) raises SQLAlchemy's IntegrityError around sqlite3's, which
    names neither the payload nor other values; the transaction's earlier insert is undone."""
    store = new_session(database)
    await store.append_turn([user("hello")])
    row = {"session_id": store.session_id, "position": 7, "turn": 2, "role": "user"}
    row |= {"payload": secret, "usage": secret[::-1]}

    def insert_twice(connection: Connection) -> None:
        execute_rows(connection, INSERT_MESSAGES, row)
        execute_rows(connection, INSERT_MESSAGES, [row])

    with driver_calls() as calls, pytest.raises(IntegrityError) as caught:
        await database.write(insert_twice)
    assert len(calls) == 2
    assert isinstance(caught.value.orig, sqlite3.IntegrityError)
    assert str(caught.value.statement).startswith("INSERT INTO messages")
    shown = str(caught.value)
    assert secret not in shown
    assert secret[::-1] not in shown
    assert store.session_id not in shown
    reloaded = SqlHistoryStore(database, session_id=store.session_id)
    assert await reloaded.messages() == (user("hello"),)


async def test_another_writer_makes_a_driver_statement_fail_busy(database: Database) -> None:
    """Upgrading a deferred transaction to write while another process holds the lock fails at
    once on the loop's connections, as the OperationalError that `_is_busy` recognises."""
    store = new_session(database)
    await store.append_turn([user("hello")])
    with write_lock_held(database, release_after=0.2), database.sync_engine.connect() as connection:
        connection.begin()
        with pytest.raises(OperationalError) as caught:
            first_row(connection, BUMP_TURN, bump_parameters(store.session_id))
        connection.rollback()
    assert isinstance(caught.value.orig, sqlite3.OperationalError)
    assert database_module._is_busy(caught.value)


async def test_a_turn_that_meets_a_lock_is_stored_whole_once_released(database: Database) -> None:
    """The loop's attempt finds the lock taken; the worker thread waits for it and stores the
    turn through its own engine's driver statements."""
    store = new_session(database)
    await store.append_turn([user("first"), reply("one")])
    with write_lock_held(database, release_after=0.2), driver_calls() as calls:
        await store.append_turn([user("second"), reply("two")], Usage(3, 4))
    assert [name for name, _, _ in calls] == ["first", "execute"]
    assert threading.get_ident() not in {thread for _, _, thread in calls}
    reloaded = SqlHistoryStore(database, session_id=store.session_id)
    assert [m.text for m in await reloaded.messages()] == ["first", "one", "second", "two"]
    assert await reloaded.token_count() == 7


def bump_and_look_up(session_id: str, owner: str, connection: Connection) -> list[Any]:
    """`first_row` for the session's bump and owner, and for an id no session has."""
    bump = bump_parameters(session_id, owner)
    absent = bump | {"p_session": session_id + "-absent"}
    return [
        first_row(connection, BUMP_TURN, bump),
        first_row(connection, SESSION_OWNER, {"p_session": session_id}),
        first_row(connection, BUMP_TURN, absent),
        first_row(connection, SESSION_OWNER, {"p_session": absent["p_session"]}),
    ]


@pytest.mark.parametrize("through_core", [False, True], ids=["driver", "core"])
@settings(max_examples=15, deadline=None)
@given(owner=st.text(min_size=1, max_size=40))
async def test_first_row_gives_plain_tuples_or_none_on_both_paths(
    database: Database, through_core: bool, owner: str
) -> None:
    """The bump's RETURNING row and the owner look-up are plain tuples; no match gives None."""
    store = SqlHistoryStore(database, session_id=new_id(), owner=owner)
    store.mark_new_session()
    await store.append_turn([user("q"), reply("a")])
    with statements_seen(database) if through_core else driver_calls() as observed:
        rows = await database.write(partial(bump_and_look_up, store.session_id, owner))
    assert observed
    assert rows == [(3, 2), (owner,), None, None]
    assert [type(row) for row in rows[:2]] == [tuple, tuple]


async def test_each_statement_is_compiled_once_per_engine(database: Database) -> None:
    """After many turns of labelled and unlabelled sessions, SQLAlchemy compiled each statement
    used exactly once, and the engine's `DriverStatements` holds exactly those."""
    compiled: list[object] = []
    original = driver_module._compile

    def counting(connection: Connection, statement: Any) -> Any:
        compiled.append(statement)
        return original(connection, statement)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(driver_module, "_compile", counting)
        for index in range(6):
            store = new_session(database)
            if index % 2:
                store.label(provider="openai", model=f"m{index}")
            for turn in range(3):
                await store.append_turn([user(f"q{turn}"), reply(f"a{turn}")])
    used = [INSERT_SESSION, INSERT_MESSAGES, BUMP_TURN, BUMP_LABELLED_TURN]
    assert sorted(map(id, compiled)) == sorted(map(id, used))
    driver: DriverStatements = database.sync_engine.get_execution_options()[DRIVER_STATEMENTS]
    assert sorted(map(id, driver._compiled)) == sorted(map(id, used))
