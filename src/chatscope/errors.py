"""chatscope's exceptions.

Every error chatscope raises on purpose derives from `ChatscopeError`, so a service can catch one
type at its boundary and the CLI can print one clear line instead of a traceback::

    ChatscopeError
    ├── ConfigurationError              a setting or profile is invalid (key, value, allowed)
    │   └── ProfileError                a subagent profile file is invalid (file, key, problem)
    ├── MissingProviderRuntimeError     a runtime scope was asked for without one of its parts
    ├── UnknownProviderError            no adapter is registered under that provider name
    ├── HistoryStoreError               the session database failed or cannot be used
    │   └── UnknownSessionError         no saved session has that id
    ├── AuthenticationRequiredError     no credential could be resolved for a call that needs one
    ├── ToolError                       a tool refused or failed (the model is told)
    │   └── WorkspaceEscapeError        a path pointed outside the workspace root
    ├── OutputValidationError           a typed answer still failed its schema after feedback
    └── ProviderError                   a model call failed; carries category, status, retryable
        ├── RateLimitError              category rate_limit (retryable)
        ├── QuotaExceededError          category quota
        ├── AuthenticationFailedError   categories authentication / permission
        ├── ModelNotFoundError          category not_found
        ├── InvalidRequestError         categories invalid_request / context_length
        ├── ServerError                 categories server / overloaded (retryable)
        ├── ProviderNetworkError        categories network / timeout (retryable)
        └── StreamProtocolError         the provider sent something chatscope cannot parse

Secrets never reach a message: `redact_secrets` is applied to every provider message.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence

__all__ = [
    "AuthenticationFailedError",
    "AuthenticationRequiredError",
    "ChatscopeError",
    "ConfigurationError",
    "ErrorCategory",
    "HistoryStoreError",
    "InvalidRequestError",
    "MissingProviderRuntimeError",
    "ModelNotFoundError",
    "OutputValidationError",
    "ProfileError",
    "ProviderError",
    "ProviderNetworkError",
    "QuotaExceededError",
    "RateLimitError",
    "ServerError",
    "StreamProtocolError",
    "ToolError",
    "UnknownProviderError",
    "MIN_SCRUBBED_SECRET_CHARS",
    "UnknownSessionError",
    "WorkspaceEscapeError",
    "redact_secrets",
    "scrub_secret",
]

_SECRET_PATTERNS = (
    re.compile(r"sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{8,}"),
    re.compile(r"AIza[0-9A-Za-z_\-]{20,}"),
    re.compile(r"(?i)(?P<label>bearer\s+)[A-Za-z0-9._\-~+/]{8,}=*"),
    re.compile(r"(?P<label>[?&]key=)[^&\s]+"),
    re.compile(
        r"(?i)(?P<label>(?:api[_-]?key|x-goog-api-key|x-api-key|token)[\"']?\s*[:=]\s*[\"']?)"
        r"[^\s\"',}&]+"
    ),
)


def redact_secrets(text: str) -> str:
    """Blank out anything shaped like an API key or bearer token, keeping the text readable."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(_redacted, text)
    return text


def _redacted(match: re.Match[str]) -> str:
    return (match.groupdict().get("label") or "") + "[REDACTED]"


MIN_SCRUBBED_SECRET_CHARS = 8
"""A known secret shorter than this is not searched for in text (see `scrub_secret`)."""


def scrub_secret(text: str, secret: str | None) -> str:
    """`text` with every occurrence of the exact `secret` (a call's key) blanked out.

    A secret shorter than `MIN_SCRUBBED_SECRET_CHARS` is left alone: blanking a one-letter key
    wherever it occurs would blank that letter in every word, and protect nothing.
    """
    if not secret or len(secret) < MIN_SCRUBBED_SECRET_CHARS:
        return text
    return text.replace(secret, "[REDACTED]")


class ChatscopeError(Exception):
    """Base of every error chatscope raises on purpose."""


class ConfigurationError(ChatscopeError):
    """A setting, `.env` entry or profile is invalid."""


class ProfileError(ConfigurationError):
    """A subagent profile file is invalid; the message names the file, each key and its problem.

    `problems` pairs a key (dotted, None for the file as a whole) with what is wrong with it.
    """

    def __init__(self, path: str, problems: Sequence[tuple[str | None, str]]) -> None:
        self.path = path
        self.problems = tuple(problems)
        shown = "; ".join(
            f"key {key!r}: {problem}" if key else problem for key, problem in self.problems
        )
        super().__init__(f"profile {path}: {shown}")

    @property
    def keys(self) -> tuple[str | None, ...]:
        """The keys found wrong, in file order."""
        return tuple(key for key, _ in self.problems)


