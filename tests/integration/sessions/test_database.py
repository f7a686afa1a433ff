"""The session `Database`: each unit of work one transaction, whole whatever happens around it.

A unit of work that raises leaves nothing behind and its exception reaches the caller; one whose
task is cancelled still ends whole before the cancellation is raised; many at once never mix;
SQLite readers go on beside an open write; `dispose` ends the worker threads. Runs on SQLite,
and on PostgreSQL too when `CHATSCOPE_TEST_DATABASE_URL` is set (see tests/support/databases.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Coroutine, Sequence
from functools import partial
from itertools import groupby
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import QueuePool

from chatscope.adapters.storage.catalog import SessionCatalog
from chatscope.adapters.storage.database import Database
from chatscope.adapters.storage.sql_history import SqlHistoryStore
from tests.support.databases import DATABASE_BACKENDS, database_for, migrated_database
from tests.support.history_writer import turn_messages

# A table of the tests' own: `run` keeps each example's rows apart in the shared database.
scratch = Table(
    "scratch",
    MetaData(),
    Column("run", String(64), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("value", Integer, nullable=False),
)
T = TypeVar("T")
WORKER_THREADS = "chatscope-db"
values = st.integers(min_value=-1000, max_value=1000)
batches = st.lists(st.lists(values, max_size=5), max_size=8)


class RefusedError(Exception):
    """What a failing unit of work raises."""


@pytest.fixture(params=DATABASE_BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database with the scratch table, shared by the examples of one test."""
    async with migrated_database(request.param, tmp_path) as database:
        await database.write(partial(scratch.create, checkfirst=True))
        yield database


