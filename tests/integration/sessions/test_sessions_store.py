"""The database history store: lazy sessions, atomic turns, migrations, many writers, clear errors.

Runs on SQLite, and on PostgreSQL too when `CHATSCOPE_TEST_DATABASE_URL` is set.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sqlite3
import sys
import time
from asyncio.subprocess import PIPE, Process
from collections.abc import AsyncIterator
from itertools import groupby
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import insert, inspect, select, text, update
from sqlalchemy.engine import Connection

from chatscope.adapters.storage import sql_history
from chatscope.adapters.storage.catalog import SessionCatalog
from chatscope.adapters.storage.codec import MessageCodecError, encode_message
from chatscope.adapters.storage.database import Database
from chatscope.adapters.storage.engine import ensure_database_directory, open_database
from chatscope.adapters.storage.schema import (
    LATEST_VERSION,
    messages_table,
    migrate,
    prepare_database,
    schema_version,
    sessions_table,
)
from chatscope.adapters.storage.sql_history import SqlHistoryStore, StoredMessage
from chatscope.errors import ConfigurationError, HistoryStoreError, UnknownSessionError
from chatscope.services.messages import Message, Role, TextBlock, Usage, estimate_tokens
from tests.support.databases import (
    DATABASE_BACKENDS,
    database_for,
    fresh_database,
    migrated_database,
)
from tests.support.history_writer import turn_messages

WRITER = Path(__file__).parents[2] / "support" / "history_writer.py"


@pytest.fixture(params=DATABASE_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database kind under test."""
    return str(request.param)


