"""Properties of saved sessions: a lossless codec, and a database store that behaves like memory.

The store tests run on SQLite, and on PostgreSQL too when `CHATSCOPE_TEST_DATABASE_URL` is set
(see tests/support/databases.py).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from chatscope.adapters.storage.catalog import SessionCatalog
from chatscope.adapters.storage.codec import (
    decode_message,
    decode_usage,
    encode_message,
    encode_usage,
    message_from_dict,
    message_to_dict,
)
from chatscope.adapters.storage.database import Database
from chatscope.adapters.storage.engine import ensure_database_directory
from chatscope.adapters.storage.schema import (
    LATEST_VERSION,
    SESSION_ID_LENGTH,
    migrate,
    prepare_database,
    schema_version,
)
from chatscope.adapters.storage.sql_history import TITLE_LENGTH, SqlHistoryStore, session_title
from chatscope.errors import UnknownSessionError
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.messages import Message, Role, Usage
from tests.support.databases import (
    DATABASE_BACKENDS,
    database_for,
    fresh_database,
    migrated_database,
)
from tests.support.message_strategies import messages, turns, usages


@pytest.fixture(params=DATABASE_BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database shared by the examples of one test; each example uses new sessions."""
    async with migrated_database(request.param, tmp_path) as database:
        yield database


def new_session_id() -> str:
    """A session id no other example uses."""
    return uuid.uuid4().hex


@given(message=messages)
def test_a_message_survives_the_codec_unchanged(message: Message) -> None:
    """Decoding an encoded message gives an equal message, and encoding it again the same text."""
    encoded = encode_message(message)
    decoded = decode_message(encoded)
    assert decoded == message
    assert encode_message(decoded) == encoded


@given(message=messages)
def test_the_dict_form_is_plain_json(message: Message) -> None:
    """`message_to_dict` gives plain JSON data that reads back to the same message."""
    data = json.loads(json.dumps(message_to_dict(message)))
    assert message_from_dict(data) == message
    assert message_to_dict(message_from_dict(data)) == data


@given(usage=usages)
def test_usage_survives_the_codec(usage: Usage) -> None:
    """Usage decodes to what was encoded."""
    assert decode_usage(encode_usage(usage)) == usage


@given(conversation=st.lists(messages, max_size=4))
def test_a_title_is_one_short_printable_line(conversation: list[Message]) -> None:
    """Whatever the conversation, a title is printable, single-spaced and within the limit."""
    title = session_title(conversation)
    assert len(title) <= TITLE_LENGTH
    assert title.isprintable()
    assert title.split(" ") == title.split() or not title


@given(prompt=st.text(max_size=300).filter(str.isprintable), rest=st.lists(messages, max_size=2))
def test_a_title_starts_the_first_prompt(prompt: str, rest: list[Message]) -> None:
    """The title is the first prompt with visible text, whitespace collapsed, cut with `…`."""
    title = session_title([Message.user(prompt), *rest])
    line = " ".join(prompt.split())
    if not line:
        assert title == session_title(rest)
    else:
        assert title == line or (title.endswith("…") and line.startswith(title[:-1]))


operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), turns, st.none() | usages),
        st.tuples(st.just("replace"), st.lists(messages, max_size=5), st.none()),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=25)
@given(steps=operations)
async def test_the_store_behaves_like_the_memory_history_and_survives_reopening(
    database: Database, steps: list[tuple[str, list[Message], Usage | None]]
) -> None:
    """After every append or replace, the store, a freshly opened store of the same session
    and `InMemoryHistory` agree on the messages and the token count."""
    session_id = new_session_id()
    store, model = SqlHistoryStore(database, session_id=session_id), InMemoryHistory()
    for action, items, usage in steps:
        if action == "append":
            await store.append_turn(items, usage)
            await model.append_turn(items, usage)
        else:
            await store.replace(items)
            await model.replace(items)
        reopened = SqlHistoryStore(database, session_id=session_id)
        expected = (await model.messages(), await model.token_count())
        assert (await store.messages(), await store.token_count()) == expected
        assert (await reopened.messages(), await reopened.token_count()) == expected