@pytest.fixture
async def sqlite_database(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite file with the scratch table."""
    async with migrated_database("sqlite", tmp_path) as database:
        await database.write(partial(scratch.create, checkfirst=True))
        yield database


def new_run() -> str:
    """A run id no other example uses."""
    return uuid.uuid4().hex


def append(run: str, batch: Sequence[int], connection: Connection) -> None:
    """Insert `batch` after the run's stored values, one statement per value."""
    query = select(func.count()).select_from(scratch).where(scratch.c.run == run)
    start = int(connection.execute(query).scalar_one())
    for offset, value in enumerate(batch):
        connection.execute(insert(scratch).values(run=run, position=start + offset, value=value))


def stored(run: str, connection: Connection) -> list[int]:
    """The run's values in position order."""
    query = select(scratch.c.value).where(scratch.c.run == run).order_by(scratch.c.position)
    return list(connection.execute(query).scalars())


def worker_threads() -> set[threading.Thread]:
    """The live threads of every `ThreadedDatabase` in this process."""
    return {t for t in threading.enumerate() if t.name.startswith(WORKER_THREADS)}


def on_a_worker_thread() -> None:
    """Fail (rather than block the event loop) unless called on a database worker thread."""
    name = threading.current_thread().name
    assert name.startswith(WORKER_THREADS), f"the unit of work ran on {name!r}"


def committed(database: Database, run: str) -> list[int]:
    """The run's values as another connection sees them: what is committed on disk."""
    with contextlib.closing(sqlite3.connect(str(database.url.database))) as other:
        query = "SELECT value FROM scratch WHERE run = ? ORDER BY position"
        return [value for (value,) in other.execute(query, (run,))]


async def started_behind_another_writer(
    database: Database, write: Coroutine[Any, Any, T]
) -> asyncio.Task[T]:
    """`write` started while another connection holds SQLite's write lock, so that it has to
    wait for the lock, which only a worker thread does; the lock is let go once it waits."""
    with contextlib.closing(sqlite3.connect(str(database.url.database))) as other:
        other.isolation_level = None
        other.execute("BEGIN IMMEDIATE")
        task = asyncio.create_task(write)
        await asyncio.sleep(0)  # its first step: refused the lock, and handed to a thread
        await asyncio.sleep(0.05)
        assert not task.done()
        other.execute("COMMIT")
    return task


# --- one transaction per unit of work -------------------------------------------------------


@settings(max_examples=25)
@given(batches=batches)
async def test_batches_written_one_transaction_each_read_back_in_order(
    database: Database, batches: list[list[int]]
) -> None:
    """Each batch in its own write, reading after the writes before it: a read gives exactly
    the batches' concatenation, in order."""
    run = new_run()
    for batch in batches:
        await database.write(partial(append, run, batch))
    assert await database.read(partial(stored, run)) == [v for batch in batches for v in batch]


@settings(max_examples=25)
@given(
    committed=st.lists(values, max_size=4),
    failing=st.lists(values, max_size=6),
    fail_at=st.integers(min_value=0, max_value=6),
)
async def test_a_unit_of_work_that_raises_leaves_nothing_and_its_error_reaches_the_caller(
    database: Database, committed: list[int], failing: list[int], fail_at: int
) -> None:
    """A write raising after any number of its statements is rolled back whole; the caller gets
    that very exception, and the database takes the next write as if nothing had happened."""
    run = new_run()
    await database.write(partial(append, run, committed))
    refused = RefusedError(f"refused after {fail_at} rows")

    def write_then_fail(connection: Connection) -> None:
        append(run, failing[:fail_at], connection)
        raise refused

    with pytest.raises(RefusedError) as caught:
        await database.write(write_then_fail)
    assert caught.value is refused
    assert await database.read(partial(stored, run)) == committed
    await database.write(partial(append, run, failing))
    assert await database.read(partial(stored, run)) == committed + failing


async def test_a_read_that_raises_reaches_the_caller(database: Database) -> None:
    """A failing read raises its own exception, and the next read runs normally."""
    refused = RefusedError("no")

    def fail(connection: Connection) -> None:
        raise refused

    with pytest.raises(RefusedError) as caught:
        await database.read(fail)
    assert caught.value is refused
    assert await database.read(partial(stored, new_run())) == []


# --- cancellation ---------------------------------------------------------------------------


@settings(max_examples=20)
@given(batch=st.lists(values, min_size=1, max_size=6), yields=st.integers(0, 30))
async def test_a_write_cancelled_at_any_moment_after_it_began_ends_whole(
    database: Database, batch: list[int], yields: int
) -> None:
    """Cancel the task of a write any number of loop turns after it began: the batch is stored
    whole, and the task ends cancelled exactly when the cancellation reached it unfinished."""
    run = new_run()
    task = asyncio.create_task(database.write(partial(append, run, batch)))
    for _ in range(yields + 1):  # the first turn begins the transaction
        await asyncio.sleep(0)
    reached = task.cancel()
    await asyncio.wait([task])
    assert task.cancelled() is reached
    assert await database.read(partial(stored, run)) == batch


@pytest.mark.parametrize("fails", [False, True], ids=["commits", "raises"])
async def test_a_cancelled_write_ends_its_transaction_before_the_cancellation_is_raised(
    sqlite_database: Database, fails: bool
) -> None:
    """SQLite: cancelling a write whose work is under way on the worker thread waits for the
    transaction to end (committed, or rolled back if the work raises), then raises the
    cancellation; the outcome is already on disk when the task sees the cancellation."""
    run, inside, release = new_run(), threading.Event(), threading.Event()

    def slow_write(connection: Connection) -> None:
        on_a_worker_thread()
        append(run, [1], connection)
        inside.set()
        assert release.wait(10)
        append(run, [2], connection)
        if fails:
            raise RefusedError("after the cancellation")

    on_disk: list[list[int]] = []

    async def writer() -> None:
        try:
            await sqlite_database.write(slow_write)
        except asyncio.CancelledError:
            on_disk.append(committed(sqlite_database, run))
            raise

    task = await started_behind_another_writer(sqlite_database, writer())
    try:
        assert await asyncio.to_thread(inside.wait, 10)
        task.cancel()
        await asyncio.sleep(0.05)
        assert not task.done()  # still waiting for the transaction
    finally:
        release.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(task), 10)
    assert task.cancelled()
    expected = [] if fails else [1, 2]
    assert on_disk == [expected]
    assert await sqlite_database.read(partial(stored, run)) == expected


# --- many at once ---------------------------------------------------------------------------


@settings(max_examples=15)
@given(batches=st.lists(st.lists(values, min_size=1, max_size=6), min_size=2, max_size=20))
async def test_concurrent_writes_each_land_whole(
    database: Database, batches: list[list[int]]
) -> None:
    """Writes of many tasks at once, each a batch of its own: every batch is stored whole."""
    runs = [new_run() for _ in batches]
    await asyncio.gather(
        *(
            database.write(partial(append, run, batch))
            for run, batch in zip(runs, batches, strict=True)
        )
    )
    read = await asyncio.gather(*(database.read(partial(stored, run)) for run in runs))
    assert read == batches


