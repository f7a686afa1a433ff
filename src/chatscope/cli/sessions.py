"""Saved sessions on the command line: `sessions list | show | delete` and `chat --session`.

The command line is the local owner (`LOCAL_OWNER`): it sees, continues and deletes the sessions
it saved and those of a server running without API keys, never a tenant's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from typing import Any, TextIO, assert_never

from chatscope.adapters.pricing import PriceTable
from chatscope.adapters.storage.catalog import SessionCatalog, SessionSummary
from chatscope.adapters.storage.codec import message_to_dict
from chatscope.adapters.storage.schema import LOCAL_OWNER
from chatscope.adapters.storage.sql_history import SqlHistoryStore, StoredMessage
from chatscope.cli.costs import SessionCosts, session_costs
from chatscope.containers.application import ApplicationContainer
from chatscope.errors import ConfigurationError
from chatscope.services.messages import (
    Block,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)
from chatscope.services.runtime.context import AgentRuntimeContext

__all__ = [
    "add_sessions_parser",
    "announce_session",
    "check_session",
    "run_sessions",
    "session_as_json",
    "summary_as_json",
]

_MEMORY_BACKEND = (
    "saved sessions need history_backend=database (env CHATSCOPE_HISTORY_BACKEND); "
    "it is set to memory"
)


def add_sessions_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    add_common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add `sessions list | show ID | delete ID`; `add_common` adds the shared flags."""
    sessions = commands.add_parser("sessions", help="list, show or delete saved chat sessions")
    actions = sessions.add_subparsers(dest="sessions_command", required=True)
    listing = actions.add_parser("list", help="saved sessions, the most recent first")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    show = actions.add_parser("show", help="print the conversation of one session")
    show.add_argument("session_id", metavar="ID", help="the session id")
    show.add_argument("--json", action="store_true", help="print one lossless JSON document")
    delete = actions.add_parser("delete", help="delete one session and its messages")
    delete.add_argument("session_id", metavar="ID", help="the session id")
    for parser in (listing, show, delete):
        add_common(parser)


async def run_sessions(app: ApplicationContainer, args: argparse.Namespace, out: TextIO) -> int:
    """Run one `sessions` subcommand against the initialised application's database."""
    catalog = _catalog(app)
    if args.sessions_command == "list":
        await _list(catalog, out, as_json=args.json)
    elif args.sessions_command == "show":
        await _show(catalog, args.session_id, out, as_json=args.json, prices=app.price_table())
    else:
        await catalog.delete(args.session_id, LOCAL_OWNER)
        out.write(f"deleted session {args.session_id}\n")
    return 0


async def check_session(app: ApplicationContainer, session_id: str | None) -> None:
    """Refuse `chat --session ID` early: with the memory backend, or for an unknown ID."""
    if session_id is not None:
        await _catalog(app).get(session_id, LOCAL_OWNER)


def announce_session(context: AgentRuntimeContext, err: TextIO) -> None:
    """Tell the user how to continue a saved session."""
    if isinstance(context.history, SqlHistoryStore):
        err.write(f"[session {context.state.session_id}: continue with --session]\n")


def _catalog(app: ApplicationContainer) -> SessionCatalog:
    if app.settings().history_backend != "database":
        raise ConfigurationError(_MEMORY_BACKEND)
    catalog: SessionCatalog = app.storage.session_catalog()
    return catalog


async def _list(catalog: SessionCatalog, out: TextIO, *, as_json: bool) -> None:
    summaries = await catalog.list_sessions(LOCAL_OWNER)
    if as_json:
        out.write(json.dumps([summary_as_json(s) for s in summaries], ensure_ascii=False) + "\n")
        return
    if not summaries:
        out.write("no saved sessions\n")
        return
    out.write(f"{'ID':<32}  {'UPDATED (UTC)':<16}  {'PROVIDER/MODEL':<30}  TURNS  TITLE\n")
    for summary in summaries:
        out.write(
            f"{summary.id:<32}  {summary.updated_at:%Y-%m-%d %H:%M}  "
            f"{_origin(summary):<30}  {summary.turn_count:>5}  {summary.title}\n"
        )


async def _show(
    catalog: SessionCatalog, session_id: str, out: TextIO, *, as_json: bool, prices: PriceTable
) -> None:
    summary = await catalog.get(session_id, LOCAL_OWNER)
    stored = await catalog.transcript(session_id, LOCAL_OWNER)
    costs = session_costs(summary, stored, prices)
    if as_json:
        document = session_as_json(summary, stored, costs)
        out.write(json.dumps(document, ensure_ascii=False) + "\n")
        return
    out.write(
        f"session {summary.id}  {_origin(summary)}  {summary.turn_count} turns  "
        f"updated {summary.updated_at:%Y-%m-%d %H:%M} UTC\n{costs.line()}\n"
    )
    turn = None
    for item in stored:
        if item.turn != turn:
            _end_turn(turn, costs, out)
            turn = item.turn
            out.write(f"\n--- turn {turn} ---\n")
        out.write(f"{item.message.role}:\n")
        for block in item.message.blocks:
            out.write(_indented(_block_text(block)) + "\n")
    _end_turn(turn, costs, out)


def _end_turn(turn: int | None, costs: SessionCosts, out: TextIO) -> None:
    """After a turn's messages: what it cost."""
    if turn is not None:
        out.write(f"[turn {turn}: {costs.of_turn(turn).line()}]\n")


def summary_as_json(summary: SessionSummary) -> dict[str, Any]:
    """A session's summary as the `--json` outputs print it."""
    return {
        "id": summary.id,
        "title": summary.title,
        "provider": summary.provider,
        "model": summary.model,
        "turns": summary.turn_count,
        "messages": summary.message_count,
        "created_at": summary.created_at.isoformat(),
        "updated_at": summary.updated_at.isoformat(),
    }


def session_as_json(
    summary: SessionSummary, stored: tuple[StoredMessage, ...], costs: SessionCosts
) -> dict[str, Any]:
    """`sessions show --json`: the summary, every message in its lossless stored form, and
    the costs (see `SessionCosts.as_json`)."""
    messages = [
        {"turn": item.turn, "usage": _usage(item), **message_to_dict(item.message)}
        for item in stored
    ]
    return {"session": summary_as_json(summary), "messages": messages, "costs": costs.as_json()}


def _usage(item: StoredMessage) -> dict[str, int] | None:
    return None if item.usage is None else dataclasses.asdict(item.usage)


def _origin(summary: SessionSummary) -> str:
    return f"{summary.provider or '?'}/{summary.model or '?'}"


def _block_text(block: Block) -> str:
    match block:
        case TextBlock(text=text):
            return text
        case ThinkingBlock(text=text):
            return f"[thinking] {text}" if text else "[thinking, redacted]"
        case ToolCallBlock():
            return f"[tool call] {block.name} {block.arguments_json()}"
        case ToolResultBlock():
            if block.error is not None:
                return f"[tool error] {block.name}: {block.error}"
            return f"[tool result] {block.name}: {block.result}"
        case _:
            assert_never(block)


def _indented(text: str) -> str:
    return "\n".join("  " + line for line in (text.splitlines() or [""]))
