"""The ports a scope is built from: model provider, history store, telemetry sink.

Adapters implement them; tests fake them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from chatscope.services.events import ProviderEvent
from chatscope.services.messages import Message, Usage
from chatscope.services.runtime.invocation import ModelInvocation

__all__ = ["HistoryOpener", "HistoryStore", "ModelProvider", "TelemetrySink"]


@runtime_checkable
class ModelProvider(Protocol):
    """One streamed model call per `stream`; all inputs arrive in the invocation (REQ-SP4-002)."""

    @property
    def name(self) -> str:
        """The provider name this adapter answers to."""
        ...

    def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
        """Yield the response as typed events, ending with a `FinishEvent`."""
        ...


@runtime_checkable
class HistoryStore(Protocol):
    """The history of one scope. A turn is stored whole or not at all.

    A store that reads its session from elsewhere may also offer `mark_new_session()`: a
    scope whose session id was made for it calls it right after opening the store, since
    nothing can be stored under that id yet, and the store may then skip its first read.
    """

    async def messages(self) -> tuple[Message, ...]:
        """Every stored message, oldest first."""
        ...

    async def append_turn(self, messages: Sequence[Message], usage: Usage | None = None) -> None:
        """Store the messages of one completed turn atomically, with its API usage if known."""
        ...

    async def token_count(self) -> int:
        """Tokens the stored history costs: API-reported where known, estimated otherwise."""
        ...

    async def replace(self, messages: Sequence[Message]) -> None:
        """Replace the whole stored history atomically (a compressed history takes its place)."""
        ...


class HistoryOpener(Protocol):
    """Opens the history of one session: fresh in memory, or the stored one of a database."""

    def __call__(
        self, *, session_id: str, provider: str, model: str, owner: str | None = None
    ) -> HistoryStore:
        """The history store of `session_id`, which `provider` and `model` now continue (a
        database records them with the session; memory ignores them). `owner` is whose session
        it is (a server's tenant), passed only when the scope names one: a database then opens
        only that owner's session."""
        ...


class TelemetrySink(Protocol):
    """Where enriched telemetry events go: structlog in production, a list in tests."""

    def wants(self, event: str) -> bool:
        """Whether `event` would be kept; events it would drop are never built."""
        ...

    def emit(self, event: str, fields: Mapping[str, Any]) -> None:
        """Record one event with its fields."""
        ...
