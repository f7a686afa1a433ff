"""Fake providers that stand in for a real model in tests. They record what they were sent."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatscope.services.events import (
    FinishEvent,
    FinishReason,
    ProviderEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallEvent,
    UsageEvent,
)
from chatscope.services.messages import ToolCallBlock, Usage
from chatscope.services.runtime.invocation import ModelInvocation

__all__ = ["FunctionProvider", "ScriptedProvider", "ScriptedReply"]


@dataclass(frozen=True)
class ScriptedReply:
    """One model response: optional thinking, text (streamed in `chunks` pieces), tool calls."""

    text: str = ""
    tool_calls: Sequence[tuple[str, Mapping[str, Any]]] = ()
    thinking: str | None = None
    usage: Usage = field(default_factory=lambda: Usage(10, 5))
    chunks: int = 1
    finish: FinishReason | None = None

    def events(self, call_id_prefix: str = "call") -> list[ProviderEvent]:
        """The provider events this reply streams."""
        events: list[ProviderEvent] = []
        if self.thinking:
            events.append(ThinkingDelta(self.thinking))
        events.extend(TextDelta(piece) for piece in _split(self.text, self.chunks))
        for index, (name, arguments) in enumerate(self.tool_calls):
            call = ToolCallBlock.create(f"{call_id_prefix}_{index}", name, arguments)
            events.append(ToolCallEvent(call))
        events.append(UsageEvent(self.usage))
        events.append(FinishEvent(self.finish or self._default_finish()))
        return events

    def _default_finish(self) -> FinishReason:
        return FinishReason.TOOL_CALLS if self.tool_calls else FinishReason.STOP


def _split(text: str, pieces: int) -> list[str]:
    if not text:
        return []
    size = max(1, -(-len(text) // max(1, pieces)))
    return [text[start : start + size] for start in range(0, len(text), size)]


class ScriptedProvider:
    """Replays the given replies in order, one per model call, and records each invocation."""

    def __init__(self, replies: Iterable[ScriptedReply], *, name: str = "demo") -> None:
        self._name = name
        self._replies = list(replies)
        self.invocations: list[ModelInvocation] = []

    @property
    def name(self) -> str:
        """The provider name this fake answers to."""
        return self._name

    async def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
        """Yield the next scripted reply's events."""
        self.invocations.append(invocation)
        if not self._replies:
            raise RuntimeError(f"ScriptedProvider {self._name!r} has no replies left")
        reply = self._replies.pop(0)
        for event in reply.events(f"call_{len(self.invocations)}"):
            yield event


Responder = Callable[
    [ModelInvocation],
    ScriptedReply | Iterable[ProviderEvent] | Awaitable[ScriptedReply | Iterable[ProviderEvent]],
]


class FunctionProvider:
    """Answers each call with `responder(invocation)`: a reply, or a list of events."""

    def __init__(self, responder: Responder, *, name: str = "demo") -> None:
        self._name = name
        self._responder = responder
        self.invocations: list[ModelInvocation] = []

    @property
    def name(self) -> str:
        """The provider name this fake answers to."""
        return self._name

    async def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
        """Yield the events the responder returns for this invocation."""
        self.invocations.append(invocation)
        answer = self._responder(invocation)
        if inspect.isawaitable(answer):
            answer = await answer
        events = answer.events() if isinstance(answer, ScriptedReply) else answer
        for event in events:
            yield event
