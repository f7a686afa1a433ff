"""`chatscope serve`: the HTTP API and the chat page on uvicorn; `--hash-key` makes a key hash.

One worker serves an app built here; with `--workers N` each uvicorn worker process builds its
own container through `chatscope.web.app:app_from_environment`. SIGTERM stops the server
gracefully: open requests get `server.grace_seconds`, and turns still running get the same
again before they are cancelled (a cancelled turn stores nothing).
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any, TextIO

import uvicorn

from chatscope.config.settings import Settings
from chatscope.containers.application import ApplicationContainer
from chatscope.containers.tracing import export_traces
from chatscope.errors import ConfigurationError
from chatscope.web import create_app, hash_key
from chatscope.web.app import ENV_FILE_VARIABLE
from chatscope.web.tenancy import is_loopback

__all__ = ["add_serve_parser", "check_exposure", "print_key_hash", "run_serve"]

APP_FACTORY = "chatscope.web.app:app_from_environment"


def add_serve_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    add_common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add `serve [--host H] [--port P] [--workers N] | serve --hash-key`."""
    serve = commands.add_parser(
        "serve", help="serve the OpenAI-compatible API, saved sessions and the chat page"
    )
    serve.add_argument("--host", help="address to listen on (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: server.port, 8000)")
    serve.add_argument("--workers", type=_positive, default=1, help="worker processes (default: 1)")
    serve.add_argument(
        "--hash-key",
        action="store_true",
        help="read an API key from stdin, print the sha256:<hex> form server.api_keys takes",
    )
    add_common(serve)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def print_key_hash(stdin: TextIO, out: TextIO) -> int:
    """Print the hash of the key on stdin (its first line, surrounding blanks removed)."""
    key = stdin.readline().strip()
    if not key:
        raise ConfigurationError("--hash-key reads the key from stdin; it was empty")
    out.write(hash_key(key) + "\n")
    return 0


def check_exposure(host: str, api_keys: dict[str, str]) -> None:
    """Without API keys the server may listen on loopback only."""
    if not api_keys and not is_loopback(host):
        raise ConfigurationError(
            f"refusing to serve on {host!r} without API keys: set CHATSCOPE_SERVER__API_KEYS "
            "(hashes from `chatscope serve --hash-key`), or listen on 127.0.0.1"
        )


def run_serve(settings: Settings, args: argparse.Namespace, err: TextIO) -> int:
    """Serve until stopped (SIGINT or SIGTERM)."""
    host = args.host or settings.server.host
    port = settings.server.port if args.port is None else args.port
    check_exposure(host, settings.server.api_keys)
    err.write(_announcement(settings, host, port, args.workers))
    err.flush()
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "timeout_graceful_shutdown": settings.server.grace_seconds,
        "log_level": settings.log_level,
    }
    if args.workers > 1:
        if args.env_file is not None:
            os.environ[ENV_FILE_VARIABLE] = str(args.env_file.resolve())
        uvicorn.run(APP_FACTORY, factory=True, workers=args.workers, **options)
    else:
        container = ApplicationContainer(settings=settings, environ=dict(os.environ))
        export_traces(container, os.environ, lambda line: _warn(err, line))
        app = create_app(container)
        # This process serves only this app, so what start-up made lives as long as it: frozen,
        # the collector never walks it again (a full collection of it paused every open
        # stream by about 0.1 s; see `app_from_environment` for `--workers`).
        gc.freeze()
        _until_stopped(lambda: uvicorn.run(app, **options))
    return 0


def _warn(err: TextIO, message: str) -> None:
    err.write(f"chatscope: warning: {message}\n")
    err.flush()


def _until_stopped(serve: Callable[[], None]) -> None:
    """Run `serve`; a stop by SIGTERM or SIGINT is a normal end (exit status 0).

    Once it has shut down gracefully, uvicorn raises the signal that stopped it again under the
    handlers it found; a handler that does nothing makes that the end of `serve`, as it is
    with several workers.
    """
    stopping = (signal.SIGTERM, signal.SIGINT)
    previous = {signum: signal.signal(signum, _stopped) for signum in stopping}
    try:
        serve()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stopped(signum: int, frame: FrameType | None) -> None:
    """uvicorn has already stopped gracefully when this runs."""


def _announcement(settings: Settings, host: str, port: int, workers: int) -> str:
    where = f"http://{host}:{port}" + (f" with {workers} workers" if workers > 1 else "")
    tenants = len(settings.server.api_keys)
    if not tenants:
        return (
            f"chatscope: serving on {where}: no API keys configured, so one local tenant "
            "and loopback clients only\n"
        )
    return f"chatscope: serving on {where} for {tenants} tenant(s) with API keys\n"
