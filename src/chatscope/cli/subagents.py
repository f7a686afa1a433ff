"""Subagents on the command line: `subagents list` and `task NAME "GOAL"`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, TextIO

from chatscope.config.profiles import LoadedProfile, ProfileCatalog
from chatscope.containers.application import ApplicationContainer
from chatscope.services.frozen import thaw
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.services.subagents.task import SubagentRun, TaskRequest, TaskResult, TerminateReason

__all__ = [
    "EXIT_CODES",
    "add_subagent_parsers",
    "list_subagents",
    "profile_as_json",
    "run_task",
]

EXIT_CODES: Mapping[TerminateReason, int] = MappingProxyType(
    {
        TerminateReason.GOAL: 0,
        TerminateReason.MAX_TURNS: 1,
        TerminateReason.TIMEOUT: 1,
        TerminateReason.ERROR: 1,
        TerminateReason.CANCELLED: 130,
    }
)


def add_subagent_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    add_common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add `subagents list` and `task`; `add_common` adds the shared flags."""
    subagents = commands.add_parser("subagents", help="inspect the subagent profiles")
    actions = subagents.add_subparsers(dest="subagents_command", required=True)
    listing = actions.add_parser("list", help="every profile: name, provider, model, tools, file")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    add_common(listing)
    task = commands.add_parser(
        "task",
        help="run one subagent on a goal and print its result",
        description="Run one subagent in its own scope. Exit status: 0 when it reached its "
        "goal, 1 for MAX_TURNS, TIMEOUT or ERROR, 130 when interrupted (Ctrl-C cancels the "
        "subagent and still prints what it produced).",
    )
    task.add_argument("name", help="the subagent (see `chatscope subagents list`)")
    task.add_argument("goal", help="what the subagent must achieve")
    task.add_argument("--context", help="background the subagent needs")
    task.add_argument("--json", action="store_true", help="print the result as one JSON object")
    task.add_argument(
        "--timeout", type=_positive(float), metavar="S", help="lower the profile's time limit"
    )
    task.add_argument(
        "--max-turns", type=_positive(int), metavar="N", help="lower the profile's turn limit"
    )
    add_common(task)


def _positive(kind: Callable[[str], float]) -> Callable[[str], Any]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def list_subagents(app: ApplicationContainer, args: argparse.Namespace, out: TextIO) -> int:
    """Print every profile of the configured profiles directory (nothing is started)."""
    catalog: ProfileCatalog = app.profile_catalog()
    if args.json:
        out.write(json.dumps([profile_as_json(loaded) for loaded in catalog], indent=2) + "\n")
    elif not catalog:
        out.write(f"no subagent profiles in {catalog.directory}\n")
    else:
        _table([_row(loaded) for loaded in catalog], out)
    return 0


def profile_as_json(loaded: LoadedProfile) -> dict[str, Any]:
    """One profile in `subagents list --json`: what it runs with, and its file."""
    spec = loaded.spec
    return {
        "name": spec.name,
        "description": spec.description,
        "provider": spec.provider,
        "model": spec.model,
        "allowed_tools": list(spec.allowed_tools),
        "max_turns": spec.max_turns,
        "timeout_seconds": spec.timeout_seconds,
        "source": str(loaded.source),
    }


_HEADER = ("NAME", "PROVIDER", "MODEL", "TOOLS", "SOURCE")


def _row(loaded: LoadedProfile) -> tuple[str, ...]:
    spec = loaded.spec
    tools = ", ".join(spec.allowed_tools) or "-"
    return (spec.name, spec.provider, spec.model, tools, str(loaded.source))


def _table(rows: list[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(row[column]) for row in [_HEADER, *rows]) for column in range(len(_HEADER))]
    for row in [_HEADER, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        out.write("  ".join(cells).rstrip() + "\n")


async def run_task(
    app: ApplicationContainer, args: argparse.Namespace, out: TextIO, err: TextIO
) -> int:
    """Run one subagent under a fresh parent scope of its own; Ctrl-C cancels the subagent.

    The profiles are loaded first, so a broken profile file is reported here as it is.
    """
    app.subagent_profiles()
    request = TaskRequest(
        subagent_name=args.name,
        goal_prompt=args.goal,
        context=args.context,
        max_turns=args.max_turns,
        timeout_seconds=args.timeout,
    )
    scopes = app.runtime.scopes()
    parent = scopes.foreground(ScopeRequest(allowed_tools=()))
    run = app.runtime.subagent_tools().runner_for(parent, scopes).start(request)
    with _cancelled_by_interrupt(run):
        result = await run.result()
    if args.json:
        out.write(json.dumps(result.as_json(), ensure_ascii=False) + "\n")
    else:
        _show(result, out, err)
    return EXIT_CODES[result.terminate_reason]


@contextlib.contextmanager
def _cancelled_by_interrupt(run: SubagentRun) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, run.cancel)
    except (NotImplementedError, RuntimeError):  # pragma: no cover - no signals on this loop
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def _show(result: TaskResult, out: TextIO, err: TextIO) -> None:
    out.write(result.final_message)
    if result.final_message and not result.final_message.endswith("\n"):
        out.write("\n")
    for name, value in result.emitted_values.items():
        err.write(f"[emitted] {name} = {json.dumps(thaw(value), ensure_ascii=False)}\n")
    usage = result.usage
    summary = (
        f"[task {result.subagent_name}: {result.terminate_reason}"
        f", {usage.input_tokens} in / {usage.output_tokens} out tokens"
        f", runtime {result.runtime_id}]"
    )
    if result.error:
        summary += f"\n[error] {result.error}"
    err.write(summary + "\n")