async def test_fifty_tasks_saving_fifty_sessions_at_once_store_every_turn_whole(
    database: Database,
) -> None:
    """50 stores of 50 sessions append their turns at the same time: each session holds its
    own turns, whole, numbered in order, with positions that leave no gap."""
    session_ids = [f"concurrent-{n}-{new_run()}" for n in range(50)]
    turns = 3

    async def chat(session_id: str) -> None:
        store = SqlHistoryStore(database, session_id=session_id)
        for number in range(1, turns + 1):
            await store.append_turn(turn_messages(session_id, number))

    await asyncio.gather(*(chat(session_id) for session_id in session_ids))
    catalog = SessionCatalog(database)
    for session_id in session_ids:
        transcript = await catalog.transcript(session_id)
        grouped = [(turn, [i.message for i in items]) for turn, items in groupby(
            transcript, key=lambda item: item.turn
        )]  # fmt: skip
        assert grouped == [(n, turn_messages(session_id, n)) for n in range(1, turns + 1)]
        summary = await catalog.get(session_id)
        assert (summary.turn_count, summary.message_count) == (turns, 4 * turns)


async def test_reads_run_while_a_write_transaction_is_open(sqlite_database: Database) -> None:
    """SQLite in WAL mode: while a write holds its transaction open on the worker thread, reads
    complete (seeing only what was committed) and a second write waits its turn; both writes
    then commit."""
    run, inside, release = new_run(), threading.Event(), threading.Event()
    await sqlite_database.write(partial(append, run, [1]))

    def held_write(connection: Connection) -> None:
        on_a_worker_thread()
        append(run, [2], connection)
        inside.set()
        assert release.wait(10)

    holding = await started_behind_another_writer(
        sqlite_database, sqlite_database.write(held_write)
    )
    try:
        assert await asyncio.to_thread(inside.wait, 10)
        queued = asyncio.create_task(sqlite_database.write(partial(append, run, [3])))
        for _ in range(3):
            assert await asyncio.wait_for(sqlite_database.read(partial(stored, run)), 5) == [1]
        assert committed(sqlite_database, run) == [1]
        assert not holding.done()
        assert not queued.done()
    finally:
        release.set()
    await asyncio.wait_for(asyncio.gather(holding, queued), 10)
    assert await sqlite_database.read(partial(stored, run)) == [1, 2, 3]


# --- connections held on the loop (SQLite) --------------------------------------------------


def driver_connection(connection: Connection) -> int:
    """Which DBAPI connection a unit of work ran on."""
    return id(connection.connection.driver_connection)


def the_connection(connection: Connection) -> Connection:
    """The SQLAlchemy connection a unit of work ran on (kept alive by the caller)."""
    return connection


async def test_units_of_work_on_the_loop_reuse_one_connection_per_kind(
    sqlite_database: Database,
) -> None:
    """Writes share one held connection and reads another: no pool checkout per transaction."""
    writes = [await sqlite_database.write(driver_connection) for _ in range(4)]
    reads = [await sqlite_database.read(driver_connection) for _ in range(4)]
    assert len(set(writes)) == len(set(reads)) == 1
    assert writes[0] != reads[0]
    pool = sqlite_database.sync_engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.checkedout() == 2


async def test_a_failed_unit_of_work_gives_up_its_held_connection(
    sqlite_database: Database,
) -> None:
    """After a transaction that raised, the next runs on a fresh connection, and only the
    failed one's writes are missing."""
    run = new_run()
    before = await sqlite_database.write(the_connection)

    def refused(connection: Connection) -> None:
        append(run, [1], connection)
        raise RefusedError

    with pytest.raises(RefusedError):
        await sqlite_database.write(refused)
    await sqlite_database.write(partial(append, run, [2]))
    after = await sqlite_database.write(the_connection)
    assert after is not before
    assert before.closed
    assert committed(sqlite_database, run) == [2]


async def test_a_unit_of_work_from_another_thread_runs_on_a_pooled_connection(
    sqlite_database: Database,
) -> None:
    """An event loop on another thread never shares the held connections of the first."""
    run = new_run()
    await sqlite_database.write(partial(append, run, [1]))
    mine = await sqlite_database.write(driver_connection)

    def elsewhere() -> int:
        async def work() -> int:
            await sqlite_database.write(partial(append, run, [2]))
            return await sqlite_database.write(driver_connection)

        return asyncio.run(work())

    theirs = await asyncio.to_thread(elsewhere)
    assert theirs != mine
    assert await sqlite_database.read(partial(stored, run)) == [1, 2]


