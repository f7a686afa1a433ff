"""The session database of one application: every unit of work is one transaction.

A unit of work is a plain function over a SQLAlchemy `Connection` (Core statements, the same on
every backend). `Database.read` and `Database.write` run it in one transaction, committed when
it returns and rolled back when it raises; a write holds SQLite's write lock from its start.

How it runs depends on the backend, never what it means:

- SQLite (the embedded default) uses SQLAlchemy's synchronous pysqlite engine: a unit of work
  runs whole on the event loop, and only waits for another process's lock on a worker thread
  (see `SqliteDatabase`). An async SQLite driver hops to its thread once per statement, fetch,
  commit and pool reset, which cost a saved turn several times as much.
- Any other URL (PostgreSQL through asyncpg is the tested one) uses SQLAlchemy's async engine;
  the same function runs through `AsyncConnection.run_sync`, each statement awaited on the loop.

On SQLite, SQLAlchemy's bookkeeping of a transaction and of each statement cost more than
SQLite's own work, so the event loop's transactions are begun and ended on the driver connection
(see `_HeldConnections`) and the saved-turn statements run there too (see `driver.py`).

A transaction that has begun runs to its end even if the task awaiting it is cancelled (on the
event loop nothing can interrupt it); the cancellation is raised once it has committed or
rolled back, so whatever a caller keeps in memory never disagrees with what was stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import URL, Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from chatscope.adapters.storage.driver import (
    DRIVER_TRANSACTIONS,
    as_sqlalchemy_error,
    statements_observed,
)

__all__ = [
    "CHECKPOINT_EVERY",
    "AsyncDatabase",
    "Database",
    "SqliteDatabase",
    "UnitOfWork",
    "begin_on_driver",
]

T = TypeVar("T")
UnitOfWork = Callable[[Connection], T]
"""One transaction's work: Core statements on the connection it is given."""

# SQLITE_BUSY and SQLITE_LOCKED: the primary result codes of "someone else holds a lock".
_SQLITE_BUSY_CODES = frozenset({5, 6})
CHECKPOINT_EVERY = 512
"""Commits made on the event loop between two checkpoints of a `SqliteDatabase`'s WAL."""
WRITE_OPTION = "chatscope_write"
"""The execution option that makes SQLite's `BEGIN` an immediate one (see `engine.py`)."""


