"""The session database: its URL, the async engine, and the engine's life in the application.

SQLite is the embedded default: a file in the data directory, in WAL mode so readers never wait
for a writer, with a busy timeout so writers from many chats and processes queue instead of
failing, and write transactions that take the lock when they begin (`BEGIN IMMEDIATE`) so two
writers can never deadlock upgrading a read lock. Any other URL SQLAlchemy's async engine
understands works too; PostgreSQL (asyncpg) is the tested one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import SecretStr
from sqlalchemy import URL, event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InvalidRequestError,
    NoSuchModuleError,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from chatscope.errors import ConfigurationError, redact_secrets

__all__ = [
    "SQLITE_FILE_NAME",
    "create_database_engine",
    "describe_database_error",
    "database_answers",
    "ensure_database_directory",
    "resolve_database_url",
    "write_transaction",
]

SQLITE_FILE_NAME = "chatscope.db"

_BUSY_TIMEOUT_MS = 30_000
# Order matters: the busy timeout first, so switching to WAL waits for other processes.
_SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}",
    "PRAGMA journal_mode = WAL",
    # In WAL mode NORMAL survives any process crash; only a power loss may drop the last
    # commits, and never corrupts the file.
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)
_ASYNC_DRIVERS = MappingProxyType(
    {
        "sqlite": "sqlite+aiosqlite",
        "postgres": "postgresql+asyncpg",
        "postgresql": "postgresql+asyncpg",
    }
)
_WRITE_OPTION = "chatscope_write"
_SETTING = "database_url (env CHATSCOPE_DATABASE_URL)"


def resolve_database_url(*, data_dir: Path, database_url: SecretStr | None) -> URL:
    """The configured URL with an async driver filled in, or SQLite in `data_dir`."""
    if database_url is None:
        return URL.create("sqlite+aiosqlite", database=str(data_dir / SQLITE_FILE_NAME))
    try:
        url = make_url(database_url.get_secret_value())
    except ArgumentError:
        raise ConfigurationError(f"{_SETTING} is not a database URL") from None
    driver = _ASYNC_DRIVERS.get(url.drivername)
    return url.set(drivername=driver) if driver else url


def create_database_engine(*, data_dir: Path, database_url: SecretStr | None) -> AsyncEngine:
    """An async engine for the configured database; opens no connection yet."""
    url = resolve_database_url(data_dir=data_dir, database_url=database_url)
    try:
        engine = create_async_engine(url)
    except (ArgumentError, NoSuchModuleError, InvalidRequestError, ImportError) as exc:
        shown = url.render_as_string(hide_password=True)
        hint = " (PostgreSQL needs the `postgres` extra: asyncpg)" if "asyncpg" in str(exc) else ""
        message = f"{_SETTING} {shown!r} cannot be used: {redact_secrets(str(exc))}{hint}"
        raise ConfigurationError(message) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
        event.listen(engine.sync_engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: object) -> None:
    # chatscope emits BEGIN itself (see `_begin_sqlite_transaction`): the driver's own
    # transaction handling would start transactions late and commit before DDL.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    writes = connection.get_execution_options().get(_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One transaction that writes: committed on exit, rolled back on any exception.

    On SQLite it holds the write lock from its start, so it waits (up to the busy timeout)
    for other writers instead of failing half-way.
    """
    async with engine.connect() as connection:
        await connection.execution_options(**{_WRITE_OPTION: True})
        async with connection.begin():
            yield connection


async def database_answers(engine: AsyncEngine) -> bool:
    """Whether the database answers `SELECT 1` (a server's readiness check)."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError):
        return False
    return True


def ensure_database_directory(url: URL) -> None:
    """Create the directory of a SQLite file URL; a clear `ConfigurationError` if impossible."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    directory = Path(str(url.database)).parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigurationError(
            f"cannot create the data directory {str(directory)!r} "
            f"(setting data_dir, env CHATSCOPE_DATA_DIR): {reason}"
        ) from None


def describe_database_error(exc: BaseException) -> str:
    """The driver's own one-line reason, without the SQL statement or its parameters."""
    reason = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(reason).strip().splitlines()
    return redact_secrets(lines[0] if lines else type(reason).__name__)