class MissingProviderRuntimeError(ChatscopeError):
    """A runtime scope lacks parts it needs; no global is ever substituted (REQ-SP4-001)."""

    def __init__(
        self, missing: list[str] | tuple[str, ...], *, runtime_id: str | None = None
    ) -> None:
        self.missing = tuple(missing)
        self.runtime_id = runtime_id
        where = f" for runtime {runtime_id}" if runtime_id else ""
        super().__init__(f"runtime context{where} is missing: {', '.join(self.missing)}")


class UnknownProviderError(ChatscopeError):
    """No provider adapter is registered under the requested name."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown provider {name!r}; known providers: {', '.join(known)}")


class HistoryStoreError(ChatscopeError):
    """The session database failed, holds something unreadable, or is from a newer chatscope."""


class UnknownSessionError(HistoryStoreError):
    """No saved session has the requested id."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(f"no saved session {session_id!r}; `chatscope sessions list` shows them")


class AuthenticationRequiredError(ChatscopeError):
    """No API key was found for a provider endpoint that needs one."""

    def __init__(self, provider: str, looked_in: tuple[str, ...]) -> None:
        self.provider = provider
        self.looked_in = looked_in
        super().__init__(f"no API key for provider {provider!r}; looked in: {', '.join(looked_in)}")


class ToolError(ChatscopeError):
    """A tool refused its arguments or failed; the chat loop turns it into an error result."""


class WorkspaceEscapeError(ToolError):
    """A tool was asked for a path outside its workspace root."""


class OutputValidationError(ChatscopeError):
    """The model's answer to a typed request was not valid JSON of the requested schema, even
    after the problem was sent back to it; the turn stored nothing.

    `raw_text` is the last answer as the model gave it, `problem` what was wrong with it,
    `attempts` how many answers were checked.
    """

    def __init__(self, schema_name: str, raw_text: str, problem: str, *, attempts: int) -> None:
        self.schema_name = schema_name
        self.raw_text = raw_text
        self.problem = problem
        self.attempts = attempts
        shown = raw_text.strip()
        shown = shown if len(shown) <= _SHOWN_ANSWER_CHARS else shown[:_SHOWN_ANSWER_CHARS] + "..."
        answers = "answer" if attempts == 1 else f"{attempts} answers"
        super().__init__(
            f"the model's {answers} did not match output schema {schema_name!r}: {problem} "
            f"(last answer: {redact_secrets(shown)!r})"
        )


_SHOWN_ANSWER_CHARS = 200


class ErrorCategory(enum.StrEnum):
    """What kind of failure a provider reported, independent of its wire format."""

    RATE_LIMIT = "rate_limit"
    QUOTA = "quota"
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    INVALID_REQUEST = "invalid_request"
    CONTEXT_LENGTH = "context_length"
    SERVER = "server"
    OVERLOADED = "overloaded"
    NETWORK = "network"
    TIMEOUT = "timeout"
    PROTOCOL = "protocol"


_RETRYABLE = frozenset(
    {
        ErrorCategory.RATE_LIMIT,
        ErrorCategory.SERVER,
        ErrorCategory.OVERLOADED,
        ErrorCategory.NETWORK,
        ErrorCategory.TIMEOUT,
    }
)


class ProviderError(ChatscopeError):
    """A model call failed. The provider's own message is kept, with secrets redacted."""

    default_category = ErrorCategory.SERVER

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        category: ErrorCategory | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.provider = provider
        self.category = category or self.default_category
        self.status = status
        self.retry_after = retry_after
        self.provider_message = redact_secrets(message)
        status_text = f" HTTP {status}" if status is not None else ""
        super().__init__(f"{provider}{status_text} {self.category}: {self.provider_message}")

    @property
    def retryable(self) -> bool:
        """Whether trying the same call again may succeed."""
        return self.category in _RETRYABLE


class RateLimitError(ProviderError):
    """Too many requests right now; retry later."""

    default_category = ErrorCategory.RATE_LIMIT


class QuotaExceededError(ProviderError):
    """The account's quota is used up; retrying will not help."""

    default_category = ErrorCategory.QUOTA


class AuthenticationFailedError(ProviderError):
    """The provider rejected the credentials or their permissions."""

    default_category = ErrorCategory.AUTHENTICATION


class ModelNotFoundError(ProviderError):
    """The model or endpoint does not exist."""

    default_category = ErrorCategory.NOT_FOUND


class InvalidRequestError(ProviderError):
    """The provider refused the request as malformed or too long."""

    default_category = ErrorCategory.INVALID_REQUEST


class ServerError(ProviderError):
    """The provider failed or is overloaded."""

    default_category = ErrorCategory.SERVER


class ProviderNetworkError(ProviderError):
    """The connection failed, dropped or timed out."""

    default_category = ErrorCategory.NETWORK


class StreamProtocolError(ProviderError):
    """The provider sent a stream or body chatscope cannot parse."""

    default_category = ErrorCategory.PROTOCOL
