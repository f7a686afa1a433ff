"""The offline demo provider: deterministic, no network, and it really calls a tool.

It lets `chatscope chat` show the whole loop (prompt, tool call, tool result, answer) on a
machine with no API key. Every answer says plainly that no model was involved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from chatscope.services.events import (
    FinishEvent,
    FinishReason,
    ProviderEvent,
    TextDelta,
    ToolCallEvent,
    UsageEvent,
)
from chatscope.services.messages import Message, Role, ToolCallBlock, Usage, estimate_tokens
from chatscope.services.runtime.invocation import ModelInvocation

__all__ = ["DemoProvider"]

OFFLINE_LABEL = "[offline demo provider: no model was called]"
_DEMO_TOOL = "list_directory"


class DemoProvider:
    """Answers from the conversation itself; asks for a directory listing first."""

    __slots__ = ("_name",)

    def __init__(self, *, name: str = "demo") -> None:
        self._name = name

    @property
    def name(self) -> str:
        """The provider name this adapter answers to."""
        return self._name

    async def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
        """Call `list_directory` on a fresh prompt; answer once the result is back."""
        last = invocation.history[-1] if invocation.history else None
        wants_tool = any(tool.name == _DEMO_TOOL for tool in invocation.tools)
        if last is not None and last.role is Role.USER and wants_tool:
            call_id = f"demo_call_{len(invocation.history)}"
            yield ToolCallEvent(ToolCallBlock.create(call_id, _DEMO_TOOL, {"path": "."}))
            yield _usage(invocation, output_tokens=8)
            yield FinishEvent(FinishReason.TOOL_CALLS, "tool_calls")
            return
        answer = _answer(invocation.history)
        for piece in _pieces(answer):
            yield TextDelta(piece)
        yield _usage(invocation, output_tokens=max(1, len(answer) // 4))
        yield FinishEvent(FinishReason.STOP, "stop")


def _answer(history: tuple[Message, ...]) -> str:
    prompt = next((m.text for m in reversed(history) if m.role is Role.USER and m.text), "")
    listing = _last_tool_output(history)
    lines = [OFFLINE_LABEL, f"You asked: {prompt!r}."]
    if listing is not None:
        entries = [line for line in listing.splitlines() if line.strip()]
        lines.append(f"I called {_DEMO_TOOL}; the workspace holds {len(entries)} entries:")
        lines.extend(f"  {entry}" for entry in entries[:20])
    lines.append("Configure a provider (see `chatscope config show`) for real answers.")
    return "\n".join(lines) + "\n"


def _last_tool_output(history: tuple[Message, ...]) -> str | None:
    for message in reversed(history):
        for result in message.tool_results:
            if result.name == _DEMO_TOOL:
                return result.content
        if message.role is Role.USER:
            return None
    return None


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [word + " " for word in words[:-1]] + [words[-1]]


def _usage(invocation: ModelInvocation, *, output_tokens: int) -> UsageEvent:
    return UsageEvent(Usage(estimate_tokens(invocation.history), output_tokens))
