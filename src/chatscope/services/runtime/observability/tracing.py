"""The tracing port: what a scope tells a tracer about its turns, model calls and tool calls.

A `Tracing` (one per application) makes a `ScopeTracer` for every scope; the scope's
`RuntimeTelemetry` carries it. The chat loop opens a `TurnTrace` per turn and, from it, a
`ModelCallTrace` per model call and a `ToolCallTrace` per tool call, so those are children of
their turn without any ambient state. A span is *active* (the ambient parent of whatever starts
inside it) only around a plain `await`, never across a `yield` of the turn's generator:
`TurnTrace.active()` around history compression, `ModelCallTrace.active()` around opening the
provider's stream, and a `ToolCallTrace` for the whole of its call, which is how the `task` tool
finds the span a subagent's spans belong under (`ScopeTracer.here`).

Nothing here knows OpenTelemetry: the adapter (`chatscope.adapters.telemetry`) names spans and
attributes after its semantic conventions. `NO_TRACING` is the default: every call does nothing.
Values handed over (`output`, errors) are read only by a tracer that records them. A tracer
blanks the key of a model call (`invocation.credentials`) out of anything it records of that
call, and a turn's out of anything of its tool calls and of the turn itself.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import Protocol

from chatscope.services.events import CompletedTurn
from chatscope.services.messages import Message, ToolCallBlock, ToolResultBlock, Usage
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.state import AgentRuntimeState

__all__ = [
    "NO_TRACER",
    "NO_TRACING",
    "CallOutcome",
    "ModelCallTrace",
    "NoTracing",
    "ScopeTracer",
    "ToolCallTrace",
    "TraceParent",
    "Tracing",
    "TurnTrace",
]

TraceParent = object
"""An opaque handle on a span (the adapter's own type), to parent another scope's spans."""


class CallOutcome(Protocol):
    """How a model call ended, as `ModelCallTrace.completed` reads it."""

    @property
    def usage(self) -> Usage:
        """Tokens the call used."""
        ...

    @property
    def finish_reason(self) -> str:
        """Why the response ended."""
        ...


class ModelCallTrace(Protocol):
    """One model call, all its attempts; ended by `completed`, `failed` or `end`."""

    def active(self) -> AbstractContextManager[None]:
        """This call as the ambient span, around an `await` that does not yield."""
        ...

    def retrying(self, *, attempt: int, error: BaseException, delay: float) -> None:
        """Attempt `attempt` failed and is tried again after `delay` seconds."""
        ...

    def answered_by(self, provider: str, model: str) -> None:
        """Another endpoint than the one asked (a fallback member) answers this call."""
        ...

    def completed(
        self,
        outcome: CallOutcome,
        *,
        attempts: int,
        first_chunk_s: float | None,
        output: Callable[[], Message],
    ) -> None:
        """The call answered; `output()` builds the answer, for a tracer that records it."""
        ...

    def failed(self, error: BaseException, *, attempts: int) -> None:
        """The call failed for good."""
        ...

    def end(self) -> None:
        """The call was abandoned (cancelled, its stream closed early)."""
        ...


class ToolCallTrace(Protocol):
    """One tool call: entering it makes it the ambient span until it exits."""

    def __enter__(self) -> ToolCallTrace:
        """Start being the ambient span."""
        ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop being the ambient span, and end."""
        ...

    def completed(self, result: ToolResultBlock) -> None:
        """The tool answered (`result.error` set: it failed)."""
        ...


class TurnTrace(Protocol):
    """One turn of a chat; its model and tool calls are its children."""

    def __enter__(self) -> TurnTrace:
        """The turn starts."""
        ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """The turn ends; an `Exception` ends it failed, a cancellation just ends it."""
        ...

    def active(self) -> AbstractContextManager[None]:
        """This turn as the ambient span, around an `await` that does not yield."""
        ...

    def model_call(
        self, invocation: ModelInvocation, *, purpose: str | None = None
    ) -> ModelCallTrace:
        """A model call of this turn."""
        ...

    def tool_call(self, call: ToolCallBlock) -> ToolCallTrace:
        """A tool call of this turn (asked for by its latest model call)."""
        ...

    def completed(self, turn: CompletedTurn) -> None:
        """The turn answered."""
        ...


class ScopeTracer(Protocol):
    """The tracer of one scope: its identity is on every span it makes."""

    def turn(self, prompt: Message) -> TurnTrace:
        """A turn answering `prompt`: a child of the scope's parent span, if it was given one,
        else of the ambient span."""
        ...

    def model_call(
        self, invocation: ModelInvocation, *, purpose: str | None = None
    ) -> ModelCallTrace:
        """A model call outside a turn's own loop (a compression summary): a child of the
        ambient span, else of the scope's parent span."""
        ...

    def here(self) -> TraceParent | None:
        """The ambient span, to parent the spans of a scope built now (a subagent's)."""
        ...

    def provider_switched(self, *, from_: str, to: str, reason: str, status: int | None) -> None:
        """A call moved along the scope's fallback chain (`provider:model` labels): an event of
        the ambient span, the model call whose stream is being opened."""
        ...


class Tracing(Protocol):
    """Makes the tracer of each scope (one per application)."""

    def scope_tracer(
        self, state: AgentRuntimeState, *, parent: TraceParent | None = None
    ) -> ScopeTracer:
        """The tracer of the scope `state`; its turns are children of `parent`, when given."""
        ...


class NoTracing:
    """Tracing that records nothing: every trace is this one stateless object."""

    __slots__ = ()

    def scope_tracer(
        self, state: AgentRuntimeState, *, parent: TraceParent | None = None
    ) -> NoTracing:
        """Itself."""
        return self

    def turn(self, prompt: Message) -> NoTracing:
        """Itself."""
        return self

    def model_call(self, invocation: ModelInvocation, *, purpose: str | None = None) -> NoTracing:
        """Itself."""
        return self

    def tool_call(self, call: ToolCallBlock) -> NoTracing:
        """Itself."""
        return self

    def here(self) -> None:
        """No span."""

    def provider_switched(self, *, from_: str, to: str, reason: str, status: int | None) -> None:
        """Nothing."""

    def answered_by(self, provider: str, model: str) -> None:
        """Nothing."""

    def active(self) -> AbstractContextManager[None]:
        """A context manager that does nothing."""
        return _INACTIVE

    def __enter__(self) -> NoTracing:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def retrying(self, *, attempt: int, error: BaseException, delay: float) -> None:
        """Nothing."""

    def completed(self, *args: object, **kwargs: object) -> None:
        """Nothing."""

    def failed(self, error: BaseException, *, attempts: int) -> None:
        """Nothing."""

    def end(self) -> None:
        """Nothing."""


_INACTIVE = nullcontext()  # holds nothing: a reusable context manager that does nothing

NO_TRACING = NoTracing()
"""Tracing that records nothing (stateless, so one object serves every scope)."""

NO_TRACER: ScopeTracer = NO_TRACING
"""The tracer of a scope built without tracing."""
