"""What the OpenAI Chat Completions and Responses adapters share: the request edge and the errors.

Both speak HTTP+JSON with a bearer key, stream SSE, and report failures the same way, so the
plumbing lives here once; each adapter keeps only its own wire format.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from chatscope.errors import (
    ErrorCategory,
    InvalidRequestError,
    ModelNotFoundError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
)
from chatscope.services.messages import ToolCallBlock
from chatscope.services.runtime.invocation import OutputSchema

__all__ = [
    "PendingCall",
    "auth_headers",
    "error_from_payload",
    "json_schema_format",
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
    item_id: str | None = None

    def block(self, provider: str) -> ToolCallBlock:
        """The finished call, its arguments parsed (see `ToolCallBlock.from_json`)."""
        if not isinstance(self.name, str) or not self.name or not isinstance(self.id, str):
            raise StreamProtocolError("tool call without a usable name or id", provider=provider)
        # Some OpenAI-compatible servers omit the id; the call still needs one to pair a result.
        call_id = self.id or f"call_{uuid.uuid4().hex[:24]}"
        # Arguments that are not a JSON object are the model's mistake, not the stream's: the
        # call carries an `arguments_error` the model is told about.
        return ToolCallBlock.from_json(
            call_id, self.name, "".join(self.parts), item_id=self.item_id, provider=provider
        )


def auth_headers(secret: str | None) -> dict[str, str]:
    """The bearer header of one request, or none at all for local servers without a key."""
    return {"Authorization": f"Bearer {secret}"} if secret is not None else {}


def json_schema_format(output: OutputSchema) -> dict[str, Any]:
    """The `name`, `schema` and `strict` of a typed answer, as both OpenAI APIs take them.

    Chat Completions nests them in `response_format.json_schema`, Responses puts them beside
    `type` in `text.format`; `strict` is only claimed for a schema made to strict mode's rules.
    """
    return {"name": output.name, "schema": output.json_schema(), "strict": output.strict}


def wire_call_id(call_id: str, limit: int) -> str:
    """`call_id` if OpenAI accepts it, else a stable stand-in so a call and its result still pair.

    Ids from other providers can be empty or too long (Chat Completions rejects tool call ids
    over 40 characters); hashing keeps the mapping deterministic across calls without any state.
    """
    if call_id and len(call_id) <= limit:
        return call_id
    digest = hashlib.sha256(call_id.encode()).hexdigest()
    return f"call_{digest[:_HASHED_ID_CHARS]}"


def error_from_payload(provider: str, error: Any) -> ProviderError:
    """The typed error for an error object delivered inside a successful (200) response."""
    if not isinstance(error, Mapping):
        detail = str(error) if error else "the provider reported a failure without details"
        return ServerError(detail, provider=provider)
    code = str(error.get("code") or error.get("type") or "")
    kind, category = _classified(code)
    message = str(error.get("message") or code or "the provider reported an error")
    return kind(message, provider=provider, category=category)


def _classified(code: str) -> tuple[type[ProviderError], ErrorCategory]:
    """The error of a code: a known one, any other rate limit or quota code, else a server error."""
    known = _ERRORS_BY_CODE.get(code)
    if known is not None:
        return known
    if "rate_limit" in code:
        return RateLimitError, ErrorCategory.RATE_LIMIT
    if "quota" in code:
        return QuotaExceededError, ErrorCategory.QUOTA
    return ServerError, ErrorCategory.SERVER
