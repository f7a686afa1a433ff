"""The telemetry sink of a running application: every scope's events become structlog events."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

__all__ = ["StructlogSink"]

_WARNINGS = frozenset({"api_error", "compression_failed", "provider_switch"})


class StructlogSink:
    """Sends telemetry to a structlog logger; errors at warning level, the rest at info."""

    __slots__ = ("_logger",)

    def __init__(self, logger: Any) -> None:
        self._logger = logger

    def wants(self, event: str) -> bool:
        """Whether the logger's level lets `event` through (loggers that cannot say: yes)."""
        is_enabled_for = getattr(self._logger, "is_enabled_for", None)
        if is_enabled_for is None:
            return True
        return bool(is_enabled_for(logging.WARNING if event in _WARNINGS else logging.INFO))

    def emit(self, event: str, fields: Mapping[str, Any]) -> None:
        """Log one event."""
        method = self._logger.warning if event in _WARNINGS else self._logger.info
        method(event, **fields)