def orphan_child(connection: Connection) -> None:
    """Insert a child whose parent does not exist: its deferred key is only checked at COMMIT."""
    connection.execute(text("INSERT INTO children (parent) VALUES (42)"))


def deferred_keys(connection: Connection) -> None:
    connection.execute(text("CREATE TABLE IF NOT EXISTS parents (id INTEGER PRIMARY KEY)"))
    connection.execute(
        text(
            "CREATE TABLE IF NOT EXISTS children (parent INTEGER REFERENCES parents (id) "
            "DEFERRABLE INITIALLY DEFERRED)"
        )
    )


def child_count(connection: Connection) -> int:
    return int(connection.execute(text("SELECT count(*) FROM children")).scalar_one())


async def test_a_commit_sqlite_refuses_is_sqlalchemys_error_and_stores_nothing(
    sqlite_database: Database,
) -> None:
    """A unit of work whose COMMIT fails (a deferred foreign key) raises SQLAlchemy's
    `IntegrityError`, leaves nothing stored and its connection given up; the next write runs on
    a fresh connection and commits."""
    run = new_run()
    await sqlite_database.write(deferred_keys)
    before = await sqlite_database.write(the_connection)
    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        await sqlite_database.write(orphan_child)
    assert before.closed
    assert await sqlite_database.read(child_count) == 0
    await sqlite_database.write(partial(append, run, [1]))
    assert committed(sqlite_database, run) == [1]


async def test_whoever_listens_for_commits_sees_every_unit_of_works_commit(
    sqlite_database: Database,
) -> None:
    """Units of work on the loop commit on the driver, which an engine's `commit` event would
    not see: while anyone listens for it, they run on pooled connections in SQLAlchemy's own
    transactions, each commit seen; once nobody listens, on the held connection again."""
    engine, run, seen = sqlite_database.sync_engine, new_run(), []
    held = await sqlite_database.write(driver_connection)

    def on_commit(connection: Connection) -> None:
        seen.append(driver_connection(connection))

    event.listen(engine, "commit", on_commit)
    try:
        for value in range(3):
            await sqlite_database.write(partial(append, run, [value]))
        await sqlite_database.read(partial(stored, run))
    finally:
        event.remove(engine, "commit", on_commit)
    assert len(seen) == 4
    assert held not in seen
    assert await sqlite_database.write(driver_connection) == held
    assert committed(sqlite_database, run) == [0, 1, 2]


# --- the end --------------------------------------------------------------------------------


async def test_dispose_stops_the_worker_threads_and_closes_the_pool(
    sqlite_database: Database,
) -> None:
    """After a write ran on a worker thread, `dispose` ends every worker thread and leaves no
    connection checked out."""
    before = worker_threads()
    run = new_run()
    write = sqlite_database.write(partial(append, run, [1, 2]))
    await asyncio.wait_for(await started_behind_another_writer(sqlite_database, write), 10)
    reads = (sqlite_database.read(partial(stored, run)) for _ in range(4))
    assert await asyncio.gather(*reads) == [[1, 2]] * 4
    started = worker_threads() - before
    assert started, "the write never reached a worker thread"
    await sqlite_database.dispose()
    assert [thread.name for thread in started if thread.is_alive()] == []
    pool = sqlite_database.sync_engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.checkedout() == 0


async def test_an_in_memory_database_disposes_with_no_thread_left() -> None:
    """An in-memory database (one connection's) reads and writes, and after `dispose` no
    worker thread of it is alive."""
    before = worker_threads()
    database = database_for("sqlite://")
    try:
        run = new_run()
        await database.write(partial(scratch.create, checkfirst=True))
        await database.write(partial(append, run, [1, 2]))
        assert await database.read(partial(stored, run)) == [1, 2]
        started = worker_threads() - before
    finally:
        await database.dispose()
    assert [thread.name for thread in started if thread.is_alive()] == []


async def test_disposing_an_in_memory_database_closes_its_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The one connection of an in-memory database is closed by `dispose`, without an error."""
    database = database_for("sqlite://")
    await database.write(partial(scratch.create, checkfirst=True))
    with caplog.at_level(logging.ERROR, logger="sqlalchemy.pool"):
        await database.dispose()
    assert [record.getMessage() for record in caplog.records] == []
