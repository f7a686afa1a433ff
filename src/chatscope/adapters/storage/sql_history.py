"""Saved sessions: the `HistoryStore` of one session in the database, and the session catalogue.

A session is a row of `sessions` and its messages are rows of `messages`, numbered by position.
Each completed turn is written in one transaction, so a process killed mid-turn leaves every
earlier turn and nothing of its own; `replace` swaps the whole history in one transaction too.

Every session has an owner (a tenant of the server; `LOCAL_OWNER` for the CLI). A store reads
and writes only sessions of its own owner: another owner's session reads as empty and refuses
every write with `UnknownSessionError`, as a session that does not exist would. The catalogue's
methods take the same owner as a filter.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, case, delete, insert, select, true, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chatscope.adapters.storage.codec import (
    MessageCodecError,
    decode_message,
    decode_usage,
    encode_message,
    encode_usage,
)
from chatscope.adapters.storage.engine import describe_database_error, write_transaction
from chatscope.adapters.storage.schema import LOCAL_OWNER, messages_table, sessions_table
from chatscope.errors import HistoryStoreError, UnknownSessionError
from chatscope.services.messages import Message, Role, Usage, estimate_tokens

__all__ = [
    "TITLE_LENGTH",
    "SessionCatalog",
    "SessionSummary",
    "SqlHistoryStore",
    "StoredMessage",
    "session_title",
]

TITLE_LENGTH = 80
_WRITE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One saved session as `chatscope sessions list` shows it; `system_prompt` is the one it
    was created with (through the server), if any."""

    id: str
    created_at: dt.datetime
    updated_at: dt.datetime
    provider: str | None
    model: str | None
    title: str
    message_count: int
    turn_count: int
    owner: str = LOCAL_OWNER
    system_prompt: str | None = None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A stored message with the turn it belongs to and, on a turn's last message, its usage."""

    turn: int
    message: Message
    usage: Usage | None


@dataclass(frozen=True, slots=True)
class _View:
    """What a store has loaded: the messages and the API-measured size of a prefix of them."""

    messages: tuple[Message, ...] = ()
    measured_tokens: int = 0
    measured_upto: int = 0

    @classmethod
    def of(cls, stored: Sequence[StoredMessage]) -> _View:
        measured = _View(tuple(item.message for item in stored))
        for index, item in enumerate(stored):
            if item.usage is not None and item.usage.total_tokens:
                measured = _View(measured.messages, item.usage.total_tokens, index + 1)
        return measured

    def appended(self, turn: tuple[Message, ...], usage: Usage | None) -> _View:
        messages = (*self.messages, *turn)
        if usage is not None and usage.total_tokens:
            return _View(messages, usage.total_tokens, len(messages))
        return _View(messages, self.measured_tokens, self.measured_upto)

    def token_count(self) -> int:
        return self.measured_tokens + estimate_tokens(self.messages[self.measured_upto :])


