"""Schema version 4: the index of sessions by last update alone (version 2's) is dropped.

Every listing filters by owner and reads the (owner, updated_at) index of version 3, while each
saved turn had to keep both up to date. Covered here: a version 3 database loses the index and
keeps every session and message; a fresh database reaches version 4 without it; and on SQLite
the catalogue's listing of one owner's sessions still searches the (owner, updated_at) index.

Runs on SQLite, and on PostgreSQL too when `CHATSCOPE_TEST_DATABASE_URL` is set (but the query
plan, which is SQLite's).
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from chatscope.adapters.storage.catalog import SessionCatalog
from chatscope.adapters.storage.database import Database
from chatscope.adapters.storage.engine import ensure_database_directory
from chatscope.adapters.storage.schema import (
    LATEST_VERSION,
    migrate,
    prepare_database,
    schema_version,
)
from chatscope.adapters.storage.sql_history import SqlHistoryStore
from chatscope.services.messages import Message, Usage
from tests.support.databases import (
    DATABASE_BACKENDS,
    database_for,
    fresh_database,
    statements_seen,
)
from tests.support.histories import reply, user

BY_UPDATE = "ix_sessions_updated_at"
BY_OWNER_AND_UPDATE = "ix_sessions_owner_updated_at"
Turn = tuple[list[Message], Usage | None]
SAVED: dict[tuple[str, str], list[Turn]] = {
    ("acme", "a1"): [([user("first"), reply("one")], Usage(10, 2))],
    ("acme", "a2"): [([user("second"), reply("two")], None), ([user("more")], Usage(1, 1))],
    ("local", "l1"): [([user("from the CLI"), reply("ok")], None)],
}


@pytest.fixture(params=DATABASE_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database kind under test."""
    return str(request.param)


def schema_state(connection: Connection) -> tuple[list[int], set[str]]:
    """Applied versions, and the index names of `sessions`."""
    query = select(schema_version.c.version).order_by(schema_version.c.version)
    versions = list(connection.execute(query).scalars())
    indexes = {str(index["name"]) for index in inspect(connection).get_indexes("sessions")}
    return versions, indexes


async def save_sessions(database: Database) -> None:
    """Every session of `SAVED`, one after another (so each is newer than the one before)."""
    for (owner, session_id), turns in SAVED.items():
        store = SqlHistoryStore(database, session_id=session_id, owner=owner)
        for messages, usage in turns:
            await store.append_turn(messages, usage)
        await asyncio.sleep(0.002)


async def read_back(database: Database) -> dict[str, Any]:
    """Per owner, its sessions' listed ids, titles, counts and messages."""
    catalog = SessionCatalog(database)
    found: dict[str, Any] = {}
    for owner in ("acme", "local"):
        for summary in await catalog.list_sessions(owner):
            store = SqlHistoryStore(database, session_id=summary.id, owner=owner)
            counts = (summary.turn_count, summary.message_count)
            found.setdefault(owner, []).append(
                (summary.id, summary.title, counts, await store.messages())
            )
    return found


async def test_a_version_3_database_loses_the_index_and_keeps_its_sessions(
    backend: str, tmp_path: Path
) -> None:
    """Migrated from version 3, the database has no index by update alone, still the one by
    owner and update, and the very sessions, messages and listing order it had."""
    async with fresh_database(backend, tmp_path) as url:
        database = database_for(url)
        try:
            ensure_database_directory(database.url)
            assert await migrate(database, target=3) == 3
            await save_sessions(database)
            before = await database.read(schema_state)
            saved = await read_back(database)
            assert await prepare_database(database) == 4
            after = await database.read(schema_state)
            kept = await read_back(database)
            await SqlHistoryStore(database, session_id="a1", owner="acme").append_turn([user("+")])
            listed = [s.id for s in await SessionCatalog(database).list_sessions("acme")]
        finally:
            await database.dispose()
    assert before == ([1, 2, 3], {BY_UPDATE, BY_OWNER_AND_UPDATE})
    assert after == ([1, 2, 3, 4], {BY_OWNER_AND_UPDATE})
    assert kept == saved
    assert [entry[0] for entry in saved["acme"]] == ["a2", "a1"]
    assert listed == ["a1", "a2"]  # a turn saved after the migration moves its session first


async def test_a_fresh_database_reaches_version_4_without_the_index(
    backend: str, tmp_path: Path
) -> None:
    """Start-up applies all four migrations once; migrating again changes nothing."""
    async with fresh_database(backend, tmp_path) as url:
        database = database_for(url)
        try:
            assert await prepare_database(database) == LATEST_VERSION == 4
            first = await database.read(schema_state)
            assert await prepare_database(database) == 4
            again = await database.read(schema_state)
        finally:
            await database.dispose()
    assert first == again == ([1, 2, 3, 4], {BY_OWNER_AND_UPDATE})


def query_plan(database: Database, sql: str) -> str:
    """SQLite's plan for `sql`, its lines joined. (Its markers are bound to NULL: without
    statistics tables the planner chooses by the query's shape, not the values.)"""
    with closing(sqlite3.connect(str(database.url.database))) as raw:
        rows = raw.execute(f"EXPLAIN QUERY PLAN {sql}", [None] * sql.count("?")).fetchall()
    return "\n".join(str(row[-1]) for row in rows)


async def test_listing_an_owners_sessions_searches_the_owner_index_on_sqlite(
    tmp_path: Path,
) -> None:
    """The catalogue's query for one owner's sessions, as it runs, searches the (owner,
    updated_at) index for that owner rather than scanning the table."""
    async with fresh_database("sqlite", tmp_path) as url:
        database = database_for(url)
        try:
            await prepare_database(database)
            await save_sessions(database)
            with statements_seen(database) as seen:
                listed = await SessionCatalog(database).list_sessions("acme")
            plans = [query_plan(database, sql) for sql in seen if "FROM sessions" in sql]
        finally:
            await database.dispose()
    assert [summary.id for summary in listed] == ["a2", "a1"]
    assert len(plans) == 1
    assert f"SEARCH sessions USING INDEX {BY_OWNER_AND_UPDATE} (owner=?)" in plans[0]
    assert BY_UPDATE not in plans[0]
