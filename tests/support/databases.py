"""Session databases for tests: SQLite in `tmp_path` always, PostgreSQL when a server is given.

Set `CHATSCOPE_TEST_DATABASE_URL` to a PostgreSQL URL (e.g.
`postgresql://postgres@/postgres?host=/path/to/socket/dir`) and every test parametrised over
`DATABASE_BACKENDS` also runs against it, each test in a database of its own that is created
and dropped around it. Without the variable the PostgreSQL case is not generated at all.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import URL, event, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from chatscope.adapters.storage.database import Database
from chatscope.adapters.storage.engine import open_database, resolve_database_url
from chatscope.adapters.storage.schema import prepare_database

__all__ = [
    "DATABASE_BACKENDS",
    "TEST_DATABASE_URL_VARIABLE",
    "database_url",
    "database_for",
    "fresh_database",
    "migrated_database",
]

TEST_DATABASE_URL_VARIABLE = "CHATSCOPE_TEST_DATABASE_URL"
DATABASE_BACKENDS = (
    ("sqlite", "postgresql") if os.environ.get(TEST_DATABASE_URL_VARIABLE) else ("sqlite",)
)


@asynccontextmanager
async def fresh_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database of `backend`, removed afterwards (PostgreSQL)."""
    if backend == "sqlite":
        yield database_url(tmp_path / "data")
        return
    server = resolve_database_url(
        data_dir=tmp_path, database_url=SecretStr(os.environ[TEST_DATABASE_URL_VARIABLE])
    )
    name = f"chatscope_test_{uuid.uuid4().hex[:12]}"
    await _admin(server, f"CREATE DATABASE {name}")
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@asynccontextmanager
async def migrated_database(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh, migrated database of `backend`, disposed afterwards."""
    async with fresh_database(backend, tmp_path) as url:
        database = database_for(url)
        try:
            await prepare_database(database)
            yield database
        finally:
            await database.dispose()


@contextmanager
def statements_seen(database: Database) -> Iterator[list[str]]:
    """The SQL of each statement the database's engine runs inside the block, in order. (A
    cursor listener is attached meanwhile, so the statements run through SQLAlchemy Core.)"""
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    engine = database.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def database_for(url: str) -> Database:
    """chatscope's own `Database` for a database URL."""
    return open_database(data_dir=Path("/nonexistent"), database_url=SecretStr(url))


def database_url(data_dir: Path) -> str:
    """The SQLite URL chatscope uses for `data_dir`."""
    return resolve_database_url(data_dir=data_dir, database_url=None).render_as_string()


async def _admin(server: URL, statement: str) -> None:
    admin = create_async_engine(make_url(server), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await admin.dispose()
