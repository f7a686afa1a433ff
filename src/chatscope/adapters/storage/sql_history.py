"""Saved sessions: the `HistoryStore` of one session in the database (the catalogue of sessions
is `catalog.py`).

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
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, true, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from chatscope.adapters.storage.codec import (
    MessageCodecError,
    decode_message,
    decode_usage,
    encode_message,
    encode_usage,
)
from chatscope.adapters.storage.database import Database
from chatscope.adapters.storage.driver import execute_rows, first_row
from chatscope.adapters.storage.engine import describe_database_error
from chatscope.adapters.storage.schema import LOCAL_OWNER, messages_table, sessions_table
from chatscope.adapters.storage.statements import (
    BUMP_LABELLED_TURN,
    BUMP_TURN,
    INSERT_MESSAGES,
    INSERT_SESSION,
    OWNED_SESSION_MESSAGES,
    SESSION_OWNER,
)
from chatscope.errors import HistoryStoreError, UnknownSessionError
from chatscope.services.messages import Message, Role, Usage, estimate_tokens

__all__ = [
    "TITLE_LENGTH",
    "SqlHistoryStore",
    "StoredMessage",
    "database_failures",
    "owned",
    "owner_is",
    "read_session",
    "session_title",
    "utc_now",
]

TITLE_LENGTH = 80
_WRITE_ATTEMPTS = 3


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

    __slots__ = ("_database", "_label", "_lock", "_owner", "_row", "_view", "session_id")

    def __init__(
        self,
        database: Database,
        *,
        session_id: str,
        provider: str | None = None,
        model: str | None = None,
        owner: str | None = None,
    ) -> None:
        self._database = database
        self.session_id = session_id
        self._owner = owner or LOCAL_OWNER
        self._view: _View | None = None
        # Whether the session's row exists: known once read or written, None while unsure.
        self._row: bool | None = None
        self._label: dict[str, str] = {}
        if provider and model:
            self.label(provider=provider, model=model)
        self._lock = asyncio.Lock()

    def mark_new_session(self) -> None:
        """The session id was made just now, for this store's scope: nothing is stored under it,
        so the first turn creates the session without reading it first. (Were the id taken
        after all, the session's creation collides and the turn is written as to any other.)"""
        if self._view is None:
            self._view, self._row = _View(), False

    def label(self, *, provider: str, model: str) -> None:
        """Record which provider and model continue this session; saved with the next write."""
        self._label = {"provider": provider, "model": model}

    async def messages(self) -> tuple[Message, ...]:
        """Every stored message, oldest first."""
        return (await self._settled()).messages

    async def token_count(self) -> int:
        """Tokens the history costs: API-reported where known, estimated otherwise."""
        return (await self._settled()).token_count()

    async def append_turn(self, messages: Sequence[Message], usage: Usage | None = None) -> None:
        """Store one completed turn in one transaction; an empty turn stores nothing."""
        turn = tuple(messages)
        if not turn:
            return
        async with self._lock:
            view = await self._loaded()
            async with self._failures("saving a turn of"):
                await _retrying_creation(self._database, partial(self._write_turn, turn, usage))
            self._view, self._row = view.appended(turn, usage), True

    async def replace(self, messages: Sequence[Message]) -> None:
        """Replace the whole stored history in one transaction."""
        new = tuple(messages)
        async with self._lock, self._failures("replacing the history of"):
            await _retrying_creation(self._database, partial(self._write_replacement, new))
            self._view, self._row = _View(new), None

    async def _settled(self) -> _View:
        """What is loaded, once no read or write of this store is under way."""
        if self._view is not None and not self._lock.locked():
            return self._view  # nothing to wait for: taking the lock would not suspend
        async with self._lock:
            return await self._loaded()

    async def _loaded(self) -> _View:
        if self._view is None:
            async with self._failures("reading"):
                read = partial(read_session, self.session_id, self._owner)
                self._row, stored = await self._database.read(read)
                self._view = _View.of(stored)
        return self._view

    def _write_turn(
        self, turn: tuple[Message, ...], usage: Usage | None, connection: Connection
    ) -> None:
        now = utc_now()
        if self._row is False:
            # Read as absent: create it straight away. Should another writer have created it
            # meanwhile, the insert collides and the retry takes the general path below.
            self._row = None
            self._create(connection, now, turn, turn_count=1, checked=False)
            self._insert_turn(connection, turn, usage, first=0, turn_number=1)
            return
        bump = BUMP_LABELLED_TURN if self._label else BUMP_TURN
        parameters = {"p_session": self.session_id, "p_owner": self._owner, "p_now": now}
        parameters |= {"p_added": len(turn), "p_title": session_title(turn)}
        parameters |= {f"p_{key}": value for key, value in self._label.items()}
        row = first_row(connection, bump, parameters)
        if row is None:
            self._create(connection, now, turn, turn_count=1)
            counts = (len(turn), 1)
        else:
            counts = (int(row[0]), int(row[1]))
        self._insert_turn(
            connection, turn, usage, first=counts[0] - len(turn), turn_number=counts[1]
        )

    def _insert_turn(
        self,
        connection: Connection,
        turn: tuple[Message, ...],
        usage: Usage | None,
        *,
        first: int,
        turn_number: int,
    ) -> None:
        rows = [_row(self.session_id, first + i, turn_number, m) for i, m in enumerate(turn)]
        if usage is not None:
            rows[-1]["usage"] = encode_usage(usage)
        execute_rows(connection, INSERT_MESSAGES, rows)

    def _write_replacement(self, new: tuple[Message, ...], connection: Connection) -> None:
        now, turns = utc_now(), _turn_numbers(new)
        turn_count = self._bump(connection, updated_at=now, message_count=len(new))
        if turn_count is None and not new:
            return
        if turn_count is None:
            self._create(connection, now, new, turn_count=max(turns))
        elif max(turns, default=0) > turn_count:
            self._bump(connection, turn_count=max(turns))
        where = messages_table.c.session_id == self.session_id
        connection.execute(delete(messages_table).where(where))
        numbered = enumerate(zip(turns, new, strict=True))
        rows = [_row(self.session_id, i, turn, message) for i, (turn, message) in numbered]
        if rows:
            connection.execute(insert(messages_table), rows)

    def _bump(self, connection: Connection, **values: Any) -> int | None:
        """Update the session row, locking it: its turn count; None if there is no such row."""
        statement = (
            update(sessions_table)
            .where(owned(self.session_id, self._owner))
            .values(**values, **self._label)
            .returning(sessions_table.c.turn_count)
        )
        row = connection.execute(statement).first()
        return None if row is None else int(row[0])

    def _create(
        self,
        connection: Connection,
        now: dt.datetime,
        messages: tuple[Message, ...],
        *,
        turn_count: int,
        checked: bool = True,
    ) -> None:
        """Insert the session row; `UnknownSessionError` if another owner has this id (when
        `checked`; unchecked, such a row makes the insert collide). A row of this owner's,
        created meanwhile by another writer, makes the insert collide, and
        `_retrying_creation` appends to it."""
        if checked:
            found = first_row(connection, SESSION_OWNER, {"p_session": self.session_id})
            if found is not None and found[0] != self._owner:
                raise UnknownSessionError(self.session_id)
        row = {
            "id": self.session_id,
            "created_at": now,
            "updated_at": now,
            "title": session_title(messages),
            "message_count": len(messages),
            "turn_count": turn_count,
            "owner": self._owner,
            "system_prompt": None,
            "provider": None,
            "model": None,
            **self._label,
        }
        execute_rows(connection, INSERT_SESSION, row)

    def _failures(self, action: str) -> AbstractAsyncContextManager[None]:
        return database_failures(f"{action} session {self.session_id!r}")


def session_title(messages: Sequence[Message]) -> str:
    """The first prompt with visible text, on one line of printable characters, cut to
    `TITLE_LENGTH` characters."""
    for message in messages:
        if message.role is Role.USER:
            line = _one_line(message.text)
            if line:
                return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"
    return ""


def _one_line(text: str) -> str:
    """`text` with each character that is not printable made a space, then each run of
    whitespace one space and none at either end.

    Splitting on whitespace first gives the same line whenever every character left is
    printable: each character that is not printable was then whitespace, which splits the
    text as the space replacing it would. Only otherwise is the text read character by
    character."""
    line = " ".join(text.split())
    if line.isprintable():
        return line
    printable = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(printable.split())


def owner_is(owner: str | None) -> ColumnElement[bool]:
    return true() if owner is None else sessions_table.c.owner == owner


def owned(session_id: str, owner: str | None) -> ColumnElement[bool]:
    """The session row `session_id`, if `owner` (None: anyone) owns it."""
    return (sessions_table.c.id == session_id) & owner_is(owner)


def read_session(
    session_id: str, owner: str, connection: Connection
) -> tuple[bool, tuple[StoredMessage, ...]]:
    """Whether `owner` has the session `session_id`, and its stored messages."""
    parameters = {"p_session": session_id, "p_owner": owner}
    rows = connection.execute(OWNED_SESSION_MESSAGES, parameters).all()
    return bool(rows), tuple(
        StoredMessage(turn, decode_message(payload), decode_usage(usage) if usage else None)
        for turn, payload, usage in rows
        if payload is not None
    )


async def _retrying_creation(database: Database, write: Callable[[Connection], None]) -> None:
    """Run a write transaction, again if it collided with another writer creating the session.

    Two writers may both find no session row and both insert one; the database lets one commit
    and refuses the other (on SQLite the write lock already prevents this). The retry then finds
    the row, locks it, and appends after the winner's turn.
    """
    for attempt in range(1, _WRITE_ATTEMPTS + 1):
        try:
            await database.write(write)
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


def database_failures(action: str) -> AbstractAsyncContextManager[None]:
    """A database, driver or stored-data failure inside the block becomes a `HistoryStoreError`
    naming `action` and the failure's own reason."""
    return _DatabaseFailures(action)


class _DatabaseFailures:
    """`database_failures`: a class, as it is entered on every saved turn (a generator-based
    context manager cost about three times as much)."""

    __slots__ = ("_action",)

    def __init__(self, action: str) -> None:
        self._action = action

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(exc, SQLAlchemyError | OSError | MessageCodecError):
            reason = describe_database_error(exc)
            raise HistoryStoreError(f"{self._action}: {reason}") from None


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
