"""The `chatscope` entry point: parse flags, read settings once, build the container, run.

This is the only place that reads the process environment and configures logging. Errors of
chatscope's own become one line on stderr and a non-zero exit, never a traceback. Without a
command (or `chat` without a prompt) on a terminal it opens the interactive chat. A command's
module is imported only when that command runs (or its help is asked for), so `--help` and the
interactive prompt appear without loading the settings model, the database or a provider.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

from chatscope.cli.interactive.launch import (
    LazySubcommands,
    ProviderNames,
    add_color_flag,
    asks_for_interactive,
    not_interactive_reason,
    on_terminal,
    read_prompt,
    run_interactive,
)
from chatscope.config.presets import PRESETS
from chatscope.errors import ChatscopeError, ConfigurationError

if TYPE_CHECKING:
    from chatscope.config.settings import Settings
    from chatscope.containers.application import ApplicationContainer

__all__ = ["build_parser", "main"]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand; a subcommand's arguments are added when it is
    parsed (`LazySubcommands`), so `chatscope --help` imports none of the commands' modules."""
    parser = argparse.ArgumentParser(prog="chatscope", description=__doc__.splitlines()[0])
    add_color_flag(parser)
    parser.register("action", "parsers", LazySubcommands)
    commands = cast(LazySubcommands, parser.add_subparsers(dest="command"))
    commands.add_lazy("chat", _CHAT_HELP, _add_chat_parser)
    commands.add_lazy("config", "inspect configuration", _add_config_parser)
    commands.add_lazy("presets", "list the named OpenAI-compatible endpoints")
    commands.add_lazy("sessions", "list, show or delete saved chat sessions", _add_sessions)
    commands.add_lazy("subagents", "inspect the subagent profiles", _add_subagents)
    commands.add_lazy("task", "run one subagent on a goal and print its result", _add_subagents)
    commands.add_lazy("tools", "inspect the tools a chat may use", _add_tools)
    commands.add_lazy("serve", _SERVE_HELP, _add_serve)
    return parser


_CHAT_HELP = "chat interactively, or send one prompt and stream the answer"
_SERVE_HELP = "serve the OpenAI-compatible API, saved sessions and the chat page"


def _add_chat_parser(commands: LazySubcommands) -> None:
    chat = commands.add_parser("chat", help=_CHAT_HELP)
    chat.add_argument(
        "prompt",
        nargs="?",
        help="what to ask; - reads it from stdin; none opens the interactive chat on a terminal",
    )
    chat.add_argument(
        "--provider",
        choices=ProviderNames(),
        metavar="NAME",
        help="provider adapter to use: %(choices)s",
    )
    chat.add_argument("--model", help="model name (default: the provider's default model)")
    chat.add_argument("--base-url", help="provider endpoint, e.g. http://127.0.0.1:8080/v1")
    chat.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="a named OpenAI-compatible endpoint (see `chatscope presets`)",
    )
    chat.add_argument("--system", help="system prompt")
    chat.add_argument("--json", action="store_true", help="print one JSON object at the end")
    chat.add_argument("--session", metavar="ID", help="continue this saved session")
    chat.add_argument(
        "--output-schema",
        metavar="FILE",
        type=Path,
        help="answer with JSON matching this JSON-schema file; print it, validated",
    )
    add_color_flag(chat, top_level=False)
    _add_env_file(chat)


