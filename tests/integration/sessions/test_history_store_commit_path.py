"""What the SQL history store writes, column by column: turn numbers after a rewrite, the
stored role, the session's label, title and timestamps, and the retry of a colliding create.

The round-trip properties elsewhere read messages back; these read the rows and the session
summary a rewrite or a later writer leaves behind, which a reload alone would not show.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from chatscope.adapters.storage import sql_history
from chatscope.adapters.storage.catalog import SessionCatalog
from chatscope.adapters.storage.database import Database
from chatscope.adapters.storage.schema import messages_table
from chatscope.adapters.storage.sql_history import TITLE_LENGTH, SqlHistoryStore, session_title
from chatscope.services.messages import Message, Role
from chatscope.services.runtime.state import new_id
from tests.support.databases import database_for, migrated_database
from tests.support.histories import messy_histories, reply, user, well_paired_histories

histories = well_paired_histories(max_turns=6) | messy_histories()


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh, migrated SQLite database."""
    async with migrated_database("sqlite", tmp_path) as database:
        yield database


def reference_turns(messages: Sequence[Message]) -> list[int]:
    """A turn starts at each user message; anything before the first belongs to turn 1."""
    turn, numbers = 0, []
    for message in messages:
        turn += message.role is Role.USER
        numbers.append(max(turn, 1))
    return numbers


async def _rows(database: Database, session_id: str) -> list[tuple[int, str]]:
    query = (
        select(messages_table.c.turn, messages_table.c.role)
        .where(messages_table.c.session_id == session_id)
        .order_by(messages_table.c.position)
    )

    def read(connection: Connection) -> list[tuple[int, str]]:
        return [(int(turn), str(role)) for turn, role in connection.execute(query).all()]

    return await database.read(read)


@settings(max_examples=25)
@given(first=st.integers(min_value=0, max_value=3), rewritten=histories)
async def test_a_rewrite_renumbers_turns_and_keeps_the_turn_count(
    database: Database, first: int, rewritten: tuple[Message, ...]
) -> None:
    """After `replace`, each row's turn follows the new messages; the session's turn count
    never goes down and grows to the rewrite's own count."""
    session_id = new_id()
    store = SqlHistoryStore(database, session_id=session_id)
    for index in range(first):
        await store.append_turn([user(f"q{index}"), reply(f"a{index}")])
    await store.replace(rewritten)
    rows = await _rows(database, session_id)
    assert [turn for turn, _ in rows] == reference_turns(rewritten)
    assert [role for _, role in rows] == [str(message.role) for message in rewritten]
    summary = await SessionCatalog(database).find(session_id)
    if first == 0 and not rewritten:
        assert summary is None
        return
    assert summary is not None
    assert summary.message_count == len(rewritten)
    assert summary.turn_count == max([first, *reference_turns(rewritten)])


@settings(max_examples=15)
@given(turns=st.lists(histories.filter(bool), min_size=1, max_size=3))
async def test_each_appended_row_stores_its_role(
    database: Database, turns: list[tuple[Message, ...]]
) -> None:
    """The role column of every stored row is its message's role."""
    session_id = new_id()
    store = SqlHistoryStore(database, session_id=session_id)
    for turn in turns:
        await store.append_turn(turn)
    expected = [str(message.role) for turn in turns for message in turn]
    assert [role for _, role in await _rows(database, session_id)] == expected


async def test_a_later_writer_relabels_the_session(database: Database) -> None:
    """The provider and model shown for a session are those of its latest writer."""
    session_id = new_id()
    first = SqlHistoryStore(database, session_id=session_id, provider="openai", model="m-1")
    await first.append_turn([user("q1"), reply("a1")])
    second = SqlHistoryStore(database, session_id=session_id)
    second.label(provider="anthropic", model="m-2")
    await second.append_turn([user("q2"), reply("a2")])
    summary = await SessionCatalog(database).get(session_id)
    assert (summary.provider, summary.model) == ("anthropic", "m-2")


async def test_a_rewrite_records_the_label_of_the_store_that_made_it(database: Database) -> None:
    """A history replaced (compressed, say) by a store of another provider and model shows
    that provider and model, as a turn it appended would."""
    session_id = new_id()
    first = SqlHistoryStore(database, session_id=session_id, provider="openai", model="m-1")
    await first.append_turn([user("q1"), reply("a1")])
    second = SqlHistoryStore(database, session_id=session_id, provider="anthropic", model="m-2")
    await second.replace([user("summary"), reply("noted")])
    summary = await SessionCatalog(database).get(session_id)
    assert (summary.provider, summary.model) == ("anthropic", "m-2")


