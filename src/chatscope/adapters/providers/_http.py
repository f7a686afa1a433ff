"""The request edge every provider adapter shares: URLs, status checks, JSON, typed errors.

Wire formats differ; failing the same way does not. Every adapter raises the same typed errors
for the same HTTP and transport failures, and none lets its call's key into a message.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Any

import httpx
from pydantic_core import from_json

from chatscope.adapters.providers._wire_history import SentHistory
from chatscope.errors import (
    AuthenticationFailedError,
    ErrorCategory,
    InvalidRequestError,
    MissingProviderRuntimeError,
    ModelNotFoundError,
    ProviderError,
    ProviderNetworkError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
    redact_secrets,
    scrub_secret,
)
from chatscope.services.runtime.invocation import ModelInvocation

__all__ = [
    "HttpProvider",
    "endpoint",
    "error_from_response",
    "is_event_stream",
    "load_json",
    "parse_json",
    "parse_retry_after",
    "raise_for_status",
    "read_json",
    "streamed_response",
    "translate_errors",
]

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
    kind, category = _classify(status, message, retry_after)
    return kind(
        message, provider=provider, category=category, status=status, retry_after=retry_after
    )


def _classify(
    status: int, message: str, retry_after: float | None
) -> tuple[type[ProviderError], ErrorCategory]:
    if status == 429:
        # A server that says when to come back is rate limiting, whatever its wording (Gemini
        # reports per-minute limits as "exceeded your current quota" with a RetryInfo delay).
        if retry_after is None and _QUOTA_HINTS.search(message):
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
    """The provider's message, secrets blanked before it is cut (a cut key no longer looks like
    one). OpenAI, Anthropic and Gemini all nest it as `error.message`; else the raw text."""
    return redact_secrets(_raw_message(payload, body))[:_MESSAGE_LIMIT]


def _raw_message(payload: Any, body: bytes) -> str:
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return body.decode("utf-8", errors="replace").strip() or "(empty response body)"


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
            delay = _float_or_none(str(detail.get("retryDelay", "")).removesuffix("s"))
            return max(delay, 0.0) if delay is not None else None
    return None


def _float_or_none(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def endpoint(invocation: ModelInvocation, path: str) -> str:
    """`path` under the invocation's base URL: there is no default host to fall back to."""
    if invocation.base_url is None:
        raise MissingProviderRuntimeError(["base_url"], runtime_id=invocation.runtime_id)
    return f"{invocation.base_url.rstrip('/')}{path}"


def is_event_stream(response: httpx.Response) -> bool:
    """Whether the body is SSE: decided by what came back, not by what was asked for."""
    return "text/event-stream" in response.headers.get("content-type", "")


def parse_json(data: str | bytes) -> Any:
    """`json.loads(data)`: the same value, or the same error, in about 40% of its time.

    A streamed reply parses one payload per token, so this is pydantic-core's JSON parser
    (jiter, already a dependency through pydantic). It refuses a few payloads `json` takes (an
    escaped lone surrogate); those, and anything else it refuses, are left to `json.loads`,
    which gives the result or the error `json` always gave. Keys and values are new objects
    on every call: the parser's process-wide string cache is turned off.
    """
    try:
        return from_json(data, cache_strings=False)
    except (ValueError, TypeError):
        return json.loads(data)


def load_json(data: str | bytes, provider: str) -> Any:
    """Parse one JSON payload, turning garbage into a protocol error."""
    try:
        return parse_json(data)
    except ValueError as exc:
        raise StreamProtocolError(f"invalid JSON from provider: {exc}", provider=provider) from exc


async def read_json(response: httpx.Response, provider: str) -> dict[str, Any]:
    """The whole body of a non-streamed response as a JSON object."""
    payload = load_json(await response.aread(), provider)
    if not isinstance(payload, dict):
        raise StreamProtocolError("response body is not a JSON object", provider=provider)
    return payload


async def raise_for_status(response: httpx.Response, provider: str) -> None:
    """Raise the typed error of an HTTP error response, after reading its body.

    Responses answers an unknown model with 400 where Chat Completions uses 404; both name it
    `model_not_found`, and both become `ModelNotFoundError`.
    """
    if response.status_code < 400:
        return
    body = await response.aread()
    error = error_from_response(provider, response.status_code, response.headers, body)
    if _error_code(body) == "model_not_found" and not isinstance(error, ModelNotFoundError):
        error = ModelNotFoundError(
            error.provider_message,
            provider=provider,
            status=error.status,
            retry_after=error.retry_after,
        )
    raise error


def _error_code(body: bytes) -> Any:
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    return error.get("code") if isinstance(error, dict) else None


