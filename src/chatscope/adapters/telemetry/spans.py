"""The spans of one turn: the turn's own, and those of its model calls and tool calls.

Each wraps one OpenTelemetry span and writes to it only when it records (`is_recording()`);
none holds anything beyond its call. `OtelTurn` starts its children through the scope's tracer
(`ChildSpans`), with its own span as their explicit parent context.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode

from chatscope.adapters.telemetry import genai
from chatscope.services.events import CompletedTurn
from chatscope.services.messages import (
    Message,
    Role,
    TextBlock,
    ToolCallBlock,
    ToolResultBlock,
    Usage,
)
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.observability.tracing import (
    NO_TRACING,
    CallOutcome,
    ModelCallTrace,
    ToolCallTrace,
)

__all__ = [
    "ChildSpans",
    "OtelModelCall",
    "OtelToolCall",
    "OtelTurn",
    "Pricing",
    "SpanOptions",
    "activated",
]

_INACTIVE = nullcontext()  # holds nothing: one reusable context manager that does nothing


class Pricing(Protocol):
    """What a model call's usage cost, in US dollars (None: not known)."""

    def __call__(
        self, usage: Usage, *, provider: str, model: str, base_url: str | None
    ) -> Decimal | None:
        """The price of `usage` on `provider`'s `model` served at `base_url`."""
        ...


@dataclass(frozen=True, slots=True)
class SpanOptions:
    """What spans record beyond the conventions' required attributes."""

    capture_content: bool = False
    pricing: Pricing | None = None


class ChildSpans(Protocol):
    """The scope's tracer, as a turn starts its calls' spans with it."""

    @property
    def options(self) -> SpanOptions:
        """What spans record."""
        ...

    def start_model_call(
        self, invocation: ModelInvocation, purpose: str | None, parent: Context | None
    ) -> OtelModelCall:
        """A `chat` span under `parent`."""
        ...

    def start_tool_call(
        self, call: ToolCallBlock, secret: str | None, parent: Context
    ) -> OtelToolCall:
        """An `execute_tool` span under `parent`."""
        ...


class OtelTurn:
    """One turn's `invoke_agent` span; its model and tool calls are started as its children.

    It keeps the key of its latest model call, to blank it out of its tool calls' spans and of
    its own content, which is why the prompt is recorded when the turn ends. A turn whose span
    has no valid context (no tracer provider was configured when it started) gives its calls
    the port's no-op traces: their spans could only be invalid too.
    """

    __slots__ = ("_children", "_prompt", "_scope", "_secret", "_span", "_valid")

    def __init__(self, scope: ChildSpans, span: Span, prompt: Message) -> None:
        self._scope = scope
        self._span = span
        self._prompt = prompt
        self._valid = span.get_span_context().is_valid
        self._children: Context | None = None
        self._secret: str | None = None

    def __enter__(self) -> OtelTurn:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        span = self._span
        if span.is_recording():
            if self._scope.options.capture_content:
                prompt = genai.input_messages_json([self._prompt], self._secret)
                span.set_attribute(genai.INPUT_MESSAGES, prompt)
            if isinstance(error, Exception):
                # The model call that failed, if one did, has the (cleaned) message.
                span.set_attributes(genai.error_attributes(error))
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()

    def active(self) -> AbstractContextManager[None]:
        """This turn as the ambient span, for an await that does not yield."""
        return activated(self._span) if self._valid else _INACTIVE

    def model_call(
        self, invocation: ModelInvocation, *, purpose: str | None = None
    ) -> ModelCallTrace:
        """A model call of this turn."""
        if not self._valid:
            return NO_TRACING
        self._secret = invocation.credentials.secret()
        return self._scope.start_model_call(invocation, purpose, self._context())

    def tool_call(self, call: ToolCallBlock) -> ToolCallTrace:
        """A tool call of this turn, asked for by its latest model call."""
        if not self._valid:
            return NO_TRACING
        return self._scope.start_tool_call(call, self._secret, self._context())

    def completed(self, turn: CompletedTurn) -> None:
        """The turn's totals (and, with content capture, its answer)."""
        span = self._span
        if not span.is_recording():
            return
        span.set_attributes(usage_attributes(turn.usage))
        span.set_attribute(genai.FINISH_REASONS, (str(turn.finish_reason),))
        span.set_attribute(genai.MODEL_CALLS, turn.model_calls)
        if self._scope.options.capture_content:
            answer = Message(Role.ASSISTANT, (TextBlock(turn.text),))
            output = genai.output_messages_json(answer, str(turn.finish_reason), self._secret)
            span.set_attribute(genai.OUTPUT_MESSAGES, output)

    def _context(self) -> Context:
        if self._children is None:
            self._children = trace.set_span_in_context(self._span)
        return self._children


