"""What the OpenAI Chat Completions and Responses adapters share: the request edge and the errors.

Both speak HTTP+JSON with a bearer key, stream SSE, and report failures the same way, so the
plumbing lives here once; each adapter keeps only its own wire format.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast

import httpx

from chatscope.adapters._http import error_from_response
from chatscope.adapters._sse import SSEEvent, iter_sse_lines
from chatscope.errors import (
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
)
from chatscope.services.invocation import ModelInvocation
from chatscope.services.messages import ToolCallBlock

__all__ = [
    "PendingCall",
    "auth_headers",
    "endpoint",
    "error_from_payload",
    "is_event_stream",
    "load_json",
    "parse_arguments",
    "raise_for_status",
    "read_json",
    "sse_stream",
    "translate_errors",
    "wire_call_id",
]

_HASHED_ID_CHARS = 32

# Codes OpenAI puts on errors that arrive inside a 200 stream (`error` / `response.failed`
# events, or an `error` chunk on Chat Completions); anything else is reported as a server error.
_ERRORS_BY_CODE: Mapping[str, tuple[type[ProviderError], ErrorCategory]] = MappingProxyType(
    {
        "rate_limit_exceeded": (RateLimitError, ErrorCategory.RATE_LIMIT),
        "insufficient_quota": (QuotaExceededError, ErrorCategory.QUOTA),
        "context_length_exceeded": (InvalidRequestError, ErrorCategory.CONTEXT_LENGTH),
        "invalid_prompt": (InvalidRequestError, ErrorCategory.INVALID_REQUEST),
        "invalid_request_error": (InvalidRequestError, ErrorCategory.INVALID_REQUEST),
        "model_not_found": (ModelNotFoundError, ErrorCategory.NOT_FOUND),
        "server_error": (ServerError, ErrorCategory.SERVER),
    }
)


@dataclass(slots=True)
class PendingCall:
    """A tool call whose JSON arguments are still arriving in fragments."""

    id: str
    name: str
    parts: list[str] = field(default_factory=list)

    def block(self, provider: str) -> ToolCallBlock:
        """The finished call; its arguments must now parse as one JSON object."""
        arguments = parse_arguments("".join(self.parts), self.name, provider)
        # Some OpenAI-compatible servers omit the id; the call still needs one to pair a result.
        call_id = self.id or f"call_{uuid.uuid4().hex[:24]}"
        return ToolCallBlock.create(call_id, self.name, arguments)


def endpoint(invocation: ModelInvocation, path: str) -> str:
    """`path` under the invocation's base URL: there is no default host to fall back to."""
    if invocation.base_url is None:
        raise MissingProviderRuntimeError(["base_url"], runtime_id=invocation.runtime_id)
    return f"{invocation.base_url}{path}"


def auth_headers(secret: str | None) -> dict[str, str]:
    """The bearer header of one request, or none at all for local servers without a key."""
    return {"Authorization": f"Bearer {secret}"} if secret is not None else {}


def wire_call_id(call_id: str, limit: int) -> str:
    """`call_id` if OpenAI accepts it, else a stable stand-in so a call and its result still pair.

    Ids from other providers can be empty or too long (Chat Completions rejects tool call ids
    over 40 characters); hashing keeps the mapping deterministic across calls without any state.
    """
    if call_id and len(call_id) <= limit:
        return call_id
    digest = hashlib.sha256(call_id.encode()).hexdigest()
    return f"call_{digest[:_HASHED_ID_CHARS]}"


def is_event_stream(response: httpx.Response) -> bool:
    """Whether the body is SSE: decided by what came back, not by what was asked for."""
    return "text/event-stream" in response.headers.get("content-type", "")


@asynccontextmanager
async def sse_stream(response: httpx.Response) -> AsyncIterator[AsyncIterator[SSEEvent]]:
    """The SSE events of `response`, closed on exit even when parsing stops early on an error.

    `iter_sse_lines` is called directly rather than through `iter_sse`, saving one generator hop
    per event; it is an async generator typed as a plain iterator, so a cast lets `aclosing` see it.
    """
    events = cast(AsyncGenerator[SSEEvent, None], iter_sse_lines(response.aiter_lines()))
    async with aclosing(events):
        yield events


def load_json(data: str | bytes, provider: str) -> Any:
    """Parse one JSON payload, turning garbage into a protocol error."""
    try:
        return json.loads(data)
    except ValueError as exc:
        raise StreamProtocolError(f"invalid JSON from provider: {exc}", provider=provider) from exc


async def read_json(response: httpx.Response, provider: str) -> dict[str, Any]:
    """The whole body of a non-streamed response as a JSON object."""
    payload = load_json(await response.aread(), provider)
    if not isinstance(payload, dict):
        raise StreamProtocolError("response body is not a JSON object", provider=provider)
    return payload


def parse_arguments(raw: str, name: str, provider: str) -> dict[str, Any]:
    """Tool call arguments as a dict; an empty string means no arguments."""
    if not raw:
        return {}
    arguments = load_json(raw, provider)
    if not isinstance(arguments, dict):
        raise StreamProtocolError(
            f"arguments of tool call {name!r} are not a JSON object", provider=provider
        )
    return arguments


def error_from_payload(provider: str, error: Any) -> ProviderError:
    """The typed error for an error object delivered inside a successful (200) response."""
    if not isinstance(error, Mapping):
        return ServerError(str(error), provider=provider)
    code = error.get("code") or error.get("type") or ""
    kind, category = _ERRORS_BY_CODE.get(str(code), (ServerError, ErrorCategory.SERVER))
    message = str(error.get("message") or code or "the provider reported an error")
    return kind(message, provider=provider, category=category)


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


@asynccontextmanager
async def translate_errors(provider: str, secret: str | None) -> AsyncIterator[None]:
    """Turn httpx failures into `ProviderNetworkError`s and keep the key out of every message.

    `redact_secrets` only knows key shapes; a provider that echoes an unusual key verbatim is
    caught here by replacing the exact secret.
    """
    try:
        yield
    except ProviderError as exc:
        scrubbed = _scrubbed(exc, secret)
        if scrubbed is exc:
            raise
        # Chain to the original cause, not to `exc`, so no traceback prints the unscrubbed text.
        raise scrubbed from exc.__cause__
    except httpx.TimeoutException as exc:
        message = f"request timed out ({type(exc).__name__})"
        raise ProviderNetworkError(
            message, provider=provider, category=ErrorCategory.TIMEOUT
        ) from exc
    except httpx.DecodingError as exc:
        raise StreamProtocolError(f"undecodable response body: {exc}", provider=provider) from exc
    except (KeyError, TypeError, AttributeError) as exc:
        # A JSON payload whose shape is not the documented one (a list where an object belongs,
        # a missing required key) is the provider's protocol fault, not a crash of ours.
        message = f"unexpected payload shape ({type(exc).__name__}: {exc})"
        raise StreamProtocolError(message, provider=provider) from exc
    except httpx.TransportError as exc:
        error = ProviderNetworkError(
            f"connection failed ({type(exc).__name__}): {exc}",
            provider=provider,
            category=ErrorCategory.NETWORK,
        )
        raise _scrubbed(error, secret) from exc


def _scrubbed(error: ProviderError, secret: str | None) -> ProviderError:
    if not secret or secret not in str(error):
        return error
    return type(error)(
        error.provider_message.replace(secret, "[REDACTED]"),
        provider=error.provider,
        category=error.category,
        status=error.status,
        retry_after=error.retry_after,
    )
