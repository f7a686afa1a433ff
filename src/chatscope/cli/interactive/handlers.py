"""What each slash command does; `run_command` runs one against the current conversation.

A command that changes the scope (`/provider`, `/model`, `/session new|switch`, `/clear`)
returns the new `Conversation`; the loop then talks in it. A mistake (an unknown provider, a
session that does not exist) raises `ChatscopeError`, which the loop shows in one line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from chatscope.cli.interactive.conversation import Conversation
from chatscope.cli.interactive.render import shortened
from chatscope.cli.interactive.slash import COMMANDS, SlashCommand, help_text

if TYPE_CHECKING:
    from chatscope.cli.interactive.conversation import Compressed

__all__ = ["CommandResult", "run_command"]


@dataclass(frozen=True, slots=True)
class CommandResult:
    """After a command: the conversation to go on in (None: the same), or leave."""

    conversation: Conversation | None = None
    leave: bool = False


Handler = Callable[[Conversation, tuple[str, ...], Console], Awaitable[CommandResult]]

_SAME = CommandResult()
_SHOWN_SESSIONS = 15


async def run_command(
    command: SlashCommand, conversation: Conversation, console: Console
) -> CommandResult:
    """Run `command` (parsed by `slash.parse_line`, so its name is known); `/help` and
    `/exit` need no conversation and are the loop's own."""
    if command.name == "help":
        console.print(help_text(command.args[0] if command.args else None), markup=False)
        return _SAME
    if command.name == "exit":
        return CommandResult(leave=True)
    return await _HANDLERS[command.name](conversation, command.args, console)


async def _provider(
    conversation: Conversation, args: tuple[str, ...], console: Console
) -> CommandResult:
    if not args:
        from chatscope.config.settings import PROVIDER_NAMES

        state = conversation.state
        console.print(f"provider {state.provider} (model {state.model})", markup=False)
        console.print(f"available: {', '.join(PROVIDER_NAMES)}", style="dim", markup=False)
        return _SAME
    switched = conversation.switch_provider(args[0])
    _announce_switch(switched, console)
    return CommandResult(switched)


async def _model(
    conversation: Conversation, args: tuple[str, ...], console: Console
) -> CommandResult:
    if not args:
        state = conversation.state
        console.print(f"model {state.model} (provider {state.provider})", markup=False)
        return _SAME
    switched = conversation.switch_model(args[0])
    _announce_switch(switched, console)
    return CommandResult(switched)


def _announce_switch(conversation: Conversation, console: Console) -> None:
    state = conversation.state
    console.print(f"now {state.provider} · {state.model}; the conversation goes on", markup=False)


async def _session(
    conversation: Conversation, args: tuple[str, ...], console: Console
) -> CommandResult:
    action = args[0].lower() if args else "show"
    if action == "show" and len(args) <= 1:
        await _show_session(conversation, console)
        return _SAME
    if action == "list" and len(args) == 1:
        await _list_sessions(conversation, console)
        return _SAME
    if action == "new" and len(args) == 1:
        return _started(conversation.new_session(), console)
    if action == "switch" and len(args) == 2:
        resumed = await conversation.resume(args[1])
        turns = await resumed.turns()
        console.print(
            f"continuing session {resumed.state.session_id} ({turns} turns)", markup=False
        )
        return CommandResult(resumed)
    console.print(f"usage: {COMMANDS['session'].usage}", markup=False)
    return _SAME


async def _show_session(conversation: Conversation, console: Console) -> None:
    state = conversation.state
    kept = "saved" if conversation.saved else "in memory only"
    turns = await conversation.turns()
    console.print(f"session {state.session_id} ({kept})", markup=False)
    console.print(f"  {state.provider} · {state.model} · {turns} turns", markup=False)


async def _list_sessions(conversation: Conversation, console: Console) -> None:
    sessions = await conversation.saved_sessions()
    if not sessions:
        console.print("no saved sessions")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("", "ID", "UPDATED (UTC)", "PROVIDER/MODEL", "TURNS", "TITLE"):
        table.add_column(column, no_wrap=column != "TITLE")
    current = conversation.state.session_id
    for summary in sessions[:_SHOWN_SESSIONS]:
        table.add_row(
            "*" if summary.id == current else "",
            summary.id[:12],
            f"{summary.updated_at:%Y-%m-%d %H:%M}",
            f"{summary.provider or '?'}/{summary.model or '?'}",
            str(summary.turn_count),
            Text(shortened(summary.title, 40)),
        )
    console.print(table)
    if len(sessions) > _SHOWN_SESSIONS:
        console.print(f"… and {len(sessions) - _SHOWN_SESSIONS} more", style="dim")
    console.print("/session switch ID continues one (a unique prefix will do)", style="dim")


def _started(conversation: Conversation, console: Console) -> CommandResult:
    console.print(f"new session {conversation.state.session_id}", markup=False)
    return CommandResult(conversation)


async def _clear(conversation: Conversation, _: tuple[str, ...], console: Console) -> CommandResult:
    console.clear()
    return _started(conversation.new_session(), console)


async def _tools(conversation: Conversation, _: tuple[str, ...], console: Console) -> CommandResult:
    rows = conversation.tool_rows()
    if not rows:
        console.print("this chat has no tools")
        return _SAME
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("TOOL", "SOURCE", "DESCRIPTION"):
        table.add_column(column, no_wrap=True, overflow="ellipsis")
    for row in rows:
        name = row["name"] + (" *" if row["requires_approval"] else "")
        table.add_row(name, row["source"], shortened(row["description"], 70))
    console.print(table)
    console.print("* asks y/N before it runs", style="dim")
    return _SAME


async def _compress(
    conversation: Conversation, _: tuple[str, ...], console: Console
) -> CommandResult:
    with console.status("compressing…"):
        outcome = await conversation.compress()
    console.print(compression_message(outcome), markup=False)
    return _SAME


def compression_message(outcome: Compressed) -> str:
    """One line on what `/compress` did."""
    before, after = outcome.tokens_before, outcome.tokens_after
    messages = {
        "compressed": f"compressed: about {before} → {after} tokens",
        "nothing_eligible": "nothing to compress yet: the conversation is short",
        "too_little": "not compressed: it would save too little",
        "history_changed": "not compressed: the history changed meanwhile",
        "failed": "not compressed: the summary failed (the history is unchanged)",
    }
    return messages.get(outcome.status, f"not compressed ({outcome.status})")


_HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        "provider": _provider,
        "model": _model,
        "session": _session,
        "tools": _tools,
        "compress": _compress,
        "clear": _clear,
    }
)
