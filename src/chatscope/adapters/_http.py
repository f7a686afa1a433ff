"""Shared HTTP plumbing of the provider adapters: turning error responses into typed errors."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Any

from chatscope.errors import (
    AuthenticationFailedError,
    ErrorCategory,
    InvalidRequestError,
    ModelNotFoundError,
    ProviderError,
    ProviderNetworkError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
)

__all__ = ["error_from_response", "parse_retry_after"]

_CONTEXT_LENGTH_HINTS = re.compile(
    r"context[_ ]length|context window|too many tokens|maximum context|prompt is too long", re.I
)
_QUOTA_HINTS = re.compile(
    r"insufficient_quota|exceeded your current quota|billing|credit balance", re.I
)
_MESSAGE_LIMIT = 500


def error_from_response(
    provider: str, status: int, headers: Mapping[str, str], body: bytes
) -> ProviderError:
    """The typed error for an HTTP error response, with the provider's own message."""
    payload = _json_or_none(body)
    message = _error_message(payload, body)
    retry_after = parse_retry_after(headers, payload)
    kind, category = _classify(status, message)
    return kind(
        message, provider=provider, category=category, status=status, retry_after=retry_after
    )


def _classify(status: int, message: str) -> tuple[type[ProviderError], ErrorCategory]:
    if status == 429:
        if _QUOTA_HINTS.search(message):
            return QuotaExceededError, ErrorCategory.QUOTA
        return RateLimitError, ErrorCategory.RATE_LIMIT
    if status in (400, 413, 422):
        if status == 413 or _CONTEXT_LENGTH_HINTS.search(message):
            return InvalidRequestError, ErrorCategory.CONTEXT_LENGTH
        return InvalidRequestError, ErrorCategory.INVALID_REQUEST
    return _BY_STATUS.get(status) or _by_range(status)


_BY_STATUS: Mapping[int, tuple[type[ProviderError], ErrorCategory]] = MappingProxyType(
    {
        401: (AuthenticationFailedError, ErrorCategory.AUTHENTICATION),
        402: (QuotaExceededError, ErrorCategory.QUOTA),
        403: (AuthenticationFailedError, ErrorCategory.PERMISSION),
        404: (ModelNotFoundError, ErrorCategory.NOT_FOUND),
        408: (ProviderNetworkError, ErrorCategory.TIMEOUT),
        503: (ServerError, ErrorCategory.OVERLOADED),
        529: (ServerError, ErrorCategory.OVERLOADED),
    }
)


def _by_range(status: int) -> tuple[type[ProviderError], ErrorCategory]:
    if status >= 500:
        return ServerError, ErrorCategory.SERVER
    return InvalidRequestError, ErrorCategory.INVALID_REQUEST


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _error_message(payload: Any, body: bytes) -> str:
    """OpenAI, Anthropic and Gemini all nest it as `error.message`; fall back to the raw text."""
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:_MESSAGE_LIMIT]
        if isinstance(error, str):
            return error[:_MESSAGE_LIMIT]
    text = body.decode("utf-8", errors="replace").strip()
    return text[:_MESSAGE_LIMIT] or "(empty response body)"


def parse_retry_after(headers: Mapping[str, str], payload: Any = None) -> float | None:
    """Seconds to wait: `retry-after-ms`, `Retry-After` (seconds or HTTP date), Gemini RetryInfo."""
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = _float_or_none(lowered.get("retry-after-ms"))
    if millis is not None:
        return max(millis / 1000.0, 0.0)
    header = lowered.get("retry-after")
    if header is not None:
        return _retry_after_header(header)
    return _gemini_retry_delay(payload)


def _retry_after_header(value: str) -> float | None:
    seconds = _float_or_none(value)
    if seconds is not None:
        return max(seconds, 0.0)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _gemini_retry_delay(payload: Any) -> float | None:
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if not isinstance(payload, dict) or not isinstance(payload.get("error"), dict):
        return None
    for detail in payload["error"].get("details") or ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            delay = str(detail.get("retryDelay", ""))
            return _float_or_none(delay.removesuffix("s"))
    return None


def _float_or_none(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None