class translate_errors:  # noqa: N801 - used like the function-style context managers it replaced
    """Turn httpx failures into `ProviderNetworkError`s and keep the key out of every message.

    `redact_secrets` only knows key shapes; a provider that echoes an unusual key verbatim is
    caught here by replacing the exact secret. A class rather than a generator-based context
    manager: it wraps every model call, and costs a third as much.
    """

    __slots__ = ("_provider", "_secret")

    def __init__(self, provider: str, secret: str | None) -> None:
        self._provider = provider
        self._secret = secret

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _: object
    ) -> None:
        if exc is not None:
            reraise_translated(exc, self._provider, self._secret)


def reraise_translated(exc: BaseException, provider: str, secret: str | None) -> None:
    """Raise the typed, key-scrubbed error for `exc`; return if it is not ours to translate."""
    translated = _translated(exc, provider)
    if translated is None:
        return
    error, cause = translated
    scrubbed = _scrubbed(error, secret)
    # Never chain to text holding the key, or a traceback would print it.
    leaks = secret is not None and (scrubbed is not error or secret in str(cause))
    raise scrubbed from (None if leaks else cause)


def _translated(
    exc: BaseException, provider: str
) -> tuple[ProviderError, BaseException | None] | None:
    """The typed error standing for `exc` and the cause to chain it to."""
    if isinstance(exc, ProviderError):
        return exc, exc.__cause__
    if isinstance(exc, httpx.TimeoutException):
        message = f"request timed out ({type(exc).__name__})"
        return ProviderNetworkError(message, provider=provider, category=ErrorCategory.TIMEOUT), exc
    if isinstance(exc, httpx.DecodingError):
        return StreamProtocolError(f"undecodable response body: {exc}", provider=provider), exc
    if isinstance(exc, KeyError | TypeError | AttributeError):
        # A JSON payload whose shape is not the documented one (a list where an object belongs,
        # a missing required key) is the provider's protocol fault, not a crash of ours.
        message = f"unexpected payload shape ({type(exc).__name__}: {exc})"
        return StreamProtocolError(message, provider=provider), exc
    if isinstance(exc, httpx.TransportError):
        message = f"connection failed ({type(exc).__name__}): {exc}"
        return ProviderNetworkError(message, provider=provider, category=ErrorCategory.NETWORK), exc
    return None


def _scrubbed(error: ProviderError, secret: str | None) -> ProviderError:
    message = scrub_secret(error.provider_message, secret)
    if message == error.provider_message:
        return error
    return type(error)(
        message,
        provider=error.provider,
        category=error.category,
        status=error.status,
        retry_after=error.retry_after,
    )


class HttpProvider:
    """What every HTTP adapter holds: the shared client, its name, and its scope's history as
    last sent, in wire form (`sent`), so the next request maps only what is new.

    Model, key and base URL come from each `ModelInvocation` (REQ-SP4-002/003), and `sent` is
    reused only for a history that starts with the very messages it was made from, so one
    instance could still serve any number of runtime scopes at once (a scope gets its own,
    and with it its own `sent`); `__slots__` keeps anything else out.
    """

    __slots__ = ("_client", "_name", "_sent")
    default_name = "http"

    def __init__(self, client: httpx.AsyncClient, *, name: str | None = None) -> None:
        self._client = client
        self._name = name or self.default_name
        self._sent = SentHistory()

    @property
    def name(self) -> str:
        """The provider name: it scopes signatures and reasoning replayed to this provider."""
        return self._name


class streamed_response:  # noqa: N801 - used like the function-style context managers it replaced
    """POST `body`, check the status, and hand out the open response; closed on exit.

    Everything raised inside, transport failures and parse errors alike, leaves as a typed
    `ProviderError` with the call's key scrubbed. Built on `client.send(..., stream=True)`
    rather than nested generator-based context managers, as it wraps every model call.
    """

    __slots__ = ("_body", "_client", "_headers", "_provider", "_response", "_secret", "_url")

    def __init__(
        self,
        client: httpx.AsyncClient,
        provider: str,
        secret: str | None,
        url: str,
        *,
        headers: Mapping[str, str],
        body: Mapping[str, Any],
    ) -> None:
        self._client, self._provider, self._secret = client, provider, secret
        self._url, self._headers, self._body = url, headers, body
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> httpx.Response:
        try:
            request = self._client.build_request(
                "POST", self._url, headers=self._headers, json=self._body
            )
            self._response = await self._client.send(request, stream=True)
            await raise_for_status(self._response, self._provider)
        except BaseException as exc:
            await self._close()
            reraise_translated(exc, self._provider, self._secret)
            raise
        return self._response

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _: object
    ) -> None:
        await self._close()
        if exc is not None:
            reraise_translated(exc, self._provider, self._secret)

    async def _close(self) -> None:
        if self._response is not None:
            response, self._response = self._response, None
            await response.aclose()
