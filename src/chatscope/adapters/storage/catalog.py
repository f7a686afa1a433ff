"""The catalogue of saved sessions: list, create, read and delete them, each filtered by owner."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Row, delete, select
from sqlalchemy.engine import Connection

from chatscope.adapters.storage.codec import decode_message, decode_usage
from chatscope.adapters.storage.database import Database
from chatscope.adapters.storage.schema import LOCAL_OWNER, messages_table, sessions_table
from chatscope.adapters.storage.sql_history import (
    StoredMessage,
    database_failures,
    owned,
    owner_is,
    read_session,
    utc_now,
)
from chatscope.adapters.storage.statements import FIND_OWNED_SESSION, INSERT_SESSION
from chatscope.errors import UnknownSessionError

__all__ = ["SessionCatalog", "SessionSummary"]


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


class SessionCatalog:
    """Lists, creates, reads and deletes saved sessions (the `chatscope sessions` commands and the
    server's session endpoints).

    Every method takes an optional `owner`: given, only that owner's sessions exist for it (the
    server passes the calling tenant); None means every session.
    """

    __slots__ = ("_database",)

    def __init__(self, database: Database) -> None:
        self._database = database

    async def list_sessions(self, owner: str | None = None) -> tuple[SessionSummary, ...]:
        """Every saved session (of `owner`), the most recently updated first."""
        order = (sessions_table.c.updated_at.desc(), sessions_table.c.id)
        query = select(sessions_table).where(owner_is(owner)).order_by(*order)
        async with database_failures("listing sessions"):
            rows = await self._database.read(partial(_all_rows, query))
        return tuple(_summary(row) for row in rows)

    async def find(self, session_id: str, owner: str | None = None) -> SessionSummary | None:
        """The session `session_id` (of `owner`), or None if no such session is saved."""
        if owner is None:
            query: Any = select(sessions_table).where(owned(session_id, owner))
            parameters = {}
        else:
            query, parameters = FIND_OWNED_SESSION, {"p_session": session_id, "p_owner": owner}
        async with database_failures("reading sessions"):
            row = await self._database.read(partial(_first_row, query, parameters))
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
        now = utc_now()
        row = {"id": session_id, "created_at": now, "updated_at": now, "title": ""}
        row |= {"provider": provider, "model": model, "owner": owner}
        row |= {"system_prompt": system_prompt, "message_count": 0, "turn_count": 0}
        async with database_failures(f"creating session {session_id!r}"):
            await self._database.write(partial(_execute, INSERT_SESSION, row))
        return _summary_of(row)

    async def transcript(
        self, session_id: str, owner: str | None = None
    ) -> tuple[StoredMessage, ...]:
        """The stored messages of `session_id` (of `owner`) with their turns and usage, oldest
        first."""
        async with database_failures(f"reading session {session_id!r}"):
            return await _read_messages(self._database, session_id, owner)

    async def delete(self, session_id: str, owner: str | None = None) -> None:
        """Delete a session (of `owner`) and its messages in one transaction;
        `UnknownSessionError` if there is none."""
        work = partial(_delete_session, session_id=session_id, owner=owner)
        async with database_failures(f"deleting session {session_id!r}"):
            deleted = await self._database.write(work)
        if not deleted:
            raise UnknownSessionError(session_id)


def _delete_session(connection: Connection, *, session_id: str, owner: str | None) -> bool:
    """Delete the session and its messages; whether there was such a session."""
    session = select(sessions_table.c.id).where(owned(session_id, owner))
    connection.execute(delete(messages_table).where(messages_table.c.session_id.in_(session)))
    deleted = connection.execute(delete(sessions_table).where(owned(session_id, owner)))
    return bool(deleted.rowcount)


def _execute(statement: Any, parameters: dict[str, Any], connection: Connection) -> None:
    connection.execute(statement, parameters)


def _all_rows(query: Any, connection: Connection) -> Sequence[Row[Any]]:
    return connection.execute(query).all()


def _first_row(query: Any, parameters: dict[str, Any], connection: Connection) -> Row[Any] | None:
    return connection.execute(query, parameters).first()


async def _read_messages(
    database: Database, session_id: str, owner: str | None
) -> tuple[StoredMessage, ...]:
    if owner is not None:
        _, stored = await database.read(partial(read_session, session_id, owner))
        return stored
    columns = (messages_table.c.turn, messages_table.c.payload, messages_table.c.usage)
    query = select(*columns).where(messages_table.c.session_id == session_id)
    query = query.order_by(messages_table.c.position)
    return await database.read(partial(_decoded_messages, query, {}))


def _decoded_messages(
    query: Any, parameters: dict[str, Any], connection: Connection
) -> tuple[StoredMessage, ...]:
    return tuple(
        StoredMessage(turn, decode_message(payload), decode_usage(usage) if usage else None)
        for turn, payload, usage in connection.execute(query, parameters)
    )


def _summary(row: Row[Any]) -> SessionSummary:
    return _summary_of(row._mapping)


def _summary_of(row: Any) -> SessionSummary:
    """The summary of a `sessions` row, given as a mapping of its columns."""
    return SessionSummary(
        id=row["id"],
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
        provider=row["provider"],
        model=row["model"],
        title=row["title"],
        message_count=row["message_count"],
        turn_count=row["turn_count"],
        owner=row["owner"],
        system_prompt=row["system_prompt"],
    )


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