@settings(max_examples=20)
@given(appended=st.lists(turns, min_size=1, max_size=5))
async def test_each_turn_is_stored_whole_with_its_number(
    database: Database, appended: list[list[Message]]
) -> None:
    """The transcript numbers turns 1..n in order, each holding exactly the messages appended."""
    session_id = new_session_id()
    store = SqlHistoryStore(database, session_id=session_id)
    for turn in appended:
        await store.append_turn(turn)
    catalog = SessionCatalog(database)
    stored = await catalog.transcript(session_id)
    by_turn = [
        [item.message for item in stored if item.turn == n + 1] for n in range(len(appended))
    ]
    assert by_turn == appended
    assert len(stored) == sum(len(turn) for turn in appended)
    summary = await catalog.get(session_id)
    assert (summary.turn_count, summary.message_count) == (len(appended), len(stored))
    assert summary.title == session_title(appended[0])


@settings(max_examples=15)
@given(
    before=st.lists(turns, max_size=3),
    replacement=st.lists(messages, min_size=1, max_size=5),
    after=st.lists(turns, min_size=1, max_size=3),
)
async def test_turn_numbers_never_go_back_after_a_replace(
    database: Database,
    before: list[list[Message]],
    replacement: list[Message],
    after: list[list[Message]],
) -> None:
    """Replacing the history keeps turn numbers non-decreasing and the turn count growing."""
    session_id = new_session_id()
    store = SqlHistoryStore(database, session_id=session_id)
    for turn in before:
        await store.append_turn(turn)
    await store.replace(replacement)
    for turn in after:
        await store.append_turn(turn)
    catalog = SessionCatalog(database)
    numbers = [item.turn for item in await catalog.transcript(session_id)]
    assert numbers == sorted(numbers)
    summary = await catalog.get(session_id)
    assert summary.turn_count == max(numbers)
    assert summary.turn_count >= len(before) + len(after)
    replaced_users = sum(message.role is Role.USER for message in replacement)
    assert summary.turn_count >= replaced_users


@settings(max_examples=10)
@given(script=st.lists(st.lists(turns, min_size=1, max_size=4), min_size=2, max_size=5))
async def test_concurrent_chats_each_keep_exactly_their_own_turns(
    database: Database, script: list[list[list[Message]]]
) -> None:
    """Sessions written at the same time by concurrent tasks never mix or lose a turn."""
    ids = [new_session_id() for _ in script]

    async def chat(session_id: str, own: list[list[Message]]) -> None:
        store = SqlHistoryStore(database, session_id=session_id)
        for turn in own:
            await store.append_turn(turn)
            await asyncio.sleep(0)

    await asyncio.gather(*(chat(i, own) for i, own in zip(ids, script, strict=True)))
    for session_id, own in zip(ids, script, strict=True):
        stored = await SqlHistoryStore(database, session_id=session_id).messages()
        assert stored == tuple(message for turn in own for message in turn)


# Room for the per-example suffix (33 characters) within the column's length.
session_ids = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\0"),
    min_size=1,
    max_size=SESSION_ID_LENGTH - 33,
)


@settings(max_examples=20)
@given(ids=st.lists(session_ids, min_size=2, max_size=4, unique=True), prompt=st.text(max_size=20))
async def test_any_session_id_names_exactly_its_own_session(
    database: Database, ids: list[str], prompt: str
) -> None:
    """Ids with quotes, wildcards or any script address their own session and no other."""
    example = new_session_id()  # keeps examples apart; the generated part keeps ids apart
    for index, session_id in enumerate(ids):
        await SqlHistoryStore(database, session_id=f"{session_id}{example}{index}").append_turn(
            [Message.user(f"{prompt} {index}")]
        )
    catalog = SessionCatalog(database)
    for index, session_id in enumerate(ids):
        full_id = f"{session_id}{example}{index}"
        stored = await SqlHistoryStore(database, session_id=full_id).messages()
        assert stored == (Message.user(f"{prompt} {index}"),)
        assert (await catalog.get(full_id)).id == full_id


