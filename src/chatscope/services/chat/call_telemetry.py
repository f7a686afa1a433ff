"""`CallTelemetry`: what one model call reports, as api events and as a span.

The chat loop wraps each call of a turn in one; the compression summariser wraps its summary
call in one too, with a `purpose` its events and span carry.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import MappingProxyType, TracebackType

from chatscope.services.chat.assembly import ResponseAssembler
from chatscope.services.chat.retry import RetryNotice
from chatscope.services.events import AnsweredBy
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.observability.telemetry import RuntimeTelemetry
from chatscope.services.runtime.observability.tracing import ModelCallTrace, ScopeTracer, TurnTrace

__all__ = ["CallTelemetry"]

_NO_LABELS: Mapping[str, str] = MappingProxyType({})


class CallTelemetry:
    """Reports one model call (all its attempts) through the scope's telemetry and tracer.

    Entered around the streaming of one call: `api_request` on entry, then `api_response` with
    usage, finish reason, duration and time to first token, or `api_error` if it failed; each
    retried attempt is an `api_error` with `retry_in`. A call abandoned by its caller
    (cancelled, stream closed) is neither, and its span just ends. The span (`trace`) is a
    child of `parent`: the turn's trace, or the scope's tracer for a call outside a turn.

    A call with a `purpose` (a compression summary) labels its events with it, and with its
    own provider and model where they are not the scope's.
    """

    __slots__ = ("_assembler", "_labels", "_secret", "_started", "_telemetry", "attempt", "trace")

    def __init__(
        self,
        telemetry: RuntimeTelemetry,
        invocation: ModelInvocation,
        assembler: ResponseAssembler,
        parent: TurnTrace | ScopeTracer,
        *,
        purpose: str | None = None,
    ) -> None:
        self._telemetry = telemetry
        self._assembler = assembler
        self._secret = invocation.credentials.secret()
        self._labels = _NO_LABELS if purpose is None else _labels(telemetry, invocation, purpose)
        self.attempt = 1
        self.trace: ModelCallTrace = parent.model_call(invocation, purpose=purpose)
        self._started = time.perf_counter()
        telemetry.api_request(
            message_count=len(invocation.history),
            tool_count=len(invocation.tools),
            labels=self._labels,
        )

    def __enter__(self) -> CallTelemetry:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        elapsed_ms = (time.perf_counter() - self._started) * 1000
        if error is None:
            self._completed(elapsed_ms)
        elif isinstance(error, Exception):
            self._telemetry.api_error(
                duration_ms=elapsed_ms,
                error=error,
                attempt=self.attempt,
                secret=self._secret,
                labels=self._labels,
            )
            self.trace.failed(error, attempts=self.attempt)
        else:
            self.trace.end()

    def retrying(self, notice: RetryNotice) -> None:
        """Report a failed attempt that is tried again (`open_stream`'s `on_retry`)."""
        self.attempt = notice.attempt + 1
        elapsed_ms = (time.perf_counter() - self._started) * 1000
        self._telemetry.api_error(
            duration_ms=elapsed_ms,
            error=notice.error,
            attempt=notice.attempt,
            secret=self._secret,
            retry_in=notice.delay,
            labels=self._labels,
        )
        self.trace.retrying(attempt=notice.attempt, error=notice.error, delay=notice.delay)

    def answered(self, by: AnsweredBy) -> None:
        """The endpoint that answers the call, when a fallback chain chose it."""
        self.trace.answered_by(by.provider, by.model)

    def _completed(self, elapsed_ms: float) -> None:
        assembler = self._assembler
        first = assembler.first_event_at
        first_s = first - self._started if first else None
        self._telemetry.api_response(
            duration_ms=elapsed_ms,
            usage=assembler.usage,
            finish_reason=str(assembler.finish_reason),
            attempt=self.attempt,
            time_to_first_token_ms=first_s * 1000 if first_s is not None else None,
            labels=self._labels,
        )
        self.trace.completed(
            assembler, attempts=self.attempt, first_chunk_s=first_s, output=assembler.message
        )


def _labels(
    telemetry: RuntimeTelemetry, invocation: ModelInvocation, purpose: str
) -> Mapping[str, str]:
    labels = {"purpose": purpose}
    if invocation.provider != telemetry.metadata["provider"]:
        labels["provider"] = invocation.provider
    if invocation.model != telemetry.metadata["model"]:
        labels["model"] = invocation.model
    return MappingProxyType(labels)