def _add_config_parser(commands: LazySubcommands) -> None:
    config = commands.add_parser("config", help="inspect configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    show = config_commands.add_parser("show", help="print effective settings, secrets redacted")
    _add_env_file(show)


def _add_sessions(commands: LazySubcommands) -> None:
    from chatscope.cli.sessions import add_sessions_parser

    add_sessions_parser(commands, _add_env_file)


def _add_subagents(commands: LazySubcommands) -> None:
    from chatscope.cli.subagents import add_subagent_parsers

    add_subagent_parsers(commands, _add_env_file)


def _add_tools(commands: LazySubcommands) -> None:
    from chatscope.cli.tools import add_tools_parser

    add_tools_parser(commands, _add_env_file)


def _add_serve(commands: LazySubcommands) -> None:
    from chatscope.cli.serve import add_serve_parser

    add_serve_parser(commands, _add_env_file)


def _add_env_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", type=Path, help="read settings from this .env file too")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if asks_for_interactive(args):
        problem = not_interactive_reason(args, terminal=on_terminal(sys.stdin, sys.stdout))
        if problem is not None and args.command is None:
            parser.error(problem)
        if problem is not None:
            return _fail(problem, EXIT_USAGE)
    try:
        return _run(args)
    except ConfigurationError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except ChatscopeError as exc:
        return _fail(str(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)


def _run(args: argparse.Namespace) -> int:
    if asks_for_interactive(args):  # it reads its settings behind the prompt
        return run_interactive(args)
    if args.command == "chat":
        args.prompt = read_prompt(args.prompt, sys.stdin)
    if args.command == "presets":  # a fixed table: no settings to read
        from chatscope.cli.commands import list_presets

        list_presets(sys.stdout)
        return 0
    if args.command == "serve" and args.hash_key:  # no settings needed
        from chatscope.cli.serve import print_key_hash

        return print_key_hash(sys.stdin, sys.stdout)
    from chatscope.config.loading import load_settings
    from chatscope.config.unknown import unknown_setting_warnings

    settings = load_settings(args.env_file)
    for warning in unknown_setting_warnings(os.environ, args.env_file):
        warn(warning)
    if args.command == "config":
        from chatscope.cli.commands import show_config

        show_config(settings, sys.stdout)
        return 0
    if args.command == "serve":  # uvicorn runs its own event loop
        from chatscope.cli.serve import run_serve

        return run_serve(settings, args, sys.stderr)
    import asyncio

    command = _APP_COMMANDS.get(args.command, _chat)
    return asyncio.run(_in_application(settings, args, command))


AppCommand = Callable[["ApplicationContainer", argparse.Namespace], Awaitable[int]]


async def _in_application(settings: Settings, args: argparse.Namespace, command: AppCommand) -> int:
    """Run `command` in an application whose resources are up (the database migrated, MCP
    servers started, so profiles may allow their tools, traces exported if `OTEL_*` variables
    ask), and shut them down after (which flushes the traces)."""
    from chatscope.containers.application import ApplicationContainer
    from chatscope.containers.tracing import export_traces

    app = ApplicationContainer(settings=settings, environ=dict(os.environ))
    export_traces(app, os.environ, warn)
    await _init(app)
    try:
        return await command(app, args)
    finally:
        await _shutdown(app)


async def _chat(app: ApplicationContainer, args: argparse.Namespace) -> int:
    from chatscope.cli.commands import run_chat

    return await run_chat(app, _chat_options(args), sys.stdout, sys.stderr)


async def _sessions(app: ApplicationContainer, args: argparse.Namespace) -> int:
    from chatscope.cli.sessions import run_sessions

    return await run_sessions(app, args, sys.stdout)


async def _task(app: ApplicationContainer, args: argparse.Namespace) -> int:
    from chatscope.cli.subagents import run_task

    return await run_task(app, args, sys.stdout, sys.stderr)


async def _subagents(app: ApplicationContainer, args: argparse.Namespace) -> int:
    from chatscope.cli.subagents import list_subagents

    return list_subagents(app, args, sys.stdout)


async def _tools(app: ApplicationContainer, args: argparse.Namespace) -> int:
    from chatscope.cli.tools import list_tools

    return list_tools(app, args, sys.stdout, sys.stderr)


_APP_COMMANDS: Mapping[str, AppCommand] = MappingProxyType(
    {"sessions": _sessions, "subagents": _subagents, "task": _task, "tools": _tools}
)


async def _init(app: ApplicationContainer) -> None:
    result = app.init_resources()
    if result is not None:
        await result


async def _shutdown(app: ApplicationContainer) -> None:
    result = app.shutdown_resources()
    if result is not None:
        await result


def _chat_options(args: argparse.Namespace) -> dict[str, Any]:
    from chatscope.cli.tools import TerminalApprover

    return {
        "prompt": args.prompt,
        "provider": args.provider,
        "model": args.model,
        "base_url": args.base_url,
        "preset": args.preset,
        "system_prompt": args.system,
        "as_json": args.json,
        "session_id": args.session,
        "output_schema": args.output_schema,
        "approver": TerminalApprover(sys.stderr) if _interactive() else None,
    }


def _interactive() -> bool:
    """Whether someone at a terminal can answer an approval question."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"chatscope: warning: {message}", file=sys.stderr)


def _fail(message: str, code: int) -> int:
    print(f"chatscope: error: {message}", file=sys.stderr)
    return code
