"""Errors as OpenAI-style bodies, and the two guards every request passes.

Every failure a client can cause (malformed JSON, an unknown session or model, an oversized
body, a wrong key, too many turns) is a 4xx with one body shape::

    {"error": {"message": "...", "type": "invalid_request_error", "code": "model_not_found"}}

Nothing else ever shows a traceback: `CatchAll` logs an unexpected exception on the server
(with the request's provider key scrubbed) and answers a plain 500 of the same shape.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatscope.errors import (
    AuthenticationRequiredError,
    ChatscopeError,
    ConfigurationError,
    HistoryStoreError,
    OutputValidationError,
    ProviderError,
    UnknownProviderError,
    UnknownSessionError,
    redact_secrets,
    scrub_secret,
)

__all__ = [
    "PROVIDER_KEY_HEADER",
    "ApiError",
    "BodyLimit",
    "CatchAll",
    "api_error_of",
    "install_error_handlers",
    "scrub",
]

PROVIDER_KEY_HEADER = "x-provider-key"

_TYPES_BY_STATUS = MappingProxyType(
    {
        401: "authentication_error",
        403: "permission_error",
        429: "rate_limit_error",
        502: "upstream_error",
    }
)
_CODES_BY_STATUS = MappingProxyType(
    {
        400: "invalid_request",
        401: "invalid_api_key",
        404: "not_found",
        405: "method_not_allowed",
        413: "body_too_large",
        429: "rate_limited",
    }
)


class ApiError(Exception):
    """A failure with the status, type and code the client sees; its message is safe to show."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        kind: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _CODES_BY_STATUS.get(status, "server_error")
        self.kind = kind or _TYPES_BY_STATUS.get(status) or _default_kind(status)
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The OpenAI-style error body."""
        return {"error": {"message": self.message, "type": self.kind, "code": self.code}}

    def response(self) -> JSONResponse:
        """The error as a JSON response."""
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def _default_kind(status: int) -> str:
    return "server_error" if status >= 500 else "invalid_request_error"


def scrub(text: str, secret: str | None) -> str:
    """`text` with `secret` (a provider key) and anything shaped like a key blanked out; a
    key too short to be one is not blanked wherever its letters occur (`scrub_secret`)."""
    return redact_secrets(scrub_secret(text, secret))


def api_error_of(exc: BaseException, secret: str | None = None) -> ApiError:
    """What a client is told of a failure; an unexpected one is logged here, never shown."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ChatscopeError):
        return _chatscope_error(exc, secret)
    _log_unexpected(exc, secret)
    return ApiError(500, "the server failed to answer this request", code="internal_error")


def _chatscope_error(exc: ChatscopeError, secret: str | None) -> ApiError:
    status, text, code = _described(exc)
    return ApiError(status, scrub(text, secret), code=code)


def _described(exc: ChatscopeError) -> tuple[int, str, str]:  # noqa: PLR0911
    """Status, message and code of one of chatscope's own errors."""
    if isinstance(exc, UnknownSessionError):
        return 404, f"no session {exc.session_id!r}", "session_not_found"
    if isinstance(exc, UnknownProviderError):
        return 404, f"no model {exc.name!r}", "model_not_found"
    if isinstance(exc, AuthenticationRequiredError):
        text = f"no API key for provider {exc.provider!r}: send one in the X-Provider-Key header"
        return 400, text, "provider_key_required"
    if isinstance(exc, ProviderError):
        return 502, str(exc), f"provider_{exc.category}"
    if isinstance(exc, OutputValidationError):
        return 502, str(exc), "invalid_output"
    if isinstance(exc, HistoryStoreError):
        return 503, str(exc), "storage_unavailable"
    if isinstance(exc, ConfigurationError):
        return 500, str(exc), "configuration_error"
    return 500, str(exc), "internal_error"


def _log_unexpected(exc: BaseException, secret: str | None) -> None:
    shown = "".join(traceback.format_exception(exc))
    structlog.get_logger("chatscope.web").error(
        "request_failed", error_type=type(exc).__name__, traceback=scrub(shown, secret)
    )


def install_error_handlers(app: FastAPI) -> None:
    """Every error FastAPI and chatscope raise becomes an OpenAI-style body."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(ChatscopeError, _on_chatscope_error)
    app.add_exception_handler(RequestValidationError, _on_invalid_request)
    app.add_exception_handler(HTTPException, _on_http_error)


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    return api_error_of(exc).response()


async def _on_chatscope_error(request: Request, exc: Exception) -> JSONResponse:
    return api_error_of(exc, request.headers.get(PROVIDER_KEY_HEADER)).response()


async def _on_invalid_request(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    if any(error.get("type") == "json_invalid" for error in errors):
        return ApiError(400, "the request body is not valid JSON", code="invalid_json").response()
    problems = "; ".join(_describe(error) for error in errors[:5]) or "invalid request"
    return ApiError(400, problems, code="invalid_request").response()


def _describe(error: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return f"{where or 'body'}: {error.get('msg', 'invalid')}"


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "error"
    headers = exc.headers if isinstance(exc, HTTPException) else None
    return ApiError(status, str(detail), headers=headers).response()


class BodyLimit:
    """Refuses a request body over `max_bytes` with 413: by its declared length before it is
    read, or as soon as a streamed body passes the limit."""

    __slots__ = ("_app", "_max_bytes")

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self._max_bytes:
            await _too_large(self._max_bytes).response()(scope, receive, send)
            return
        await self._app(scope, _CountingReceive(receive, self._max_bytes), send)


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, f"the request body is larger than {max_bytes} bytes")


class _CountingReceive:
    """`receive` that counts body bytes and raises 413 once they pass the limit."""

    __slots__ = ("_left", "_max_bytes", "_receive")

    def __init__(self, receive: Receive, max_bytes: int) -> None:
        self._receive = receive
        self._max_bytes = max_bytes
        self._left = max_bytes

    async def __call__(self) -> Message:
        message = await self._receive()
        self._left -= len(message.get("body", b""))
        if self._left < 0:
            # FastAPI passes an HTTPException raised while reading a body on unchanged.
            raise HTTPException(413, _too_large(self._max_bytes).message)
        return message


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class CatchAll:
    """The last line: an exception nothing else handled is logged (provider key scrubbed) and
    answered with a plain 500 body, never a traceback; it is not raised on to the server."""

    __slots__ = ("_app",)

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        tracking = _TrackingSend(send)
        try:
            await self._app(scope, receive, tracking)
        except Exception as exc:  # the one place that answers any failure
            error = api_error_of(exc, _provider_key(scope))
            if not tracking.started:
                await error.response()(scope, receive, send)


class _TrackingSend:
    """`send` that remembers whether the response has started."""

    __slots__ = ("_send", "started")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)


def _provider_key(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == PROVIDER_KEY_HEADER.encode():
            return bytes(value).decode("latin-1").strip() or None
    return None
