"""The session database's URL and engine: `open_database` makes the `Database` of a setting.

SQLite is the embedded default: a file in the data directory, in WAL mode so readers never wait
for a writer, with a busy timeout so writers of other processes queue instead of failing, and
write transactions that take the lock when they begin (`BEGIN IMMEDIATE`) so two writers can
never deadlock upgrading a read lock. It runs on the synchronous pysqlite driver (see
`SqliteDatabase` for where its transactions run). Any other URL SQLAlchemy's async
engine understands works too; PostgreSQL (asyncpg) is the tested one.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import SecretStr
from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InvalidRequestError,
    NoSuchModuleError,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import create_async_engine

from chatscope.adapters.storage.database import (
    WRITE_OPTION,
    AsyncDatabase,
    Database,
    SqliteDatabase,
    begin_on_driver,
)
from chatscope.adapters.storage.driver import (
    DRIVER_STATEMENTS,
    DRIVER_TRANSACTIONS,
    DriverStatements,
)
from chatscope.errors import ConfigurationError, redact_secrets

__all__ = [
    "ON_LOOP_PRAGMAS",
    "SQLITE_FILE_NAME",
    "SQLITE_PRAGMAS",
    "database_answers",
    "describe_database_error",
    "ensure_database_directory",
    "open_database",
    "resolve_database_url",
]

SQLITE_FILE_NAME = "chatscope.db"

_BUSY_TIMEOUT_MS = 30_000
# Order matters: the busy timeout first, so switching to WAL waits for other processes.
SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}",
    "PRAGMA journal_mode = WAL",
    # In WAL mode NORMAL survives any process crash; only a power loss may drop the last
    # commits, and never corrupts the file.
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)
# SQLite runs on the synchronous driver whatever the URL names; PostgreSQL on asyncpg.
_DRIVERS = MappingProxyType(
    {
        "sqlite": "sqlite+pysqlite",
        "sqlite+aiosqlite": "sqlite+pysqlite",
        "postgres": "postgresql+asyncpg",
        "postgresql": "postgresql+asyncpg",
    }
)
# Connections used on the event loop never wait for a lock and never checkpoint (see
# `SqliteDatabase`); applied after `SQLITE_PRAGMAS`.
ON_LOOP_PRAGMAS = ("PRAGMA busy_timeout = 0", "PRAGMA wal_autocheckpoint = 0")
_SETTING = "database_url (env CHATSCOPE_DATABASE_URL)"


def resolve_database_url(*, data_dir: Path, database_url: SecretStr | None) -> URL:
    """The configured URL with chatscope's driver filled in, or SQLite in `data_dir`."""
    if database_url is None:
        return URL.create("sqlite+pysqlite", database=str(data_dir / SQLITE_FILE_NAME))
    try:
        url = make_url(database_url.get_secret_value())
    except ArgumentError:
        raise ConfigurationError(f"{_SETTING} is not a database URL") from None
    driver = _DRIVERS.get(url.drivername)
    return url.set(drivername=driver) if driver else url


def open_database(*, data_dir: Path, database_url: SecretStr | None) -> Database:
    """The `Database` of the configured URL; opens no connection and starts no thread yet."""
    url = resolve_database_url(data_dir=data_dir, database_url=database_url)
    try:
        if url.get_backend_name() == "sqlite":
            return _sqlite_database(url)
        return AsyncDatabase(create_async_engine(url))
    except (ArgumentError, NoSuchModuleError, InvalidRequestError, ImportError) as exc:
        shown = url.render_as_string(hide_password=True)
        hint = " (PostgreSQL needs the `postgres` extra: asyncpg)" if "asyncpg" in str(exc) else ""
        message = f"{_SETTING} {shown!r} cannot be used: {redact_secrets(str(exc))}{hint}"
        raise ConfigurationError(message) from None


def _sqlite_database(url: URL) -> SqliteDatabase:
    on_loop = _sqlite_engine(url, (*SQLITE_PRAGMAS, *ON_LOOP_PRAGMAS))
    if url.database in (None, "", ":memory:"):
        return SqliteDatabase(on_loop=on_loop, waiting=on_loop)
    return SqliteDatabase(on_loop=on_loop, waiting=_sqlite_engine(url, SQLITE_PRAGMAS))


def _sqlite_engine(url: URL, pragmas: tuple[str, ...]) -> Engine:
    engine: Engine = create_engine(url, execution_options={DRIVER_STATEMENTS: DriverStatements()})
    event.listen(engine, "connect", partial(_configure_sqlite_connection, pragmas=pragmas))
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(
    dbapi_connection: Any, _record: object, *, pragmas: tuple[str, ...]
) -> None:
    # chatscope emits BEGIN itself (see `_begin_sqlite_transaction`): the driver's own
    # transaction handling would start transactions late and commit before DDL.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in pragmas:
        cursor.execute(pragma)
    cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    options = connection.get_execution_options()
    if options.get(DRIVER_TRANSACTIONS) is not None:
        return  # a held connection's standing transaction: its units of work begin their own
    # Straight to the driver: through `exec_driver_sql` this costs more than the statement.
    raw = connection.connection.driver_connection
    begin_on_driver(raw, writes=options.get(WRITE_OPTION, False))  # type: ignore[arg-type]


async def database_answers(database: Database) -> bool:
    """Whether the database answers `SELECT 1` (a server's readiness check)."""
    try:
        await database.read(_select_one)
    except (SQLAlchemyError, OSError):
        return False
    return True


def _select_one(connection: Connection) -> None:
    connection.execute(text("SELECT 1"))


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