@pytest.fixture
async def database(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh, migrated database."""
    async with migrated_database(backend, tmp_path) as database:
        yield database


def reply(text: str) -> Message:
    """An assistant message saying `text`."""
    return Message(Role.ASSISTANT, (TextBlock(text),))


async def stored_rows(database: Database, session_id: str) -> list[tuple[int, int]]:
    """(position, turn) of every message row of a session, in position order."""
    query = (
        select(messages_table.c.position, messages_table.c.turn)
        .where(messages_table.c.session_id == session_id)
        .order_by(messages_table.c.position)
    )

    def read(connection: Connection) -> list[tuple[int, int]]:
        return [(row[0], row[1]) for row in connection.execute(query)]

    return await database.read(read)


# --- sessions come and go -------------------------------------------------------------------


async def test_opening_creates_nothing_and_the_first_turn_creates_the_session(
    database: Database,
) -> None:
    """An opened store is empty and unsaved; its first turn saves the session with its title."""
    store, catalog = SqlHistoryStore(database, session_id="s1"), SessionCatalog(database)
    assert await store.messages() == ()
    assert await store.token_count() == 0
    assert await catalog.find("s1") is None
    store.label(provider="openai", model="gpt-test")
    await store.append_turn([Message.user("  What is\n in here? "), reply("files")])
    summary = await catalog.get("s1")
    assert (summary.title, summary.provider, summary.model) == (
        "What is in here?",
        "openai",
        "gpt-test",
    )
    assert (summary.turn_count, summary.message_count) == (1, 2)
    assert summary.created_at == summary.updated_at


async def test_a_reopened_session_keeps_its_measured_token_count(database: Database) -> None:
    """API-reported usage is stored with the turn, so a reloaded session counts tokens the same."""
    store = SqlHistoryStore(database, session_id="s1")
    await store.append_turn([Message.user("a" * 40), reply("b" * 40)], Usage(1000, 50))
    await store.append_turn([Message.user("c" * 400)])
    expected = 1050 + 400 // 4
    assert await store.token_count() == expected
    assert await SqlHistoryStore(database, session_id="s1").token_count() == expected


async def test_an_empty_turn_stores_nothing(database: Database) -> None:
    """Appending no messages neither creates a session nor counts a turn."""
    await SqlHistoryStore(database, session_id="s1").append_turn([], Usage(5, 5))
    assert await SessionCatalog(database).find("s1") is None


async def test_the_catalog_lists_newest_first_and_deletes_whole_sessions(
    database: Database,
) -> None:
    """`list_sessions` orders by last update; `delete` removes the session and its messages."""
    for session_id in ("old", "new", "middle"):
        store = SqlHistoryStore(database, session_id=session_id)
        await store.append_turn([Message.user(session_id)])
    await SqlHistoryStore(database, session_id="middle").append_turn([Message.user("again")])
    await SqlHistoryStore(database, session_id="new").append_turn([Message.user("again")])
    catalog = SessionCatalog(database)
    assert [s.id for s in await catalog.list_sessions()] == ["new", "middle", "old"]
    await catalog.delete("middle")
    assert [s.id for s in await catalog.list_sessions()] == ["new", "old"]
    assert await stored_rows(database, "middle") == []
    assert await catalog.transcript("middle") == ()


@settings(max_examples=15)
@given(session_id=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\0")))
async def test_unknown_sessions_are_named_in_the_error(database: Database, session_id: str) -> None:
    """Asking the catalog for any id that names no session raises an error naming that id."""
    catalog = SessionCatalog(database)
    assert await catalog.find(session_id) is None
    for action in (catalog.get, catalog.delete):
        with pytest.raises(UnknownSessionError) as caught:
            await action(session_id)
        assert caught.value.session_id == session_id
        assert repr(session_id) in str(caught.value)


# --- owners ---------------------------------------------------------------------------------


async def test_a_new_session_belongs_to_its_stores_owner(database: Database) -> None:
    """A store creates its session with its owner; without one, the local owner."""
    mine = SqlHistoryStore(database, session_id="mine", owner="acme")
    await mine.append_turn([Message.user("a")])
    await SqlHistoryStore(database, session_id="cli").append_turn([Message.user("b")])
    catalog = SessionCatalog(database)
    assert (await catalog.get("mine")).owner == "acme"
    assert (await catalog.get("cli")).owner == "local"
    assert [s.id for s in await catalog.list_sessions("acme")] == ["mine"]
    assert [s.id for s in await catalog.list_sessions("local")] == ["cli"]
    assert {s.id for s in await catalog.list_sessions()} == {"mine", "cli"}


async def test_another_owners_session_reads_empty_and_refuses_every_write(
    database: Database,
) -> None:
    """A store of globex on acme's session sees nothing, and its appends and replacements
    raise `UnknownSessionError`, leaving acme's session exactly as it was."""
    turn = [Message.user("acme's secret"), reply("ok")]
    await SqlHistoryStore(database, session_id="s1", owner="acme").append_turn(turn)
    intruder = SqlHistoryStore(database, session_id="s1", owner="globex", provider="x", model="y")
    assert await intruder.messages() == ()
    for write in (
        intruder.append_turn([Message.user("mine now")]),
        intruder.replace([Message.user("mine now")]),
    ):
        with pytest.raises(UnknownSessionError):
            await write
    summary = await SessionCatalog(database).get("s1")
    assert (summary.owner, summary.provider, summary.turn_count) == ("acme", None, 1)
    assert await SqlHistoryStore(database, session_id="s1", owner="acme").messages() == tuple(turn)


async def test_the_catalog_filters_every_method_by_owner(database: Database) -> None:
    """find, get, transcript and delete see only the owner's session when given an owner."""
    await SqlHistoryStore(database, session_id="s1", owner="acme").append_turn([Message.user("a")])
    catalog = SessionCatalog(database)
    assert await catalog.find("s1", "globex") is None
    assert await catalog.transcript("s1", "globex") == ()
    for action in (catalog.get, catalog.delete):
        with pytest.raises(UnknownSessionError):
            await action("s1", "globex")
    assert (await catalog.get("s1", "acme")).id == "s1"
    assert [item.message for item in await catalog.transcript("s1", "acme")] == [Message.user("a")]
    await catalog.delete("s1", "acme")
    assert await catalog.find("s1") is None
    assert await stored_rows(database, "s1") == []


async def test_a_created_session_is_empty_until_its_first_turn_titles_it(
    database: Database,
) -> None:
    """`create` saves an empty session with its label and system prompt; the first turn
    gives it its title, and later turns keep it."""
    catalog = SessionCatalog(database)
    created = await catalog.create(
        "s1", owner="acme", provider="openai", model="m", system_prompt="Be brief."
    )
    assert (created.turn_count, created.message_count, created.title) == (0, 0, "")
    assert (created.owner, created.system_prompt) == ("acme", "Be brief.")
    store = SqlHistoryStore(database, session_id="s1", owner="acme")
    assert await store.messages() == ()
    await store.append_turn([Message.user("first prompt"), reply("1")])
    await store.append_turn([Message.user("second prompt"), reply("2")])
    summary = await catalog.get("s1", "acme")
    assert (summary.title, summary.turn_count, summary.message_count) == ("first prompt", 2, 4)
    assert (summary.provider, summary.system_prompt) == ("openai", "Be brief.")
    assert [(row[1]) for row in await stored_rows(database, "s1")] == [1, 1, 2, 2]


async def test_creating_an_existing_session_id_is_a_store_error(database: Database) -> None:
    """`create` never takes over a saved session, whoever owns it."""
    await SqlHistoryStore(database, session_id="s1", owner="acme").append_turn([Message.user("a")])
    with pytest.raises(HistoryStoreError, match="creating session 's1'"):
        await SessionCatalog(database).create("s1", owner="globex")
    assert (await SessionCatalog(database).get("s1")).owner == "acme"


# --- atomicity ------------------------------------------------------------------------------


async def test_a_turn_the_database_refuses_leaves_no_trace(database: Database) -> None:
    """If inserting a turn fails half-way, the whole transaction is undone: counts, rows, cache."""
    store = SqlHistoryStore(database, session_id="s1")
    first = [Message.user("one"), reply("1")]
    await store.append_turn(first)
    # Occupy the position the failing turn's second message needs, behind the store's back.
    occupied = insert(messages_table).values(
        session_id="s1", position=3, turn=9, role="user", payload=encode_message(reply("x"))
    )
    await database.write(lambda connection: connection.execute(occupied))
    with pytest.raises(HistoryStoreError, match="saving a turn of session 's1'"):
        await store.append_turn([Message.user("two"), reply("2")])
    assert await stored_rows(database, "s1") == [(0, 1), (1, 1), (3, 9)]
    summary = await SessionCatalog(database).get("s1")
    assert (summary.turn_count, summary.message_count) == (1, 2)
    assert await store.messages() == tuple(first)


async def test_a_turn_failing_after_its_first_statement_is_rolled_back(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure between updating the session row and inserting messages commits nothing."""
    store = SqlHistoryStore(database, session_id="s1")
    await store.append_turn([Message.user("one")], Usage(10, 10))

    def broken(usage: Usage) -> str:
        raise MessageCodecError("cannot encode")

    monkeypatch.setattr(sql_history, "encode_usage", broken)
    with pytest.raises(HistoryStoreError, match="cannot encode"):
        await store.append_turn([Message.user("two")], Usage(20, 20))
    summary = await SessionCatalog(database).get("s1")
    assert (summary.turn_count, summary.message_count) == (1, 1)
    assert await SqlHistoryStore(database, session_id="s1").messages() == (Message.user("one"),)


async def test_a_failed_replace_keeps_the_old_history(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`replace` deletes and inserts in one transaction: a failure keeps every old message."""
    store = SqlHistoryStore(database, session_id="s1")
    old = [Message.user("one"), reply("1"), Message.user("two"), reply("2")]
    await store.append_turn(old[:2])
    await store.append_turn(old[2:])
    calls = iter(range(100))

    def fails_on_third(message: Message) -> str:
        if next(calls) == 2:
            raise MessageCodecError("third message cannot be encoded")
        return encode_message(message)

    monkeypatch.setattr(sql_history, "encode_message", fails_on_third)
    with pytest.raises(HistoryStoreError, match="replacing the history of session 's1'"):
        await store.replace([Message.user("summary"), reply("s"), Message.user("two")])
    assert await SqlHistoryStore(database, session_id="s1").messages() == tuple(old)
    assert await store.messages() == tuple(old)


# --- migrations -----------------------------------------------------------------------------


async def schema_state(database: Database) -> tuple[list[int], set[str], set[str]]:
    """Applied versions, table names, and index names of `sessions`."""

    def read(connection: Connection) -> tuple[list[int], set[str], set[str]]:
        query = select(schema_version.c.version).order_by("version")
        versions = list(connection.execute(query).scalars().all())
        inspector = inspect(connection)
        indexes = {str(index["name"]) for index in inspector.get_indexes("sessions")}
        return versions, set(inspector.get_table_names()), indexes

    return await database.read(read)


async def test_a_fresh_database_is_migrated_to_the_latest_version(
    backend: str, tmp_path: Path
) -> None:
    """Start-up creates every table and applies every migration once, recorded in order."""
    async with fresh_database(backend, tmp_path) as url:
        database = database_for(url)
        try:
            assert await prepare_database(database) == LATEST_VERSION
            versions, tables, indexes = await schema_state(database)
        finally:
            await database.dispose()
    assert versions == list(range(1, LATEST_VERSION + 1))
    assert {"sessions", "messages", "schema_version"} <= tables
    assert "ix_sessions_owner_updated_at" in indexes
    assert "ix_sessions_updated_at" not in indexes  # version 2's, dropped by version 4


async def test_migrating_again_changes_nothing(database: Database) -> None:
    """An already migrated database is left as it is, data included."""
    await SqlHistoryStore(database, session_id="s1").append_turn([Message.user("kept")])
    before = await schema_state(database)
    assert await migrate(database) == LATEST_VERSION
    assert await prepare_database(database) == LATEST_VERSION
    assert await schema_state(database) == before
    assert await SqlHistoryStore(database, session_id="s1").messages() == (Message.user("kept"),)


async def write_version_1_session(database: Database, session_id: str, turn: list[Message]) -> None:
    """A session and its messages as chatscope wrote them at schema version 1 (no owner)."""
    now = dt.datetime.now(dt.UTC)
    session = {"id": session_id, "created_at": now, "updated_at": now, "title": "t"}
    session |= {"provider": "demo", "model": "m", "message_count": len(turn), "turn_count": 1}
    rows = [
        {"session_id": session_id, "position": position, "turn": 1, "role": str(message.role)}
        | {"payload": encode_message(message), "usage": None}
        for position, message in enumerate(turn)
    ]

    def write(connection: Connection) -> None:
        connection.execute(insert(sessions_table).values(**session))
        connection.execute(insert(messages_table), rows)

    await database.write(write)


async def test_a_version_1_database_is_upgraded_with_its_data(backend: str, tmp_path: Path) -> None:
    """A database left at version 1 gains the later migrations and keeps every session, which
    then belongs to the local owner."""
    async with fresh_database(backend, tmp_path) as url:
        database = database_for(url)
        try:
            ensure_database_directory(database.url)
            assert await migrate(database, target=1) == 1
            versions, _, indexes = await schema_state(database)
            assert (versions, "ix_sessions_updated_at" in indexes) == ([1], False)
            turn = [Message.user("from version 1"), reply("still here")]
            await write_version_1_session(database, "s1", turn)
            assert await prepare_database(database) == LATEST_VERSION
            versions, _, indexes = await schema_state(database)
            assert await SqlHistoryStore(database, session_id="s1").messages() == tuple(turn)
            summary = await SessionCatalog(database).get("s1", owner="local")
        finally:
            await database.dispose()
    assert versions == list(range(1, LATEST_VERSION + 1))
    assert "ix_sessions_owner_updated_at" in indexes
    assert "ix_sessions_updated_at" not in indexes
    assert (summary.owner, summary.system_prompt, summary.title) == ("local", None, "t")


async def test_a_database_from_a_newer_chatscope_is_refused(database: Database) -> None:
    """A schema version above the latest known raises a clear error and changes nothing."""
    newer = insert(schema_version).values(
        version=LATEST_VERSION + 5, applied_at=dt.datetime.now(dt.UTC)
    )
    await database.write(lambda connection: connection.execute(newer))
    with pytest.raises(HistoryStoreError, match=rf"version {LATEST_VERSION + 5}, newer") as caught:
        await prepare_database(database)
    assert "upgrade chatscope" in str(caught.value)
    versions, _, _ = await schema_state(database)
    assert versions == [*range(1, LATEST_VERSION + 1), LATEST_VERSION + 5]


# --- many writers ---------------------------------------------------------------------------


async def start_writer(url: str, turns: int, sessions: list[str], cwd: Path) -> Process:
    """A history_writer process appending `turns` turns (0: until killed) to `sessions`."""
    return await asyncio.create_subprocess_exec(
        sys.executable, str(WRITER), url, str(turns), *sessions,
        cwd=cwd, stdout=PIPE, stderr=PIPE,
    )  # fmt: skip


async def run_writers(url: str, jobs: list[tuple[int, list[str]]], *, cwd: Path) -> list[str]:
    """Run one history_writer per job (turns, sessions) at the same time; the failures' stderr."""
    children = [await start_writer(url, turns, sessions, cwd) for turns, sessions in jobs]
    outputs = await asyncio.wait_for(
        asyncio.gather(*(child.communicate() for child in children)), timeout=120
    )
    return [
        err.decode() for child, (_, err) in zip(children, outputs, strict=True) if child.returncode
    ]


def assert_whole_turns(stored: tuple[StoredMessage, ...], session_id: str) -> list[int]:
    """Every stored turn is exactly one `turn_messages` turn; returns their numbers in order."""
    numbers = []
    for turn, items in groupby(stored, key=lambda item: item.turn):
        messages = [item.message for item in items]
        number = int(messages[0].text.rsplit(" ", 1)[1])
        assert messages == turn_messages(session_id, number), f"turn {turn} is not whole"
        numbers.append(number)
    return numbers


async def test_writer_processes_never_block_or_corrupt_each_other(
    backend: str, tmp_path: Path
) -> None:
    """Three processes start on a brand-new database at once (each migration is applied once),
    then write their own sessions and one shared session together: every turn lands whole."""
    async with fresh_database(backend, tmp_path) as url:
        jobs = [(12, [f"own{n}", "shared"]) for n in range(3)]
        assert await run_writers(url, jobs, cwd=tmp_path) == []
        database = database_for(url)
        try:
            versions, _, _ = await schema_state(database)
            catalog = SessionCatalog(database)
            owns = [await catalog.transcript(f"own{n}") for n in range(3)]
            shared = await catalog.transcript("shared")
            summary = await catalog.get("shared")
            rows = await stored_rows(database, "shared")
        finally:
            await database.dispose()
    assert versions == list(range(1, LATEST_VERSION + 1))
    for n, own in enumerate(owns):
        assert assert_whole_turns(own, f"own{n}") == list(range(1, 7))
    assert sorted(assert_whole_turns(shared, "shared")) == sorted(list(range(1, 7)) * 3)
    assert [position for position, _ in rows] == list(range(18 * 4))
    assert (summary.turn_count, summary.message_count) == (18, 72)


@settings(max_examples=8)
@given(writers=st.integers(min_value=2, max_value=6), turns=st.integers(min_value=1, max_value=4))
async def test_tasks_writing_one_session_at_once_lose_nothing(
    database: Database, writers: int, turns: int
) -> None:
    """Stores of one session appending concurrently: every turn is stored whole, in one place."""
    session_id = f"shared-{writers}-{turns}-{time.monotonic_ns()}"
    stores = [SqlHistoryStore(database, session_id=session_id) for _ in range(writers)]

    async def write(store: SqlHistoryStore) -> None:
        for n in range(1, turns + 1):
            await store.append_turn(turn_messages(session_id, n))

    await asyncio.gather(*(write(store) for store in stores))
    stored = await SessionCatalog(database).transcript(session_id)
    assert sorted(assert_whole_turns(stored, session_id)) == sorted(
        list(range(1, turns + 1)) * writers
    )
    rows = await stored_rows(database, session_id)
    assert [position for position, _ in rows] == list(range(4 * turns * writers))
    assert [turn for _, turn in rows] == sorted(turn for _, turn in rows)


async def test_a_held_write_lock_delays_writers_but_never_readers(tmp_path: Path) -> None:
    """SQLite in WAL mode: reads go on while another process holds the write lock; a writer
    waits for it (busy timeout) and then succeeds, instead of failing."""
    async with migrated_database("sqlite", tmp_path) as database:
        await SqlHistoryStore(database, session_id="s1").append_turn([Message.user("one")])
        other = sqlite3.connect(str(tmp_path / "data" / "chatscope.db"), isolation_level=None)
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE sessions SET title = 'locked' WHERE id = 's1'")
        started = time.perf_counter()
        assert await SqlHistoryStore(database, session_id="s1").messages() == (Message.user("one"),)
        read_seconds = time.perf_counter() - started
        writing = asyncio.create_task(
            SqlHistoryStore(database, session_id="s2").append_turn([Message.user("two")])
        )
        await asyncio.sleep(0.4)
        assert not writing.done()
        other.execute("COMMIT")
        other.close()
        await asyncio.wait_for(writing, timeout=10)
        assert (await SessionCatalog(database).get("s2")).message_count == 1
    assert read_seconds < 0.4


async def test_the_history_asked_while_a_turn_is_written_includes_that_turn(
    tmp_path: Path,
) -> None:
    """A store's `messages()` and `token_count()` wait for a turn it is writing (here held up
    by another process's write lock) and answer with that turn; asked between writes they
    answer at once, from what the store keeps."""
    async with migrated_database("sqlite", tmp_path) as database:
        store = SqlHistoryStore(database, session_id="s1")
        await store.append_turn([Message.user("one")], Usage(input_tokens=7, output_tokens=2))
        other = sqlite3.connect(str(tmp_path / "data" / "chatscope.db"), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        writing = asyncio.create_task(store.append_turn([Message.user("two"), reply("2")]))
        await asyncio.sleep(0.05)
        asked = asyncio.gather(store.messages(), store.token_count())
        await asyncio.sleep(0.2)
        assert not writing.done()
        assert not asked.done()
        other.execute("COMMIT")
        other.close()
        await asyncio.wait_for(writing, timeout=10)
        messages, tokens = await asyncio.wait_for(asked, timeout=10)
        assert messages == (Message.user("one"), Message.user("two"), reply("2"))
        assert tokens == 9 + estimate_tokens(messages[1:])
        assert await store.messages() == messages


# --- killed writers -------------------------------------------------------------------------


@pytest.mark.parametrize("committed_before_kill", [1, 12])
async def test_a_writer_killed_at_any_moment_leaves_only_whole_turns(
    backend: str, tmp_path: Path, committed_before_kill: int
) -> None:
    """`kill -9` of a process appending turns as fast as it can: every stored turn is whole,
    the counts match the rows, and nothing reported committed is missing."""
    async with fresh_database(backend, tmp_path) as url:
        child = await start_writer(url, 0, ["victim"], tmp_path)
        assert child.stdout is not None
        reported = 0
        while reported < committed_before_kill:
            line = await asyncio.wait_for(child.stdout.readline(), timeout=60)
            assert line, "the writer ended before it was killed"
            reported = int(line.split()[1])
        os.kill(child.pid, signal.SIGKILL)
        await child.communicate()
        assert child.returncode == -signal.SIGKILL
        database = database_for(url)
        try:
            await prepare_database(database)
            catalog = SessionCatalog(database)
            numbers = assert_whole_turns(await catalog.transcript("victim"), "victim")
            summary = await catalog.get("victim")
            rows = await stored_rows(database, "victim")
        finally:
            await database.dispose()
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) >= reported
    assert (summary.turn_count, summary.message_count) == (len(numbers), 4 * len(numbers))
    assert [position for position, _ in rows] == list(range(4 * len(numbers)))


# --- errors ---------------------------------------------------------------------------------


async def test_an_unreadable_stored_message_is_a_clear_error(database: Database) -> None:
    """A payload this chatscope cannot decode raises a `HistoryStoreError` naming the session."""
    await SqlHistoryStore(database, session_id="s1").append_turn([Message.user("one")])
    unreadable = update(messages_table).values(
        payload='{"role": "user", "blocks": [{"type": "x"}]}'
    )
    await database.write(lambda connection: connection.execute(unreadable))
    with pytest.raises(HistoryStoreError, match=r"reading session 's1': .*unknown block type 'x'"):
        await SqlHistoryStore(database, session_id="s1").messages()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "is not a database URL"),
        ("nosuchdb+nodriver://admin:hunter2secret@db.example/chat", "cannot be used"),
    ],
)
def test_an_unusable_database_url_is_a_configuration_error_without_its_password(
    tmp_path: Path, url: str, expected: str
) -> None:
    """A bad URL names the setting and never shows its password."""
    with pytest.raises(ConfigurationError, match=expected) as caught:
        open_database(data_dir=tmp_path, database_url=SecretStr(url))
    assert "CHATSCOPE_DATABASE_URL" in str(caught.value)
    assert "hunter2secret" not in str(caught.value)


