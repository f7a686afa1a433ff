"""structlog set-up, done once at the entry point: JSON lines off a TTY, console on one.

Log lines go to stderr so that `--json` output on stdout stays machine-readable. A processor
redacts anything secret-shaped before rendering. On a console a retry notice (an `api_error`
with `retry_in`) is one short line a person reads, `chatscope: retrying in 5 s: HTTP 503
(overloaded)`; JSON lines keep every field.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, Literal, TextIO

import structlog
from pydantic import SecretStr

from chatscope.errors import redact_secrets

__all__ = ["ConsoleLines", "configure_logging", "redact_processor", "retry_line"]

_SECRET_KEYS = frozenset({"api_key", "authorization", "x-api-key", "x-goog-api-key", "token"})


def redact_processor(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Blank secret fields and secret-shaped text in every event."""
    for key, value in event_dict.items():
        if key.lower() in _SECRET_KEYS or isinstance(value, SecretStr):
            event_dict[key] = "[REDACTED]"
        elif isinstance(value, str):
            event_dict[key] = redact_secrets(value)
    return event_dict


def configure_logging(
    level: str = "warning",
    log_format: Literal["auto", "json", "console"] = "auto",
    stream: TextIO | None = None,
) -> Iterator[None]:
    """Configure structlog for this process (a dependency-injector `Resource`); reset on exit."""
    output = stream or sys.stderr
    console = log_format == "console" or (log_format == "auto" and output.isatty())
    renderer: Any = ConsoleLines() if console else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(output),
        cache_logger_on_first_use=True,
    )
    # The MCP SDK logs through the standard library; its warnings (a dead server's session
    # failing to close) are reported by chatscope as tool errors, not on the chat's stderr.
    sdk_logger = logging.getLogger("mcp")
    sdk_level = sdk_logger.level
    sdk_logger.setLevel(logging.ERROR)
    yield
    sdk_logger.setLevel(sdk_level)
    structlog.reset_defaults()


class ConsoleLines:
    """The console renderer: a retry notice as one short line, other events as structlog's."""

    __slots__ = ("_console",)

    def __init__(self) -> None:
        self._console = structlog.dev.ConsoleRenderer()

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> str:
        """Render one event."""
        if event_dict.get("event") == "api_error" and event_dict.get("retry_in") is not None:
            return retry_line(event_dict)
        rendered: str = self._console(logger, method_name, event_dict)
        return rendered


def retry_line(fields: Mapping[str, Any]) -> str:
    """`chatscope: retrying in 5 s: HTTP 503 (overloaded)` for a retried call's `api_error`."""
    status, category = fields.get("status"), fields.get("category") or "error"
    reason = f"HTTP {status} ({category})" if status is not None else f"{category} failure"
    return f"chatscope: retrying in {_seconds(float(fields['retry_in']))} s: {reason}"


def _seconds(delay: float) -> str:
    """A wait as a person reads it: `5`, `2.5`, `0.05`, `27`."""
    if delay < 0.01:
        return "0"
    return f"{delay:.2g}" if delay < 10 else f"{delay:.0f}"
