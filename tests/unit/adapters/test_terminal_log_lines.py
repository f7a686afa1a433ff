"""A retry on a terminal is one short line a person reads; off a terminal it stays a JSON line.

The retry notice (`api_error` with `retry_in`) is rendered as `chatscope: retrying in 5 s:
HTTP 503`; every other event, and every event off a terminal, keeps its usual rendering.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import pty
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog
from hypothesis import given
from hypothesis import strategies as st

from chatscope.adapters.logging.setup import configure_logging
from chatscope.adapters.logging.sink import StructlogSink
from chatscope.errors import ServerError
from chatscope.services.events import ProviderEvent
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.testing.fakes import FunctionProvider, ScriptedReply
from tests.support.cli import cli_env, openai_text_stream
from tests.support.replay_server import ScriptedResponse, replay_server
from tests.support.scopes import make_chat, make_context

SHORT_LINE = 100


class Terminal(io.StringIO):
    """Captured output that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@contextmanager
def logging_to(stream: io.StringIO, log_format: str = "auto") -> Iterator[StructlogSink]:
    """Logging configured as the application does, writing to `stream`."""
    setup = configure_logging("warning", log_format, stream)  # type: ignore[arg-type]
    next(setup)
    try:
        yield StructlogSink(structlog.get_logger("chatscope.telemetry"))
    finally:
        next(setup, None)  # the set-up's own clean-up: structlog back to its defaults


def retry_fields(**overrides: Any) -> dict[str, Any]:
    """The fields of a retried call's `api_error`, as a scope's telemetry sends them."""
    fields: dict[str, Any] = {
        "session_id": "s" * 32,
        "runtime_id": "r" * 32,
        "provider": "openai",
        "model": "gpt-4o-mini",
        "timestamp": "2026-01-01T00:00:00+00:00",
        "duration_ms": 12.5,
        "error_type": "ServerError",
        "error": "openai HTTP 503 overloaded: The server is overloaded, try again later.",
        "category": "overloaded",
        "status": 503,
        "retryable": True,
        "attempt": 1,
        "retry_in": 5.0,
    }
    return fields | overrides


def test_a_retry_on_a_terminal_is_one_short_line() -> None:
    """`retrying in 5 s: HTTP 503`, not a log record."""
    terminal = Terminal()
    with logging_to(terminal) as sink:
        sink.emit("api_error", retry_fields())
    assert terminal.getvalue() == "chatscope: retrying in 5 s: HTTP 503 (overloaded)\n"


def test_a_retry_off_a_terminal_stays_a_json_line() -> None:
    """Machines reading stderr still get every field."""
    pipe = io.StringIO()
    with logging_to(pipe) as sink:
        sink.emit("api_error", retry_fields())
    record = json.loads(pipe.getvalue())
    assert (record["event"], record["retry_in"], record["status"]) == ("api_error", 5.0, 503)


@given(
    delay=st.floats(min_value=0, max_value=300, allow_nan=False),
    status=st.none() | st.integers(min_value=400, max_value=599),
    category=st.sampled_from(["rate_limit", "server", "overloaded", "network", "timeout"]),
    error=st.text(max_size=300),
)
def test_any_retry_notice_on_a_terminal_is_one_short_line(
    delay: float, status: int | None, category: str, error: str
) -> None:
    """Whatever failed and however long the wait, a person reads one short line."""
    terminal = Terminal()
    fields = retry_fields(retry_in=delay, status=status, category=category, error=error)
    with logging_to(terminal) as sink:
        sink.emit("api_error", fields)
    output = terminal.getvalue()
    assert output.count("\n") == 1
    assert output.endswith("\n")
    assert output.startswith("chatscope: retrying in ")
    assert len(output) < SHORT_LINE


async def test_a_retried_call_tells_how_long_it_waits() -> None:
    """The chat loop's `api_error` of a retried attempt carries the wait; the last one none."""
    sink = RecordingSink()
    failures = [ServerError("busy", provider="demo", status=503)] * 2

    def respond(invocation: ModelInvocation) -> list[ProviderEvent]:
        if failures:
            raise failures.pop()
        return ScriptedReply(text="done").events()

    await make_chat(make_context(FunctionProvider(respond), sink=sink)).send("x")
    waits = [event["retry_in"] for event in sink.named("api_error")]
    assert len(waits) == 2
    assert all(isinstance(wait, float) and wait >= 0 for wait in waits)


async def test_the_cli_on_a_terminal_prints_one_line_per_retry(tmp_path: Path) -> None:
    """A real `chatscope chat` whose stderr is a terminal: a 503, then the answer."""
    busy = ScriptedResponse.json_body({"error": {"message": "overloaded"}}, 503)
    env = cli_env(
        tmp_path / "data",
        OPENAI_API_KEY="sk-local-test-key-1",
        CHATSCOPE_RETRY__INITIAL_DELAY="0.05",
        CHATSCOPE_RETRY__JITTER="0",
        TERM="dumb",
    )
    with replay_server(busy, ScriptedResponse.sse(openai_text_stream("ok"))) as server:
        code, stderr = await _run_with_terminal_stderr(
            "chat", "hi", "--provider", "openai", "--model", "m",
            "--base-url", f"{server.url}/v1", cwd=tmp_path, env=env,
        )  # fmt: skip
    assert code == 0, stderr
    lines = [line for line in stderr.splitlines() if "retrying" in line]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("chatscope: retrying in 0.05 s: HTTP 503")
    assert "{" not in stderr


async def _run_with_terminal_stderr(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal; its exit code and what it wrote there."""
    controller, terminal = pty.openpty()
    try:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "chatscope", *args, cwd=cwd, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=terminal,
        )  # fmt: skip
        os.close(terminal)
        await asyncio.wait_for(child.communicate(), timeout=60)
        output = await asyncio.to_thread(_read_all, controller)
    finally:
        os.close(controller)
    assert child.returncode is not None
    return child.returncode, output.replace("\r\n", "\n")


def _read_all(descriptor: int) -> str:
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(descriptor, 4096)
        except OSError:  # the other end closed: everything has been read
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")