class SqlHistoryStore:
    """The history of one saved session, behind the `HistoryStore` port.

    Opening is free: the session is read on first use and created by its first turn. The store
    keeps what it read and wrote, so `messages()` costs no query after the first; it expects to
    be the session's only writer at a time, while other sessions may be written concurrently
    by any number of stores and processes. Token accounting is that of `InMemoryHistory`, and
    survives a reload because a turn's usage is stored with its last message.

    `owner` is whose session this is (default `LOCAL_OWNER`): a session of another owner reads
    as empty and cannot be written (`UnknownSessionError`); a new session gets this owner.
    """

    __slots__ = ("_engine", "_label", "_lock", "_owner", "_view", "session_id")

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        session_id: str,
        provider: str | None = None,
        model: str | None = None,
        owner: str | None = None,
    ) -> None:
        self._engine = engine
        self.session_id = session_id
        self._owner = owner or LOCAL_OWNER
        self._view: _View | None = None
        self._label: dict[str, str] = {}
        if provider and model:
            self.label(provider=provider, model=model)
        self._lock = asyncio.Lock()

    def label(self, *, provider: str, model: str) -> None:
        """Record which provider and model continue this session; saved with the next write."""
        self._label = {"provider": provider, "model": model}

    async def messages(self) -> tuple[Message, ...]:
        """Every stored message, oldest first."""
        async with self._lock:
            return (await self._loaded()).messages

    async def token_count(self) -> int:
        """Tokens the history costs: API-reported where known, estimated otherwise."""
        async with self._lock:
            return (await self._loaded()).token_count()

    async def append_turn(self, messages: Sequence[Message], usage: Usage | None = None) -> None:
        """Store one completed turn in one transaction; an empty turn stores nothing."""
        turn = tuple(messages)
        if not turn:
            return
        async with self._lock:
            view = await self._loaded()
            async with self._failures("saving a turn of"):
                await _retrying_creation(lambda: self._write_turn(turn, usage))
            self._view = view.appended(turn, usage)

    async def replace(self, messages: Sequence[Message]) -> None:
        """Replace the whole stored history in one transaction."""
        new = tuple(messages)
        async with self._lock, self._failures("replacing the history of"):
            await _retrying_creation(lambda: self._write_replacement(new))
            self._view = _View(new)

    async def _loaded(self) -> _View:
        if self._view is None:
            async with self._failures("reading"):
                stored = await _read_messages(self._engine, self.session_id, self._owner)
                self._view = _View.of(stored)
        return self._view

    async def _write_turn(self, turn: tuple[Message, ...], usage: Usage | None) -> None:
        now = _now()
        async with write_transaction(self._engine) as connection:
            counts = await self._bump(
                connection,
                updated_at=now,
                message_count=sessions_table.c.message_count + len(turn),
                turn_count=sessions_table.c.turn_count + 1,
                # A session created empty (through the server) is titled by its first turn.
                title=case(
                    (sessions_table.c.turn_count == 0, session_title(turn)),
                    else_=sessions_table.c.title,
                ),
            )
            if counts is None:
                await self._create(connection, now, turn, turn_count=1)
                counts = (len(turn), 1)
            first, turn_number = counts[0] - len(turn), counts[1]
            rows = [_row(self.session_id, first + i, turn_number, m) for i, m in enumerate(turn)]
            if usage is not None:
                rows[-1]["usage"] = encode_usage(usage)
            await connection.execute(insert(messages_table), rows)

    async def _write_replacement(self, new: tuple[Message, ...]) -> None:
        now, turns = _now(), _turn_numbers(new)
        async with write_transaction(self._engine) as connection:
            counts = await self._bump(connection, updated_at=now, message_count=len(new))
            if counts is None and not new:
                return
            if counts is None:
                await self._create(connection, now, new, turn_count=max(turns))
            elif max(turns, default=0) > counts[1]:
                await self._bump(connection, turn_count=max(turns))
            where = messages_table.c.session_id == self.session_id
            await connection.execute(delete(messages_table).where(where))
            numbered = enumerate(zip(turns, new, strict=True))
            rows = [_row(self.session_id, i, turn, message) for i, (turn, message) in numbered]
            if rows:
                await connection.execute(insert(messages_table), rows)

    async def _bump(self, connection: AsyncConnection, **values: Any) -> tuple[int, int] | None:
        """Update the session row, locking it: its new (messages, turns) counts; None if new."""
        statement = (
            update(sessions_table)
            .where(_owned(self.session_id, self._owner))
            .values(**values, **self._label)
            .returning(sessions_table.c.message_count, sessions_table.c.turn_count)
        )
        row = (await connection.execute(statement)).first()
        return None if row is None else (int(row[0]), int(row[1]))

    async def _create(
        self,
        connection: AsyncConnection,
        now: dt.datetime,
        messages: tuple[Message, ...],
        *,
        turn_count: int,
    ) -> None:
        """Insert the session row; `UnknownSessionError` if another owner has this id. (A row
        of this owner's, created meanwhile by another writer, makes the insert collide, and
        `_retrying_creation` appends to it.)"""
        owner = select(sessions_table.c.owner).where(sessions_table.c.id == self.session_id)
        found = (await connection.execute(owner)).first()
        if found is not None and found.owner != self._owner:
            raise UnknownSessionError(self.session_id)
        values = {"provider": None, "model": None, **self._label}
        await connection.execute(
            insert(sessions_table).values(
                id=self.session_id,
                created_at=now,
                updated_at=now,
                title=session_title(messages),
                message_count=len(messages),
                turn_count=turn_count,
                owner=self._owner,
                **values,
            )
        )

    def _failures(self, action: str) -> AbstractAsyncContextManager[None]:
        return _database_failures(f"{action} session {self.session_id!r}")


