"""The session database's tables and its numbered migrations, applied in order at start-up.

`schema_version` holds one row per applied migration. `migrate` runs every missing migration
in one transaction that holds the write lock (an advisory lock on PostgreSQL), so processes
starting together apply each migration once, and a database left by a newer chatscope is
refused rather than misread. Tables are declared with SQLAlchemy Core types only: the same
statements run on SQLite and PostgreSQL.

Version history:
  1. `sessions` (id, times, provider, model, title, counts) and `messages` (one row per message:
     session, position, turn, role, JSON payload, usage of the turn's last model call).
  2. An index on `sessions.updated_at`, the order `chatscope sessions list` shows.
  3. `sessions.owner`, the tenant a session belongs to (`'local'` for the CLI and for a server
     without API keys, and for every session saved before), `sessions.system_prompt`, the system
     prompt a session was created with through the server, and an index on (owner, updated_at),
     the order a tenant's sessions are listed in.
  4. Drops the index of version 2: every listing filters by owner, so it reads the index of
     version 3, while every saved turn still had to update both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from chatscope.adapters.storage.database import Database
from chatscope.adapters.storage.engine import describe_database_error, ensure_database_directory
from chatscope.errors import HistoryStoreError

__all__ = [
    "LATEST_VERSION",
    "LOCAL_OWNER",
    "MIGRATIONS",
    "Migration",
    "OWNER_LENGTH",
    "SESSION_ID_LENGTH",
    "database_lifecycle",
    "messages_table",
    "migrate",
    "prepare_database",
    "schema_version",
    "sessions_table",
]

SESSION_ID_LENGTH = 128
OWNER_LENGTH = 128
LOCAL_OWNER = "local"
"""The owner of sessions saved by the CLI, by a server without API keys, and before version 3."""
# Any constant shared by chatscope processes: the PostgreSQL advisory lock of migrations.
_MIGRATION_LOCK_KEY = 0x63686174


def _session_tables(metadata: MetaData, *, latest: bool = False) -> tuple[Table, Table]:
    """The tables as of schema version 1 (version 2 only adds an index), or with `latest` as
    of the latest version (version 3 adds two columns to `sessions`)."""
    sessions = Table(
        "sessions",
        metadata,
        Column("id", String(SESSION_ID_LENGTH), primary_key=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Column("provider", Text, nullable=True),
        Column("model", Text, nullable=True),
        Column("title", Text, nullable=False),
        Column("message_count", Integer, nullable=False),
        Column("turn_count", Integer, nullable=False),
        *_version_3_columns(latest=latest),
    )
    messages = Table(
        "messages",
        metadata,
        Column(
            "session_id",
            String(SESSION_ID_LENGTH),
            ForeignKey("sessions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("position", Integer, primary_key=True),
        Column("turn", Integer, nullable=False),
        Column("role", String(16), nullable=False),
        Column("payload", Text, nullable=False),
        Column("usage", Text, nullable=True),
    )
    return sessions, messages


def _version_3_columns(*, latest: bool) -> tuple[Column[str], ...]:
    if not latest:
        return ()
    return (
        Column("owner", String(OWNER_LENGTH), nullable=False, server_default=LOCAL_OWNER),
        Column("system_prompt", Text, nullable=True),
    )


_metadata = MetaData()
sessions_table, messages_table = _session_tables(_metadata, latest=True)
schema_version = Table(
    "schema_version",
    _metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: `apply` runs inside the migration transaction."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _create_session_tables(connection: Connection) -> None:
    metadata = MetaData()
    _session_tables(metadata)
    metadata.create_all(connection)


def _index_sessions_by_update(connection: Connection) -> None:
    _sessions_by_update().create(connection)


def _drop_index_by_update(connection: Connection) -> None:
    """Listings read the (owner, updated_at) index; a saved turn no longer updates this one."""
    _sessions_by_update().drop(connection, checkfirst=True)


def _sessions_by_update() -> Index:
    """The index of version 2, on the tables of version 1."""
    sessions, _ = _session_tables(MetaData())
    return Index("ix_sessions_updated_at", sessions.c.updated_at)


def _add_session_owners(connection: Connection) -> None:
    """Every session saved so far belongs to the local owner."""
    connection.execute(
        text(
            f"ALTER TABLE sessions ADD COLUMN owner VARCHAR({OWNER_LENGTH}) "
            f"DEFAULT '{LOCAL_OWNER}' NOT NULL"
        )
    )
    connection.execute(text("ALTER TABLE sessions ADD COLUMN system_prompt TEXT"))
    sessions, _ = _session_tables(MetaData(), latest=True)
    index = Index("ix_sessions_owner_updated_at", sessions.c.owner, sessions.c.updated_at)
    index.create(connection)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "sessions and messages", _create_session_tables),
    Migration(2, "index sessions by last update", _index_sessions_by_update),
    Migration(3, "session owners and system prompts", _add_session_owners),
    Migration(4, "drop the index of sessions by last update alone", _drop_index_by_update),
)
LATEST_VERSION = MIGRATIONS[-1].version


async def migrate(database: Database, *, target: int = LATEST_VERSION) -> int:
    """Apply every migration up to `target` not yet applied, atomically; returns the version.

    Running it again changes nothing. A database whose version is above `LATEST_VERSION`
    was written by a newer chatscope and raises `HistoryStoreError`.
    """
    return await database.write(partial(_migrate, target=target))


def _migrate(connection: Connection, *, target: int) -> int:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    schema_version.create(connection, checkfirst=True)
    current = connection.execute(select(func.max(schema_version.c.version))).scalar() or 0
    if current > LATEST_VERSION:
        raise HistoryStoreError(
            f"the session database has schema version {current}, newer than the {LATEST_VERSION} "
            "this chatscope understands; upgrade chatscope to use it"
        )
    for migration in MIGRATIONS:
        if current < migration.version <= target:
            migration.apply(connection)
            applied_at = dt.datetime.now(dt.UTC)
            connection.execute(
                insert(schema_version).values(version=migration.version, applied_at=applied_at)
            )
            current = migration.version
    return current


async def prepare_database(database: Database) -> int:
    """Create a SQLite file's directory if needed, then migrate; returns the schema version."""
    ensure_database_directory(database.url)
    try:
        return await migrate(database)
    except (DBAPIError, OSError) as exc:
        shown = database.url.render_as_string(hide_password=True)
        raise HistoryStoreError(f"database {shown!r}: {describe_database_error(exc)}") from None


async def database_lifecycle(
    open_database: Callable[[], Database], *, history_backend: str
) -> AsyncIterator[Database | None]:
    """The database's life in an application: migrated on start, its pool and threads closed
    on shutdown.

    With the memory history backend nothing is opened or written.
    """
    if history_backend != "database":
        yield None
        return
    database = open_database()
    try:
        await prepare_database(database)
        yield database
    finally:
        await database.dispose()
