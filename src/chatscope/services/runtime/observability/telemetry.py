"""Telemetry bound to one runtime scope (REQ-STAT6-002.3, REQ-STAT6-003.3).

Every event is enriched with the scope's metadata (session, runtime, provider, model, auth type,
parent runtime and subagent name) and a timestamp before it reaches the sink. Nothing secret is
part of the metadata, and error texts pass through `redact_secrets`. A model call made for
something other than the turn itself (a compression summary) adds `labels` to its api events:
its purpose, and its own provider and model where they differ from the scope's.

The scope's tracer (`tracer`, the tracing port) travels with its telemetry: events go to the
sink, spans to the tracer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from chatscope.errors import ProviderError, redact_secrets, scrub_secret
from chatscope.services.messages import Usage
from chatscope.services.runtime.observability.tracing import NO_TRACER, ScopeTracer
from chatscope.services.runtime.ports import TelemetrySink
from chatscope.services.runtime.state import AgentRuntimeState

__all__ = ["TELEMETRY_EVENTS", "RecordingSink", "RuntimeTelemetry"]

TELEMETRY_EVENTS = frozenset(
    {
        "api_request",
        "api_response",
        "api_error",
        "tool_call",
        "history_compressed",
        "compression_failed",
        "compression_skipped",
        "provider_switch",
    }
)
"""Every event a scope's telemetry emits: what a sink may be asked whether it `wants`."""

_NO_LABELS: Mapping[str, str] = MappingProxyType({})


class RuntimeTelemetry:
    """Emits the scope's events: model calls, tool calls, and history compression."""

    __slots__ = ("_sink", "metadata", "tracer")

    def __init__(
        self, sink: TelemetrySink, state: AgentRuntimeState, tracer: ScopeTracer = NO_TRACER
    ) -> None:
        self._sink = sink
        self.tracer = tracer
        self.metadata: Mapping[str, str | None] = MappingProxyType(
            {
                "session_id": state.session_id,
                "runtime_id": state.runtime_id,
                "parent_runtime_id": state.parent_runtime_id,
                "subagent_name": state.subagent_name,
                "provider": state.provider,
                "model": state.model,
                "auth_type": str(state.auth_type),
            }
        )

    def api_request(
        self,
        *,
        message_count: int,
        tool_count: int,
        attempt: int = 1,
        labels: Mapping[str, str] = _NO_LABELS,
    ) -> None:
        """A model call is about to be sent."""
        self._emit(
            "api_request",
            message_count=message_count,
            tool_count=tool_count,
            attempt=attempt,
            **labels,
        )

    def api_response(
        self,
        *,
        duration_ms: float,
        usage: Usage,
        finish_reason: str,
        attempt: int = 1,
        time_to_first_token_ms: float | None = None,
        labels: Mapping[str, str] = _NO_LABELS,
    ) -> None:
        """A model call completed."""
        self._emit(
            "api_response",
            duration_ms=round(duration_ms, 3),
            time_to_first_token_ms=_rounded(time_to_first_token_ms),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            finish_reason=finish_reason,
            attempt=attempt,
            **labels,
        )

    def api_error(
        self,
        *,
        duration_ms: float,
        error: BaseException,
        attempt: int = 1,
        secret: str | None = None,
        retry_in: float | None = None,
        labels: Mapping[str, str] = _NO_LABELS,
    ) -> None:
        """A model call failed; `retry_in` is the wait in seconds before it is tried again (None:
        it is not). `secret`, the call's key, is blanked out of the error text wherever it
        appears, whatever its shape (`scrub_secret`)."""
        category = getattr(error, "category", None)
        text = scrub_secret(str(error), secret)
        self._emit(
            "api_error",
            duration_ms=round(duration_ms, 3),
            error_type=type(error).__name__,
            error=redact_secrets(text),
            category=str(category) if category is not None else None,
            status=error.status if isinstance(error, ProviderError) else None,
            retryable=error.retryable if isinstance(error, ProviderError) else False,
            attempt=attempt,
            retry_in=_rounded(retry_in),
            **labels,
        )

    def tool_call(
        self, *, name: str, call_id: str, duration_ms: float, error: str | None = None
    ) -> None:
        """A tool ran; `error` is set when it failed."""
        self._emit(
            "tool_call",
            tool_name=name,
            call_id=call_id,
            duration_ms=round(duration_ms, 3),
            success=error is None,
            error=redact_secrets(error) if error else None,
        )

    def history_compressed(
        self,
        *,
        tokens_before: int,
        tokens_after: int,
        messages_before: int,
        messages_after: int,
        summarised_messages: int,
        duration_ms: float,
    ) -> None:
        """The middle of history was replaced by a summary (`tokens_after` is projected)."""
        self._emit(
            "history_compressed",
            tokens_before=tokens_before,
            tokens_after=tokens_after,
            messages_before=messages_before,
            messages_after=messages_after,
            summarised_messages=summarised_messages,
            duration_ms=round(duration_ms, 3),
        )

    def compression_failed(
        self, *, duration_ms: float, error: BaseException, retry_after_turns: int
    ) -> None:
        """Summarising failed; history is unchanged and compression waits before trying again."""
        self._emit(
            "compression_failed",
            duration_ms=round(duration_ms, 3),
            error_type=type(error).__name__,
            error=redact_secrets(str(error)),
            retry_after_turns=retry_after_turns,
        )

    def compression_skipped(
        self, *, reason: str, tokens: int, threshold_tokens: int, retry_after_turns: int = 0
    ) -> None:
        """History was over the threshold but stays as it is, for `reason`."""
        self._emit(
            "compression_skipped",
            reason=reason,
            tokens=tokens,
            threshold_tokens=threshold_tokens,
            retry_after_turns=retry_after_turns,
        )

    def provider_switch(
        self,
        *,
        from_: str,
        to: str,
        reason: str,
        status: int | None = None,
        from_member: int | None = None,
        to_member: int | None = None,
    ) -> None:
        """A model call moved from one endpoint of the scope's fallback chain to another:
        `from` and `to` are `provider:model` labels (never a key or endpoint), `reason` the
        failure's category or `circuit_open`."""
        self._emit(
            "provider_switch",
            **{"from": from_, "to": to},
            reason=reason,
            status=status,
            from_member=from_member,
            to_member=to_member,
        )

    def _emit(self, event: str, **fields: Any) -> None:
        if not self._sink.wants(event):
            return  # a sink that would drop the event is not handed one: turns stay cheap
        timestamp = datetime.now(UTC).isoformat()
        self._sink.emit(event, {**self.metadata, "timestamp": timestamp, **fields})


def _rounded(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


class RecordingSink:
    """Keeps events in a list: for tests, and for embedding apps that forward them elsewhere."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def wants(self, event: str) -> bool:
        """Every event is recorded."""
        return True

    def emit(self, event: str, fields: Mapping[str, Any]) -> None:
        """Record one event."""
        self.events.append((event, dict(fields)))

    def named(self, event: str) -> list[dict[str, Any]]:
        """The fields of every recorded event called `event`."""
        return [fields for name, fields in self.events if name == event]