class SessionCatalog:
    """Lists, creates, reads and deletes saved sessions (the `chatscope sessions` commands and the
    server's session endpoints).

    Every method takes an optional `owner`: given, only that owner's sessions exist for it (the
    server passes the calling tenant); None means every session.
    """

    __slots__ = ("_engine",)

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def list_sessions(self, owner: str | None = None) -> tuple[SessionSummary, ...]:
        """Every saved session (of `owner`), the most recently updated first."""
        order = (sessions_table.c.updated_at.desc(), sessions_table.c.id)
        query = select(sessions_table).where(_owner_is(owner)).order_by(*order)
        async with _database_failures("listing sessions"), self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return tuple(_summary(row) for row in rows)

    async def find(self, session_id: str, owner: str | None = None) -> SessionSummary | None:
        """The session `session_id` (of `owner`), or None if no such session is saved."""
        query = select(sessions_table).where(_owned(session_id, owner))
        async with _database_failures("reading sessions"), self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _summary(row)

    async def get(self, session_id: str, owner: str | None = None) -> SessionSummary:
        """The session `session_id` (of `owner`); `UnknownSessionError` if there is none."""
        found = await self.find(session_id, owner)
        if found is None:
            raise UnknownSessionError(session_id)
        return found

    async def create(
        self,
        session_id: str,
        *,
        owner: str = LOCAL_OWNER,
        provider: str | None = None,
        model: str | None = None,
        system_prompt: str | None = None,
    ) -> SessionSummary:
        """Save a new, empty session (no turns, no title yet); its first turn titles it."""
        now = _now()
        row = {"id": session_id, "created_at": now, "updated_at": now, "title": ""}
        row |= {"provider": provider, "model": model, "owner": owner}
        row |= {"system_prompt": system_prompt, "message_count": 0, "turn_count": 0}
        failures = _database_failures(f"creating session {session_id!r}")
        async with failures, write_transaction(self._engine) as connection:
            await connection.execute(insert(sessions_table).values(**row))
        return await self.get(session_id, owner)

    async def transcript(
        self, session_id: str, owner: str | None = None
    ) -> tuple[StoredMessage, ...]:
        """The stored messages of `session_id` (of `owner`) with their turns and usage, oldest
        first."""
        async with _database_failures(f"reading session {session_id!r}"):
            return await _read_messages(self._engine, session_id, owner)

    async def delete(self, session_id: str, owner: str | None = None) -> None:
        """Delete a session (of `owner`) and its messages in one transaction;
        `UnknownSessionError` if there is none."""
        owned = select(sessions_table.c.id).where(_owned(session_id, owner))
        async with _database_failures(f"deleting session {session_id!r}"):
            async with write_transaction(self._engine) as connection:
                where = messages_table.c.session_id.in_(owned)
                await connection.execute(delete(messages_table).where(where))
                deleted = await connection.execute(
                    delete(sessions_table).where(_owned(session_id, owner))
                )
            if deleted.rowcount == 0:
                raise UnknownSessionError(session_id)


def session_title(messages: Sequence[Message]) -> str:
    """The first prompt with visible text, on one line of printable characters, cut to
    `TITLE_LENGTH` characters."""
    for message in messages:
        if message.role is Role.USER:
            printable = "".join(c if c.isprintable() else " " for c in message.text)
            line = " ".join(printable.split())
            if line:
                return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"
    return ""


def _owner_is(owner: str | None) -> ColumnElement[bool]:
    return true() if owner is None else sessions_table.c.owner == owner


def _owned(session_id: str, owner: str | None) -> ColumnElement[bool]:
    """The session row `session_id`, if `owner` (None: anyone) owns it."""
    return (sessions_table.c.id == session_id) & _owner_is(owner)


async def _read_messages(
    engine: AsyncEngine, session_id: str, owner: str | None
) -> tuple[StoredMessage, ...]:
    columns = (messages_table.c.turn, messages_table.c.payload, messages_table.c.usage)
    query = select(*columns).where(messages_table.c.session_id == session_id)
    if owner is not None:
        owned = select(sessions_table.c.id).where(_owned(session_id, owner))
        query = query.where(messages_table.c.session_id.in_(owned))
    query = query.order_by(messages_table.c.position)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return tuple(
        StoredMessage(turn, decode_message(payload), decode_usage(usage) if usage else None)
        for turn, payload, usage in rows
    )


async def _retrying_creation(write: Callable[[], Awaitable[None]]) -> None:
    """Run a write transaction, again if it collided with another writer creating the session.

    Two writers may both find no session row and both insert one; the database lets one commit
    and refuses the other (on SQLite the write lock already prevents this). The retry then finds
    the row, locks it, and appends after the winner's turn.
    """
    for attempt in range(1, _WRITE_ATTEMPTS + 1):
        try:
            await write()
            return
        except IntegrityError:
            if attempt == _WRITE_ATTEMPTS:
                raise


def _row(session_id: str, position: int, turn: int, message: Message) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "position": position,
        "turn": turn,
        "role": str(message.role),
        "payload": encode_message(message),
        "usage": None,
    }


def _turn_numbers(messages: Sequence[Message]) -> list[int]:
    """A turn starts at each user message; anything before the first belongs to turn 1."""
    numbers, turn = [], 0
    for message in messages:
        turn += message.role is Role.USER
        numbers.append(max(turn, 1))
    return numbers


def _summary(row: Row[Any]) -> SessionSummary:
    return SessionSummary(
        id=row.id,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
        provider=row.provider,
        model=row.model,
        title=row.title,
        message_count=row.message_count,
        turn_count=row.turn_count,
        owner=row.owner,
        system_prompt=row.system_prompt,
    )


@asynccontextmanager
async def _database_failures(action: str) -> AsyncIterator[None]:
    try:
        yield
    except (SQLAlchemyError, OSError, MessageCodecError) as exc:
        raise HistoryStoreError(f"{action}: {describe_database_error(exc)}") from None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
