"""The `chatscope` entry point: parse flags, read settings once, build the container, run.

This is the only place that reads the process environment and configures logging. Errors of
chatscope's own become one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from chatscope.cli.commands import list_presets, run_chat, show_config
from chatscope.cli.serve import add_serve_parser, print_key_hash, run_serve
from chatscope.cli.sessions import add_sessions_parser, run_sessions
from chatscope.cli.subagents import add_subagent_parsers, list_subagents, run_task
from chatscope.cli.tools import TerminalApprover, add_tools_parser, list_tools
from chatscope.config.loading import load_settings
from chatscope.config.presets import PRESETS
from chatscope.config.settings import PROVIDER_NAMES, Settings
from chatscope.containers.application import ApplicationContainer
from chatscope.errors import ChatscopeError, ConfigurationError

__all__ = ["build_parser", "main"]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="chatscope", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    chat = commands.add_parser("chat", help="send one prompt and stream the answer")
    chat.add_argument("prompt", help="what to ask")
    chat.add_argument("--provider", choices=PROVIDER_NAMES, help="provider adapter to use")
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
    _add_env_file(chat)
    config = commands.add_parser("config", help="inspect configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    show = config_commands.add_parser("show", help="print effective settings, secrets redacted")
    _add_env_file(show)
    commands.add_parser("presets", help="list the named OpenAI-compatible endpoints")
    add_sessions_parser(commands, _add_env_file)
    add_subagent_parsers(commands, _add_env_file)
    add_tools_parser(commands, _add_env_file)
    add_serve_parser(commands, _add_env_file)
    return parser


def _add_env_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", type=Path, help="read settings from this .env file too")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except ConfigurationError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except ChatscopeError as exc:
        return _fail(str(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)


def _run(args: argparse.Namespace) -> int:
    if args.command == "presets":  # a fixed table: no settings to read
        list_presets(sys.stdout)
        return 0
    if args.command == "serve" and args.hash_key:  # no settings needed
        return print_key_hash(sys.stdin, sys.stdout)
    settings = load_settings(args.env_file)
    if args.command == "config":
        show_config(settings, sys.stdout)
        return 0
    if args.command == "serve":  # uvicorn runs its own event loop
        return run_serve(settings, args, sys.stderr)
    command = _APP_COMMANDS.get(args.command, _chat)
    return asyncio.run(_in_application(settings, args, command))


AppCommand = Callable[[ApplicationContainer, argparse.Namespace], Awaitable[int]]


async def _in_application(settings: Settings, args: argparse.Namespace, command: AppCommand) -> int:
    """Run `command` in an application whose resources are up (the database migrated, MCP
    servers started, so profiles may allow their tools), and shut them down after."""
    app = ApplicationContainer(settings=settings, environ=dict(os.environ))
    await _init(app)
    try:
        return await command(app, args)
    finally:
        await _shutdown(app)


async def _chat(app: ApplicationContainer, args: argparse.Namespace) -> int:
    return await run_chat(app, _chat_options(args), sys.stdout, sys.stderr)


async def _sessions(app: ApplicationContainer, args: argparse.Namespace) -> int:
    return await run_sessions(app, args, sys.stdout)


async def _task(app: ApplicationContainer, args: argparse.Namespace) -> int:
    return await run_task(app, args, sys.stdout, sys.stderr)


async def _subagents(app: ApplicationContainer, args: argparse.Namespace) -> int:
    return list_subagents(app, args, sys.stdout)


async def _tools(app: ApplicationContainer, args: argparse.Namespace) -> int:
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


def _fail(message: str, code: int) -> int:
    print(f"chatscope: error: {message}", file=sys.stderr)
    return code