async def test_an_unreachable_server_is_a_store_error_without_its_password(tmp_path: Path) -> None:
    """A PostgreSQL URL nobody answers fails at start-up with the URL's password hidden."""
    url = SecretStr("postgresql://chat:hunter2secret@127.0.0.1:9/chat")
    database = open_database(data_dir=tmp_path, database_url=url)
    try:
        with pytest.raises(HistoryStoreError) as caught:
            await prepare_database(database)
    finally:
        await database.dispose()
    assert "127.0.0.1:9" in str(caught.value)
    assert "hunter2secret" not in str(caught.value)


async def test_a_data_dir_that_cannot_be_created_is_a_configuration_error(tmp_path: Path) -> None:
    """A data directory below a regular file fails with the setting named, before any write."""
    (tmp_path / "a-file").write_text("not a directory")
    database = open_database(data_dir=tmp_path / "a-file" / "data", database_url=None)
    try:
        with pytest.raises(ConfigurationError, match="CHATSCOPE_DATA_DIR"):
            await prepare_database(database)
    finally:
        await database.dispose()


async def test_the_store_refuses_sessions_of_a_database_that_was_never_migrated(
    tmp_path: Path,
) -> None:
    """Without the start-up migration the store fails with a typed error, not a driver one."""
    database = open_database(data_dir=tmp_path, database_url=None)
    try:
        with pytest.raises(HistoryStoreError, match="reading session 's1'"):
            await SqlHistoryStore(database, session_id="s1").messages()
        query = text("SELECT name FROM sqlite_master")
        tables = await database.read(lambda connection: connection.execute(query).all())
    finally:
        await database.dispose()
    assert tables == []


async def test_sessions_table_is_what_the_summary_reads(database: Database) -> None:
    """The summary's counts are the row's, kept in step with the messages by every write."""
    store = SqlHistoryStore(database, session_id="s1")
    await store.append_turn([Message.user("a"), reply("b")])
    await store.replace([Message.user("only")])
    query = select(sessions_table).where(sessions_table.c.id == "s1")
    row = await database.read(lambda connection: connection.execute(query).one())
    assert (row.message_count, row.turn_count) == (1, 1)
    assert await stored_rows(database, "s1") == [(0, 1)]