class Database(ABC):
    """The session database: its URL, transactions, and its end."""

    __slots__ = ()

    @property
    @abstractmethod
    def url(self) -> URL:
        """The database URL (with its password; render it with `hide_password=True`)."""

    @property
    @abstractmethod
    def sync_engine(self) -> Engine:
        """The synchronous engine underneath: its pool, dialect and events."""

    @abstractmethod
    async def read(self, work: UnitOfWork[T]) -> T:
        """Run `work` in a transaction that only reads."""

    @abstractmethod
    async def write(self, work: UnitOfWork[T]) -> T:
        """Run `work` in a transaction that writes: committed on return, rolled back on error."""

    @abstractmethod
    async def dispose(self) -> None:
        """Close every pooled connection and stop any worker thread."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url.render_as_string(hide_password=True)!r})"


class SqliteDatabase(Database):
    """SQLite through pysqlite: transactions run on the event loop, and wait on a thread.

    A SQLite transaction in WAL mode is a few hundred microseconds of the process's own CPU: no
    network, and no fsync on commit (`synchronous = NORMAL`). So each unit of work first runs
    right on the event loop, on connections (`on_loop`) that never wait: their busy timeout is
    0 and they never checkpoint. Only when another process holds the write lock (SQLITE_BUSY)
    does the work run again, whole, on the database's one worker thread, whose connections
    (`waiting`) wait for the lock up to their busy timeout. That thread also copies the WAL
    into the database file (a passive checkpoint, which fsyncs) every `checkpoint_every`
    commits made on the loop, so the loop never waits for a disk or another process.

    (A thread per transaction, or an async driver's thread per statement, costs far more:
    under load each handoff waits for the event loop to release the GIL.)

    For an in-memory database, `waiting` is `on_loop`: it is one connection's, and no other
    process can lock it.
    """

    __slots__ = (
        "_checkpoint",
        "_every",
        "_held",
        "_on_loop",
        "_since",
        "_thread",
        "_waiting",
    )

    def __init__(
        self, *, on_loop: Engine, waiting: Engine, checkpoint_every: int = CHECKPOINT_EVERY
    ) -> None:
        self._on_loop = on_loop
        self._waiting = waiting
        # The thread starts on first use, and ends with `dispose`.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="chatscope-db")
        self._every = checkpoint_every if waiting is not on_loop else 0
        self._since = 0
        self._checkpoint: Future[None] | None = None
        self._held = _HeldConnections(on_loop)

    @property
    def url(self) -> URL:
        return self._on_loop.url

    @property
    def sync_engine(self) -> Engine:
        return self._on_loop

    async def read(self, work: UnitOfWork[T]) -> T:
        try:
            return self._held.transaction(work, False)
        except OperationalError as exc:
            return await self._after_the_lock(exc, work, writes=False)

    async def write(self, work: UnitOfWork[T]) -> T:
        try:
            result = self._held.transaction(work, True)
        except OperationalError as exc:
            result = await self._after_the_lock(exc, work, writes=True)
        self._count_commit()
        return result

    async def dispose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._thread.shutdown)
        # On the loop's thread: an in-memory database's one connection belongs to it.
        self._held.close()
        self._on_loop.dispose()
        self._waiting.dispose()

    async def _after_the_lock(
        self, refused: OperationalError, work: UnitOfWork[T], *, writes: bool
    ) -> T:
        """Run `work` again on the worker thread, waiting for the lock, if another process's
        lock was why it was `refused` on the loop; else raise that refusal."""
        if self._waiting is self._on_loop or not _is_busy(refused):
            raise refused
        loop = asyncio.get_running_loop()
        started = loop.run_in_executor(self._thread, _transaction, self._waiting, work, writes)
        return await _to_its_end(started)

    def _count_commit(self) -> None:
        """Start a checkpoint on the thread every `checkpoint_every` commits, one at a time."""
        if not self._every:
            return
        self._since += 1
        if self._since < self._every:
            return
        if self._checkpoint is None or self._checkpoint.done():
            self._since = 0
            self._checkpoint = self._thread.submit(_checkpoint, self._waiting)


class AsyncDatabase(Database):
    """SQLAlchemy's async engine; a unit of work runs through `run_sync` on the event loop."""

    __slots__ = ("_engine",)

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def url(self) -> URL:
        return self._engine.url

    @property
    def sync_engine(self) -> Engine:
        return self._engine.sync_engine

    async def read(self, work: UnitOfWork[T]) -> T:
        return await _to_its_end(asyncio.ensure_future(self._run(work, writes=False)))

    async def write(self, work: UnitOfWork[T]) -> T:
        return await _to_its_end(asyncio.ensure_future(self._run(work, writes=True)))

    async def dispose(self) -> None:
        await self._engine.dispose()

    async def _run(self, work: UnitOfWork[T], *, writes: bool) -> T:
        async with self._engine.connect() as connection:
            if writes:
                await connection.execution_options(**{WRITE_OPTION: True})
            async with connection.begin():
                return await connection.run_sync(work)


