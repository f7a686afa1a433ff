"""The tracing port over OpenTelemetry: spans after the GenAI semantic conventions.

`OtelTracing` (one per application) holds the tracer of an application-level tracer provider:
by default the one the application configured (`global_tracer_provider`), a proxy until it
configures one. It makes an `OtelScopeTracer` per scope, which puts the scope's identity on
every span: `invoke_agent {agent}` per turn, `chat {model}` per model call and
`execute_tool {tool}` per tool call, the last two children of their turn by explicit parent
context, not by whatever is ambient (`spans`).

Without a configured provider every span is OpenTelemetry's non-recording one: nothing is
built for it beyond the constant operation name (`span.is_recording()` guards every
attribute). A span is made ambient (`attach`) only around an await that does not yield, and
detached in the same frame. Error texts lose the call's key and anything key-shaped; content
is recorded only with `capture_content` (see `genai`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version
from types import MappingProxyType
from typing import Protocol

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Tracer, TracerProvider

from chatscope.adapters.telemetry import genai
from chatscope.adapters.telemetry.spans import (
    OtelModelCall,
    OtelToolCall,
    OtelTurn,
    Pricing,
    SpanOptions,
)
from chatscope.services.messages import Message, ToolCallBlock, Usage
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.observability.tracing import TraceParent
from chatscope.services.runtime.state import AgentRuntimeState

__all__ = [
    "INSTRUMENTATION",
    "OtelScopeTracer",
    "OtelTracing",
    "PriceTableLike",
    "TablePricing",
    "global_tracer_provider",
]

INSTRUMENTATION = "chatscope"
"""The instrumentation scope name of every chatscope span."""

_CHAT = MappingProxyType({genai.OPERATION: "chat"})
_INVOKE_AGENT = MappingProxyType({genai.OPERATION: "invoke_agent"})
_EXECUTE_TOOL = MappingProxyType({genai.OPERATION: "execute_tool"})


def global_tracer_provider() -> TracerProvider:
    """The tracer provider the application configured, or OpenTelemetry's proxy that follows
    the one it configures later (the convention for libraries)."""
    return trace.get_tracer_provider()


class PriceTableLike(Protocol):
    """A price table (`chatscope.adapters.pricing.PriceTable`)."""

    def price(
        self, usage: Usage, *, provider: str, model: str, base_url: str | None = None
    ) -> Decimal | None:
        """The dollar cost of `usage`, None when not known."""
        ...


class TablePricing:
    """Prices a call from the application's price table, got only when a recording span
    first asks (loading the table takes a while; without tracing it is never loaded here)."""

    __slots__ = ("_table",)

    def __init__(self, table: Callable[[], PriceTableLike]) -> None:
        self._table = table

    def __call__(
        self, usage: Usage, *, provider: str, model: str, base_url: str | None
    ) -> Decimal | None:
        """The price of `usage`, or None."""
        return self._table().price(usage, provider=provider, model=model, base_url=base_url)


class OtelTracing:
    """The application's tracing: one OpenTelemetry tracer, an `OtelScopeTracer` per scope.

    `pricing`, when given, prices each model call's usage (`gen_ai.usage.cost`, US dollars).
    """

    __slots__ = ("_options", "_tracer")

    def __init__(
        self,
        provider: TracerProvider,
        *,
        capture_content: bool = False,
        pricing: Pricing | None = None,
    ) -> None:
        self._tracer = provider.get_tracer(INSTRUMENTATION, _version())
        self._options = SpanOptions(capture_content, pricing)

    def scope_tracer(
        self, state: AgentRuntimeState, *, parent: TraceParent | None = None
    ) -> OtelScopeTracer:
        """The tracer of one scope; its turns are children of `parent` when it is a span."""
        context = parent if isinstance(parent, Context) else None
        return OtelScopeTracer(self._tracer, state, context, self._options)


def _version() -> str | None:
    try:
        return version("chatscope")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree not installed
        return None


class OtelScopeTracer:
    """The tracer of one scope: its identity goes on every span it starts."""

    __slots__ = ("_parent", "_state", "_tracer", "options")

    def __init__(
        self,
        tracer: Tracer,
        state: AgentRuntimeState,
        parent: Context | None,
        options: SpanOptions,
    ) -> None:
        self._tracer = tracer
        self._state = state
        self._parent = parent
        self.options = options

    def turn(self, prompt: Message) -> OtelTurn:
        """An `invoke_agent` span under the scope's parent span, or else the ambient one.

        Without a configured provider the span is invalid, and the turn's calls get no spans
        at all (`OtelTurn`).
        """
        agent = self._state.subagent_name or genai.AGENT_NAME
        span = self._tracer.start_span(
            f"invoke_agent {agent}", self._parent, SpanKind.INTERNAL, _INVOKE_AGENT
        )
        if span.is_recording():
            span.set_attributes(self._identity() | {genai.AGENT: agent})
            span.set_attributes(self._scope_model())
        return OtelTurn(self, span, prompt)

    def model_call(
        self, invocation: ModelInvocation, *, purpose: str | None = None
    ) -> OtelModelCall:
        """A `chat` span under the ambient span, or else the scope's parent span."""
        ambient = trace.get_current_span().get_span_context().is_valid
        return self.start_model_call(invocation, purpose, None if ambient else self._parent)

    def here(self) -> Context | None:
        """The ambient span as a parent for another scope's spans (None: there is none)."""
        span = trace.get_current_span()
        return trace.set_span_in_context(span) if span.get_span_context().is_valid else None

    def provider_switched(self, *, from_: str, to: str, reason: str, status: int | None) -> None:
        """A `provider_switch` event on the ambient span: the model call being opened."""
        span = trace.get_current_span()
        if span.is_recording():
            attributes: dict[str, str | int] = {
                "chatscope.switch.from": from_,
                "chatscope.switch.to": to,
                "chatscope.switch.reason": reason,
            }
            if status is not None:
                attributes["http.response.status_code"] = status
            span.add_event("provider_switch", attributes)

    def start_model_call(
        self, invocation: ModelInvocation, purpose: str | None, parent: Context | None
    ) -> OtelModelCall:
        """A `chat {model}` span under `parent` (None: the ambient span)."""
        span = self._tracer.start_span(f"chat {invocation.model}", parent, SpanKind.CLIENT, _CHAT)
        secret = invocation.credentials.secret()
        if span.is_recording():
            span.set_attributes(self._identity() | genai.request_attributes(invocation))
            if purpose is not None:
                span.set_attribute(genai.PURPOSE, purpose)
            if self.options.capture_content:
                _record_input(span, invocation, secret)
        return OtelModelCall(span, invocation, secret, self.options)

    def start_tool_call(
        self, call: ToolCallBlock, secret: str | None, parent: Context
    ) -> OtelToolCall:
        """An `execute_tool {name}` span under `parent`."""
        span = self._tracer.start_span(
            f"execute_tool {call.name}", parent, SpanKind.INTERNAL, _EXECUTE_TOOL
        )
        if span.is_recording():
            span.set_attributes(self._identity() | genai.tool_attributes(call))
            if self.options.capture_content:
                span.set_attribute(genai.TOOL_ARGUMENTS, genai.json_text(call.arguments, secret))
        return OtelToolCall(span, secret, self.options.capture_content)

    def _identity(self) -> dict[str, str]:
        return genai.identity_attributes(self._state)

    def _scope_model(self) -> Mapping[str, str]:
        provider = genai.provider_name(self._state.provider)
        return {genai.PROVIDER: provider, genai.REQUEST_MODEL: self._state.model}


def _record_input(span: Span, invocation: ModelInvocation, secret: str | None) -> None:
    span.set_attribute(genai.INPUT_MESSAGES, genai.input_messages_json(invocation.history, secret))
    if invocation.system_prompt:
        instructions = genai.system_instructions_json(invocation.system_prompt, secret)
        span.set_attribute(genai.SYSTEM_INSTRUCTIONS, instructions)
