"""structlog set-up, done once at the entry point: JSON lines off a TTY, console on one.

Log lines go to stderr so that `--json` output on stdout stays machine-readable. A processor
redacts anything secret-shaped before rendering.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any, Literal, TextIO

import structlog
from pydantic import SecretStr

from chatscope.errors import redact_secrets

__all__ = ["configure_logging", "redact_processor"]

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
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    )
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