class OtelModelCall:
    """One model call's `chat` span."""

    __slots__ = ("_answered", "_invocation", "_options", "_secret", "_span")

    def __init__(
        self, span: Span, invocation: ModelInvocation, secret: str | None, options: SpanOptions
    ) -> None:
        self._span = span
        self._invocation = invocation
        self._secret = secret
        self._options = options
        self._answered = (invocation.provider, invocation.model)

    def active(self) -> AbstractContextManager[None]:
        """This call as the ambient span, while its stream is opened."""
        return activated(self._span)

    def retrying(self, *, attempt: int, error: BaseException, delay: float) -> None:
        """A `chatscope.retry` event: which attempt failed, why, and the wait."""
        if self._span.is_recording():
            attributes = genai.error_attributes(error) | {
                "chatscope.attempt": attempt,
                "chatscope.retry.delay_s": delay,
            }
            self._span.add_event("chatscope.retry", attributes)

    def answered_by(self, provider: str, model: str) -> None:
        """Another endpoint than the one asked (a fallback member) answers this call."""
        self._answered = (provider, model)

    def completed(
        self,
        outcome: CallOutcome,
        *,
        attempts: int,
        first_chunk_s: float | None,
        output: Callable[[], Message],
    ) -> None:
        """Usage, finish reason, timing (and, with content capture, the answer); then end."""
        span = self._span
        if span.is_recording():
            attributes = usage_attributes(outcome.usage) | self._response(attempts, first_chunk_s)
            attributes[genai.FINISH_REASONS] = (str(outcome.finish_reason),)
            span.set_attributes(attributes | self._cost(outcome.usage))
            if self._options.capture_content:
                answer = genai.output_messages_json(
                    output(), str(outcome.finish_reason), self._secret
                )
                span.set_attribute(genai.OUTPUT_MESSAGES, answer)
        span.end()

    def failed(self, error: BaseException, *, attempts: int) -> None:
        """`error.type`, status and a cleaned message; then end."""
        if self._span.is_recording():
            self._span.set_attribute(genai.ATTEMPTS, attempts)
            _failed(self._span, error, genai.clean(str(error), self._secret))
        self._span.end()

    def end(self) -> None:
        """End, abandoned: neither answered nor failed."""
        self._span.end()

    def _response(self, attempts: int, first_chunk_s: float | None) -> dict[str, Any]:
        provider, model = self._answered
        response: dict[str, Any] = {genai.RESPONSE_MODEL: model, genai.ATTEMPTS: attempts}
        if provider != self._invocation.provider:
            response[genai.RESPONSE_PROVIDER] = provider
        if first_chunk_s is not None:
            response[genai.TIME_TO_FIRST_CHUNK] = first_chunk_s
        return response

    def _cost(self, usage: Usage) -> dict[str, float]:
        """The price of the call, when known: not for a fallback member, whose endpoint (which
        decides the price) this span does not know."""
        pricing, invocation = self._options.pricing, self._invocation
        if pricing is None or self._answered != (invocation.provider, invocation.model):
            return {}
        price = pricing(
            usage,
            provider=invocation.provider,
            model=invocation.model,
            base_url=invocation.base_url,
        )
        return {} if price is None else {genai.COST: float(price)}


class OtelToolCall:
    """One tool call's `execute_tool` span: ambient while the tool runs (so a subagent the
    `task` tool starts is traced under it)."""

    __slots__ = ("_capture", "_secret", "_span", "_token")

    def __init__(self, span: Span, secret: str | None, capture: bool) -> None:
        self._span = span
        self._secret = secret
        self._capture = capture
        self._token: object | None = None

    def __enter__(self) -> OtelToolCall:
        if self._span.get_span_context().is_valid:
            self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
        if isinstance(error, Exception) and self._span.is_recording():
            _failed(self._span, error, genai.clean(str(error), self._secret))
        self._span.end()

    def completed(self, result: ToolResultBlock) -> None:
        """An error result marks the span failed; with content capture, a result is kept."""
        span = self._span
        if not span.is_recording():
            return
        if result.error is not None:
            span.set_attribute(genai.ERROR_TYPE, genai.TOOL_ERROR)
            span.set_status(Status(StatusCode.ERROR, genai.clean(result.error, self._secret)))
        elif self._capture and result.result is not None:
            span.set_attribute(genai.TOOL_RESULT, genai.clean(result.result, self._secret))


def activated(span: Span) -> AbstractContextManager[None]:
    """`span` as the ambient span until exit (nothing for a span with no valid context)."""
    if not span.get_span_context().is_valid:
        return _INACTIVE
    return _Active(trace.set_span_in_context(span))


class _Active:
    """Makes a span ambient until exit, in the frame that entered it."""

    __slots__ = ("_context", "_token")

    def __init__(self, context: Context) -> None:
        self._context = context
        self._token: object | None = None

    def __enter__(self) -> None:
        self._token = otel_context.attach(self._context)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]


def _failed(span: Span, error: BaseException, message: str) -> None:
    span.set_attributes(genai.error_attributes(error))
    span.set_status(Status(StatusCode.ERROR, message))
    span.add_event(
        "exception",
        {"exception.type": type(error).__name__, "exception.message": message},
    )


def usage_attributes(usage: Usage) -> dict[str, Any]:
    """Token usage as the conventions' `gen_ai.usage.*` attributes."""
    return {
        genai.INPUT_TOKENS: usage.input_tokens,
        genai.OUTPUT_TOKENS: usage.output_tokens,
        genai.CACHE_READ_TOKENS: usage.cached_tokens,
        genai.REASONING_TOKENS: usage.reasoning_tokens,
    }
