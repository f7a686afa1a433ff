"""Tools on the command line: `tools list`, and asking the person at the terminal to approve.

`tools list` shows what a chat's model would be offered (workspace tools, MCP servers' tools,
`task`), each with where it comes from. `TerminalApprover` asks y/N on the terminal before a
tool that needs approval runs (`write_file`); off a terminal the CLI gives its scope no
approver, so such a call is refused and the model is told why.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import Any, TextIO

from chatscope.containers.application import ApplicationContainer
from chatscope.services.frozen import thaw
from chatscope.services.runtime.context import AgentRuntimeContext
from chatscope.services.tools.ports import ApprovalRequest

__all__ = ["TerminalApprover", "add_tools_parser", "list_tools", "tool_rows"]

SUBAGENT_TOOLS = frozenset({"task", "emit_value"})


def add_tools_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    add_common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add `tools list`; `add_common` adds the shared flags."""
    tools = commands.add_parser("tools", help="inspect the tools a chat may use")
    actions = tools.add_subparsers(dest="tools_command", required=True)
    listing = actions.add_parser("list", help="every tool: name, source, description")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    add_common(listing)


def tool_rows(app: ApplicationContainer, context: AgentRuntimeContext) -> list[dict[str, Any]]:
    """One row per tool of `context`: name, source, description, whether it needs approval."""
    workspace = set(app.tools.workspace_toolkit().names())
    mcp_sources = {entry.name: entry.source for entry in app.tools.mcp_servers().listing()}
    rows = []
    for declaration in context.tools.declarations():
        name = declaration.name
        if name in workspace:
            source = "workspace"
        elif name in SUBAGENT_TOOLS:
            source = "subagents"
        else:
            source = mcp_sources.get(name, "application")
        rows.append(
            {
                "name": name,
                "source": source,
                "description": declaration.description,
                "requires_approval": declaration.requires_approval,
                "parameters": thaw(declaration.parameters),
            }
        )
    return rows


def list_tools(
    app: ApplicationContainer, args: argparse.Namespace, out: TextIO, err: TextIO
) -> int:
    """Print the tools of a fresh foreground scope; unavailable MCP servers go to `err`."""
    context = app.runtime.scopes().foreground()
    rows = tool_rows(app, context)
    if args.json:
        out.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
    else:
        width = max((len(row["name"]) for row in rows), default=4)
        for row in rows:
            summary = _first_sentence(row["description"])
            marker = " (asks first)" if row["requires_approval"] else ""
            out.write(f"{row['name']:<{width}}  {row['source']:<14} {summary}{marker}\n")
    for server, reason in app.tools.mcp_servers().unavailable().items():
        err.write(f"chatscope: MCP server {server!r} is unavailable: {reason}\n")
    return 0


class TerminalApprover:
    """Asks y/N on the terminal before a tool that needs approval runs.

    Questions are asked one at a time even when several calls of one reply wait for
    approval; end of input (Ctrl-D) means no.
    """

    __slots__ = ("_ask", "_err", "_lock")

    def __init__(self, err: TextIO, *, ask: Callable[[str], str] = input) -> None:
        self._err = err
        self._ask = ask
        self._lock = asyncio.Lock()

    async def __call__(self, request: ApprovalRequest) -> bool:
        """Whether the person allows this call."""
        call = f"{request.tool}({json.dumps(thaw(request.arguments), ensure_ascii=False)})"
        async with self._lock:
            self._err.write(f"\n[approve] {_shortened(call)}\nRun it? [y/N] ")
            self._err.flush()
            try:
                answer = await asyncio.to_thread(self._ask, "")
            except EOFError:
                answer = ""
        return answer.strip().lower() in {"y", "yes"}


def _first_sentence(text: str) -> str:
    """The description's first sentence (or line), for a one-line listing."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    end = line.find(". ")
    return line[: end + 1] if end != -1 else line


def _shortened(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
