"""The statements of the saved-turn path, built once and run with bound parameters.

Building a SQLAlchemy statement (its clauses, then its cache key) costs more than running it on
SQLite: a saved turn built its statements anew for 0.5 ms of CPU, and runs these in 0.2 ms.
They are immutable Core expressions shared by every store; parameters are named `p_*` so they
never clash with the columns SQLAlchemy binds by name.
"""

from __future__ import annotations

from sqlalchemy import Update, bindparam, case, insert, select, update

from chatscope.adapters.storage.schema import messages_table, sessions_table

__all__ = [
    "BUMP_LABELLED_TURN",
    "BUMP_TURN",
    "FIND_OWNED_SESSION",
    "INSERT_MESSAGES",
    "INSERT_SESSION",
    "OWNED_SESSION_MESSAGES",
    "SESSION_OWNER",
]

_sessions, _messages = sessions_table.c, messages_table.c
_OWNED = (_sessions.id == bindparam("p_session")) & (_sessions.owner == bindparam("p_owner"))


def _turn_bump(*, labelled: bool) -> Update:
    """Count one more turn of `p_added` messages at `p_now`; a session created empty (through
    the server) is titled `p_title` by its first turn. Returns the new counts."""
    values = {
        "updated_at": bindparam("p_now"),
        "message_count": _sessions.message_count + bindparam("p_added"),
        "turn_count": _sessions.turn_count + 1,
        "title": case((_sessions.turn_count == 0, bindparam("p_title")), else_=_sessions.title),
    }
    if labelled:
        values |= {"provider": bindparam("p_provider"), "model": bindparam("p_model")}
    return (
        update(sessions_table)
        .where(_OWNED)
        .values(values)
        .returning(_sessions.message_count, _sessions.turn_count)
    )


BUMP_TURN = _turn_bump(labelled=False)
BUMP_LABELLED_TURN = _turn_bump(labelled=True)
"""As `BUMP_TURN`, and records `p_provider` / `p_model` as the session's."""
SESSION_OWNER = select(_sessions.owner).where(_sessions.id == bindparam("p_session"))
INSERT_SESSION = insert(sessions_table)
INSERT_MESSAGES = insert(messages_table)
FIND_OWNED_SESSION = select(sessions_table).where(_OWNED)
OWNED_SESSION_MESSAGES = (
    select(_messages.turn, _messages.payload, _messages.usage)
    .select_from(sessions_table.outerjoin(messages_table))
    .where(_OWNED)
    .order_by(_messages.position)
)
"""The session's messages, oldest first; no row if the owner has no such session, and one row
of NULLs if the session has no messages."""