@settings(max_examples=15)
@given(keep=st.lists(st.booleans(), min_size=1, max_size=6))
async def test_deleting_sessions_removes_exactly_those(
    database: Database, keep: list[bool]
) -> None:
    """After deleting some sessions the catalog lists exactly the others, their turns intact."""
    catalog = SessionCatalog(database)
    before = {summary.id for summary in await catalog.list_sessions()}
    ids = [new_session_id() for _ in keep]
    for session_id in ids:
        await SqlHistoryStore(database, session_id=session_id).append_turn(
            [Message.user(session_id)]
        )
    for session_id, kept in zip(ids, keep, strict=True):
        if not kept:
            await catalog.delete(session_id)
    listed = {summary.id for summary in await catalog.list_sessions()} - before
    assert listed == {session_id for session_id, kept in zip(ids, keep, strict=True) if kept}
    for session_id in ids:
        expected = (Message.user(session_id),) if session_id in listed else ()
        assert await SqlHistoryStore(database, session_id=session_id).messages() == expected
        if session_id in listed:
            await catalog.delete(session_id)


owners = st.sampled_from(["acme", "globex", "local", "initech"])


@settings(max_examples=15)
@given(script=st.lists(st.tuples(owners, st.integers(0, 3), st.text(max_size=8)), max_size=12))
async def test_each_owner_reads_and_writes_only_its_own_sessions(
    database: Database, script: list[tuple[str, int, str]]
) -> None:
    """Owners writing to a few session ids in any order: the first writer of an id owns it,
    every later writer of another owner is refused, and each owner lists and reads exactly
    the turns it wrote to the sessions it owns."""
    example = new_session_id()
    owner_of: dict[str, str] = {}
    written: dict[str, list[Message]] = {}
    for owner, slot, text in script:
        session_id = f"{example}-{slot}"
        store = SqlHistoryStore(database, session_id=session_id, owner=owner)
        if owner_of.setdefault(session_id, owner) == owner:
            await store.append_turn([Message.user(text)])
            written.setdefault(session_id, []).append(Message.user(text))
        else:
            with pytest.raises(UnknownSessionError):
                await store.append_turn([Message.user(text)])
            assert await store.messages() == ()
    catalog = SessionCatalog(database)
    for owner in ("acme", "globex", "local", "initech"):
        listed = {s.id for s in await catalog.list_sessions(owner) if s.id.startswith(example)}
        assert listed == {sid for sid, who in owner_of.items() if who == owner}
        for session_id in listed:
            stored = await SqlHistoryStore(database, session_id=session_id, owner=owner).messages()
            assert stored == tuple(written[session_id])


@settings(max_examples=6)
@given(start=st.integers(min_value=0, max_value=LATEST_VERSION), twice=st.booleans())
async def test_any_version_upgrades_to_the_same_schema_as_a_fresh_database(
    tmp_path: Path, start: int, twice: bool
) -> None:
    """Migrating from any earlier version (again or not) gives the schema a fresh start gives."""
    async with fresh_database("sqlite", tmp_path / new_session_id()) as url:
        database = database_for(url)
        try:
            ensure_database_directory(database.url)
            if start:
                await migrate(database, target=start)
            await prepare_database(database)
            if twice:
                await prepare_database(database)
            upgraded = await database_schema(database)
        finally:
            await database.dispose()
    async with migrated_database("sqlite", tmp_path / new_session_id()) as fresh:
        assert upgraded == await database_schema(fresh)


async def database_schema(database: Database) -> list[tuple[str, ...]]:
    """Every table's columns and indexes, and the applied versions."""

    def read(connection: Connection) -> list[tuple[str, ...]]:
        inspector = inspect(connection)
        schema = []
        for table in sorted(inspector.get_table_names()):
            columns = tuple(str(column["name"]) for column in inspector.get_columns(table))
            indexes = tuple(sorted(str(index["name"]) for index in inspector.get_indexes(table)))
            schema.append((table, *columns, "|", *indexes))
        versions = connection.execute(select(schema_version.c.version).order_by("version"))
        return [*schema, tuple(str(version) for version in versions.scalars())]

    return await database.read(read)