def _is_busy(exc: OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock (BUSY or LOCKED)."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in _SQLITE_BUSY_CODES


def _checkpoint(engine: Engine) -> None:
    """Copy what the WAL holds into the database file, without waiting for anyone."""
    connection = engine.raw_connection()
    try:
        connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
    finally:
        connection.close()


class _HeldConnections:
    """The on-loop connections of a `SqliteDatabase`: one for reads, one for writes, each kept
    between transactions, since on the loop one transaction runs at a time.

    Checking a connection out of the pool and returning it (with its reset) for every
    transaction cost as much as the transaction's statements, and so did SQLAlchemy's own
    bookkeeping of each transaction. So a held connection stands in one SQLAlchemy transaction
    for as long as it is held (its `begin` emits nothing, see `DRIVER_TRANSACTIONS`), and each
    unit of work's transaction is begun and committed on the driver connection underneath.
    Whoever listens for the engine's commits, rollbacks or statements would miss these: while
    anyone does, units of work run on pooled connections, in SQLAlchemy's transactions.

    A connection is held by the thread that opened it; any other thread runs its transaction on
    a pooled connection, as does a transaction that fails (its connection is closed, and the
    next opens another).
    """

    __slots__ = ("_connections", "_engine", "_thread")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._thread: int | None = None
        self._connections: dict[bool, _Held] = {}

    def transaction(self, work: UnitOfWork[T], writes: bool) -> T:
        """Run `work` in one transaction on the held connection for `writes`."""
        if self._thread is None:
            self._thread = threading.get_ident()
        elif self._thread != threading.get_ident():
            return _transaction(self._engine, work, writes)
        if _observed(self._engine):
            return _transaction(self._engine, work, writes)
        held = self._connections.get(writes) or self._hold(writes)
        begin_on_driver(held.driver, writes)
        try:
            result = work(held.connection)
            _commit_on_driver(held)
        except BaseException:
            del self._connections[writes]
            held.give_up()
            raise
        return result

    def close(self) -> None:
        """Give the held connections back (on the thread that holds them)."""
        connections, self._connections = self._connections, {}
        for held in connections.values():
            held.connection.close()

    def _hold(self, writes: bool) -> _Held:
        connection = self._engine.connect()
        held = self._connections[writes] = _Held(connection)
        connection.execution_options(**{DRIVER_TRANSACTIONS: held.driver})
        connection.begin()  # the standing transaction: see `DRIVER_TRANSACTIONS`
        return held


class _Held:
    """A held connection and the driver connection underneath it."""

    __slots__ = ("connection", "driver")

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.driver: sqlite3.Connection = connection.connection.driver_connection  # type: ignore[assignment]

    def give_up(self) -> None:
        """Roll back whatever the driver still has open, then close the connection."""
        if self.driver.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.driver.execute("ROLLBACK")
        self.connection.close()


def begin_on_driver(driver: sqlite3.Connection, writes: bool) -> None:
    """Begin a transaction on an SQLite driver connection, taking the write lock at once for
    `writes`; an `OperationalError` (as SQLAlchemy raises) if SQLite refuses."""
    statement = "BEGIN IMMEDIATE" if writes else "BEGIN"
    try:
        driver.execute(statement)
    except sqlite3.Error as exc:
        raise OperationalError(statement, None, exc) from None


def _commit_on_driver(held: _Held) -> None:
    try:
        held.driver.execute("COMMIT")
    except sqlite3.Error as exc:
        raise as_sqlalchemy_error(held.connection, "COMMIT", exc) from None


def _observed(engine: Engine) -> bool:
    """Whether anyone listens for the engine's commits, rollbacks, statements or errors."""
    dispatch = engine.dispatch
    return bool(dispatch.commit or dispatch.rollback) or statements_observed(engine)


def _transaction(engine: Engine, work: UnitOfWork[T], writes: bool) -> T:
    with engine.connect() as connection:
        if writes:
            connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            return work(connection)


async def _to_its_end(started: asyncio.Future[T]) -> T:
    """The result of a transaction under way; a cancellation waits for its end, then is raised."""
    try:
        return await asyncio.shield(started)
    except asyncio.CancelledError:
        await asyncio.wait([started])
        if not started.cancelled():
            started.exception()  # retrieved: its outcome is the cancellation raised now
        raise
