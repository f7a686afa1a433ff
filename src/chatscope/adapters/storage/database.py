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

The saved-turn path runs its statements through `execute_rows` and `first_row`. On SQLite a
statement costs more in SQLAlchemy's execution path (about 25 µs each) than in SQLite itself, so
an SQLite engine carries `DriverStatements` in its execution options: each statement is compiled
by SQLAlchemy once per engine, then runs on the driver connection underneath, inside the
SQLAlchemy transaction (as that transaction's `BEGIN` already does). Other engines run Core,
and so does SQLite while anyone listens for the engine's cursor or error events.

A transaction that has begun runs to its end even if the task awaiting it is cancelled (on the
event loop nothing can interrupt it); the cancellation is raised once it has committed or
rolled back, so whatever a caller keeps in memory never disagrees with what was stored.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import URL, Engine
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable

__all__ = [
    "DRIVER_STATEMENTS",
    "AsyncDatabase",
    "Database",
    "DriverStatements",
    "SqliteDatabase",
    "UnitOfWork",
    "execute_rows",
    "first_row",
]

T = TypeVar("T")
UnitOfWork = Callable[[Connection], T]
"""One transaction's work: Core statements on the connection it is given."""

# SQLITE_BUSY and SQLITE_LOCKED: the primary result codes of "someone else holds a lock".
_SQLITE_BUSY_CODES = frozenset({5, 6})
WRITE_OPTION = "chatscope_write"
"""The execution option that makes SQLite's `BEGIN` an immediate one (see `engine.py`)."""
DRIVER_STATEMENTS = "chatscope_driver_statements"
"""The execution option of an SQLite engine that holds its `DriverStatements`."""


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

    def __init__(self, *, on_loop: Engine, waiting: Engine, checkpoint_every: int = 512) -> None:
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
        return await self._run(work, writes=False)

    async def write(self, work: UnitOfWork[T]) -> T:
        result = await self._run(work, writes=True)
        self._count_commit()
        return result

    async def dispose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._thread.shutdown)
        # On the loop's thread: an in-memory database's one connection belongs to it.
        self._held.close()
        self._on_loop.dispose()
        self._waiting.dispose()

    async def _run(self, work: UnitOfWork[T], *, writes: bool) -> T:
        try:
            return self._held.transaction(work, writes)
        except OperationalError as exc:
            if self._waiting is self._on_loop or not _is_busy(exc):
                raise
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
    transaction cost as much as the transaction's statements. A connection is held by the
    thread that opened it; any other thread runs its transaction on a pooled connection, as
    does a transaction that fails (its connection is closed, and the next opens another).
    """

    __slots__ = ("_connections", "_engine", "_thread")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._thread: int | None = None
        self._connections: dict[bool, Connection] = {}

    def transaction(self, work: UnitOfWork[T], writes: bool) -> T:
        """Run `work` in one transaction on the held connection for `writes`."""
        if self._thread is None:
            self._thread = threading.get_ident()
        elif self._thread != threading.get_ident():
            return _transaction(self._engine, work, writes)
        connection = self._connections.get(writes)
        if connection is None:
            connection = self._engine.connect()
            if writes:
                connection.execution_options(**{WRITE_OPTION: True})
            self._connections[writes] = connection
        try:
            with connection.begin():
                return work(connection)
        except BaseException:
            del self._connections[writes]
            connection.close()
            raise

    def close(self) -> None:
        """Give the held connections back (on the thread that holds them)."""
        connections, self._connections = self._connections, {}
        for connection in connections.values():
            connection.close()


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


Parameters = Mapping[str, Any]


def execute_rows(
    connection: Connection, statement: Executable, rows: Parameters | Sequence[Parameters]
) -> None:
    """Run `statement` once, or once per row when `rows` is a list (an INSERT of many)."""
    driver = _driver_statements(connection)
    if driver is None:
        connection.execute(statement, rows)
    else:
        driver.execute(connection, statement, rows)


def first_row(
    connection: Connection, statement: Executable, parameters: Parameters
) -> tuple[Any, ...] | None:
    """The first row `statement` returns, or None."""
    driver = _driver_statements(connection)
    if driver is None:
        row = connection.execute(statement, parameters).first()
        return None if row is None else tuple(row)
    return driver.first(connection, statement, parameters)


def _driver_statements(connection: Connection) -> DriverStatements | None:
    """The engine's `DriverStatements` for a statement inside a transaction, unless someone
    listens for the engine's statements or errors (OpenTelemetry's SQLAlchemy instrumentation,
    say): they then run through Core, seen. (Outside a transaction Core begins one itself,
    which the driver, in autocommit, would not.)"""
    driver: DriverStatements | None = connection.get_execution_options().get(DRIVER_STATEMENTS)
    if driver is None or not connection.in_transaction():
        return None
    dispatch = connection.dispatch
    if dispatch.before_cursor_execute or dispatch.after_cursor_execute:
        return None
    if connection.dialect.dispatch.handle_error:
        return None
    return driver


_Processor = Callable[[Any], Any]
_Step = tuple[str | None, Any, _Processor | None]
"""How one `?` is filled: (parameter name, None, its type's processor or None), or for a
constant (None, its value already processed, None)."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A statement as SQLite's driver takes it: SQL text with `?` markers, and how to fill them
    (`steps`, one per marker, in order; `fetch`, when every marker takes a parameter as it is)."""

    sql: str
    steps: tuple[_Step, ...]
    fetch: Callable[[Parameters], tuple[Any, ...]] | None

    def values(self, parameters: Parameters) -> tuple[Any, ...]:
        if self.fetch is not None:
            return self.fetch(parameters)
        return tuple(
            [
                constant
                if name is None
                else parameters[name]
                if processor is None
                else processor(parameters[name])
                for name, constant, processor in self.steps
            ]
        )


class DriverStatements:
    """The statements one SQLite engine has run, compiled by SQLAlchemy once each.

    A statement runs on the driver connection underneath the SQLAlchemy `Connection` it is given,
    in the transaction that connection began; its parameters pass through the same type
    processors SQLAlchemy applies (a `DateTime` becomes SQLite's text form), and a driver error
    becomes the SQLAlchemy exception Core would raise. Only plain statements qualify: bound
    parameters and constants, no expanding `IN`. Held by one engine and dropped with it.
    """

    __slots__ = ("_compiled",)

    def __init__(self) -> None:
        self._compiled: dict[Executable, _Compiled] = {}

    def execute(
        self, connection: Connection, statement: Executable, rows: Parameters | Sequence[Parameters]
    ) -> None:
        compiled = self._compile(connection, statement)
        driver = connection.connection.driver_connection
        try:
            if isinstance(rows, Mapping):
                driver.execute(compiled.sql, compiled.values(rows))  # type: ignore[union-attr]
            else:
                batch = [compiled.values(row) for row in rows]
                driver.executemany(compiled.sql, batch)  # type: ignore[union-attr]
        except sqlite3.Error as exc:
            raise _as_sqlalchemy_error(connection, compiled.sql, exc) from None

    def first(
        self, connection: Connection, statement: Executable, parameters: Parameters
    ) -> tuple[Any, ...] | None:
        compiled = self._compile(connection, statement)
        driver = connection.connection.driver_connection
        try:
            cursor = driver.execute(compiled.sql, compiled.values(parameters))  # type: ignore[union-attr]
            row: tuple[Any, ...] | None = cursor.fetchone()
            cursor.close()
        except sqlite3.Error as exc:
            raise _as_sqlalchemy_error(connection, compiled.sql, exc) from None
        return row

    def _compile(self, connection: Connection, statement: Executable) -> _Compiled:
        compiled = self._compiled.get(statement)
        if compiled is None:
            compiled = self._compiled[statement] = _compile(connection, statement)
        return compiled


def _compile(connection: Connection, statement: Executable) -> _Compiled:
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    names = tuple(compiled.positiontup or ())
    steps = tuple(_step(name, compiled.binds[name], dialect) for name in names)
    return _Compiled(str(compiled), steps, _fetch(steps))


def _step(name: str, bind: Any, dialect: Dialect) -> _Step:
    """How the marker of the bound parameter `bind` is filled."""
    processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
    if bind.required:
        return (name, None, processor)
    return (None, bind.value if processor is None else processor(bind.value), None)


def _fetch(steps: tuple[_Step, ...]) -> Callable[[Parameters], tuple[Any, ...]] | None:
    """The values of `steps` in one C call, if each is a parameter taken as it is."""
    plain = all(name is not None and processor is None for name, _, processor in steps)
    if not plain or len(steps) < 2:
        return None
    return itemgetter(*(name for name, _, _ in steps))


def _as_sqlalchemy_error(connection: Connection, sql: str, exc: sqlite3.Error) -> BaseException:
    """What SQLAlchemy raises for this driver error (an `IntegrityError`, say), without the
    statement's parameters."""
    return DBAPIError.instance(
        sql, None, exc, sqlite3.Error, hide_parameters=True, dialect=connection.dialect
    )