@pytest.mark.parametrize(("provider", "model"), [("openai", None), (None, "gpt-4o"), (None, None)])
async def test_a_half_label_is_not_recorded(
    database: Database, provider: str | None, model: str | None
) -> None:
    """A store opened with only a provider or only a model labels the session with neither."""
    session_id = new_id()
    store = SqlHistoryStore(database, session_id=session_id, provider=provider, model=model)
    await store.append_turn([user("q"), reply("a")])
    summary = await SessionCatalog(database).get(session_id)
    assert (summary.provider, summary.model) == (None, None)


@given(first=histories, second=histories)
@settings(max_examples=15)
async def test_after_a_rewrite_the_history_is_read_without_a_query(
    database: Database, first: tuple[Message, ...], second: tuple[Message, ...]
) -> None:
    """The store keeps what it wrote: after `replace`, reading costs no database round trip."""
    store = SqlHistoryStore(database, session_id=new_id())
    if first:
        await store.append_turn(first)
    await store.replace(second)
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(database.sync_engine, "before_cursor_execute", record)
    try:
        assert await store.messages() == second
        await store.token_count()
    finally:
        event.remove(database.sync_engine, "before_cursor_execute", record)
    assert statements == []


async def test_a_rewrite_moves_the_update_time(database: Database) -> None:
    """`replace` is a write like any other: the session's update time moves forward."""
    session_id = new_id()
    store = SqlHistoryStore(database, session_id=session_id)
    await store.append_turn([user("q"), reply("a")])
    before = (await SessionCatalog(database).get(session_id)).updated_at
    await asyncio.sleep(0.01)
    await store.replace([user("summary"), reply("ok")])
    assert (await SessionCatalog(database).get(session_id)).updated_at > before


_title_characters = st.characters(categories=("L", "N", "P", "Zs"))
# Short prompts, and prompts sure to pass TITLE_LENGTH (plain text rarely draws that long).
printable = st.text(alphabet=_title_characters, max_size=40) | st.text(
    alphabet=_title_characters, min_size=2 * TITLE_LENGTH, max_size=3 * TITLE_LENGTH
)


@given(prompt=printable, greeting=st.booleans())
@example(prompt="x" * TITLE_LENGTH, greeting=False)  # exactly the limit: kept whole
@example(prompt="x" * (TITLE_LENGTH + 1), greeting=True)  # one over: cut
def test_the_title_is_the_first_prompt_on_one_line_cut_to_length(
    prompt: str, greeting: bool
) -> None:
    """Whitespace collapsed; longer than TITLE_LENGTH: cut to TITLE_LENGTH - 1 plus an ellipsis;
    no prompt text at all: an empty title."""
    messages = ([reply("hello")] if greeting else []) + [user(prompt), user("second")]
    line = " ".join(prompt.split())
    title = session_title(messages)
    if not line:
        assert title == "second"
    elif len(line) <= TITLE_LENGTH:
        assert title == line
    else:
        assert title == line[: TITLE_LENGTH - 1] + "…"
        assert len(title) == TITLE_LENGTH


@given(blank=st.text(alphabet=" \t\n\r", max_size=5))
def test_no_prompt_text_means_no_title(blank: str) -> None:
    """Only blank prompts, or none: the title is empty."""
    assert session_title([reply("hello"), user(blank)]) == ""
    assert session_title([]) == ""


@given(collisions=st.integers(min_value=0, max_value=6))
async def test_a_colliding_create_is_retried_a_bounded_number_of_times(
    tmp_path: Path, collisions: int
) -> None:
    """A write refused as a duplicate create is tried again, up to the attempt limit, then the
    refusal is raised; other outcomes pass through at once."""
    calls = 0

    def write(connection: Connection) -> None:
        nonlocal calls
        calls += 1
        if calls <= collisions:
            raise IntegrityError("INSERT INTO sessions", {}, Exception("duplicate key"))

    limit = sql_history._WRITE_ATTEMPTS
    database = database_for(f"sqlite:///{tmp_path / 'retries.db'}")  # no table is touched
    try:
        if collisions < limit:
            await sql_history._retrying_creation(database, write)
            assert calls == collisions + 1
        else:
            with pytest.raises(IntegrityError):
                await sql_history._retrying_creation(database, write)
            assert calls == limit
    finally:
        await database.dispose()


async def test_a_session_deleted_while_open_is_saved_again_from_its_next_turn(
    database: Database,
) -> None:
    """Deleted by someone else while a store has it open, the session is created again by the
    store's next turn: that turn is its first, stored from position 0."""
    session_id, catalog = new_id(), SessionCatalog(database)
    store = SqlHistoryStore(database, session_id=session_id)
    await store.append_turn([user("one"), reply("1")])
    await catalog.delete(session_id)
    await store.append_turn([user("two"), reply("2")])
    summary = await catalog.get(session_id)
    assert (summary.turn_count, summary.message_count, summary.title) == (1, 2, "two")
    assert await _rows(database, session_id) == [(1, "user"), (1, "assistant")]
    transcript = await catalog.transcript(session_id)
    assert [item.message for item in transcript] == [user("two"), reply("2")]
