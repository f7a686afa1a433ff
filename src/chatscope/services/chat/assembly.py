"""Folding a provider's event stream into one assistant message, with its usage and finish."""

from __future__ import annotations

import time
from typing import assert_never

from chatscope.services.events import (
    FinishEvent,
    FinishReason,
    ProviderEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallEvent,
    UsageEvent,
)
from chatscope.services.messages import Block, Message, Role, TextBlock, ThinkingBlock, Usage

__all__ = ["ResponseAssembler"]


class ResponseAssembler:
    """Joins consecutive deltas of a kind into one block; a signature closes the block it ends."""

    __slots__ = (
        "_blocks",
        "_open_kind",
        "_pieces",
        "_provider",
        "finish",
        "first_event_at",
        "usage",
    )

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._blocks: list[Block] = []
        self._pieces: list[str] = []
        self._open_kind: type[TextDelta] | type[ThinkingDelta] | None = None
        self.usage = Usage()
        self.finish: FinishEvent | None = None
        self.first_event_at: float | None = None

    def set_provider(self, provider: str) -> None:
        """Name the provider whose stream this assembles, before its first event: the endpoint
        of a fallback chain that answered, so its thinking blocks carry its name."""
        self._provider = provider

    def add(self, event: ProviderEvent) -> None:
        """Take one event of the stream."""
        if self.first_event_at is None:
            self.first_event_at = time.perf_counter()
        self._take(event)

    def add_all(self, events: list[ProviderEvent], first_event_at: float | None = None) -> None:
        """Take the events of a stream read to its end; `first_event_at` is when the first came.

        One call per model call rather than one per streamed event keeps the chat loop lean.
        """
        if self.first_event_at is None:
            self.first_event_at = first_event_at
        pieces = self._pieces
        for event in events:
            if type(event) is TextDelta and self._open_kind is TextDelta and not event.signature:
                pieces.append(event.text)  # the hot path: one more piece of the same text
            else:
                self._take(event)
                pieces = self._pieces

    def _take(self, event: ProviderEvent) -> None:
        if type(event) is TextDelta and self._open_kind is TextDelta and not event.signature:
            self._pieces.append(event.text)
            return
        match event:
            case TextDelta() | ThinkingDelta():
                self._add_delta(event)
            case ToolCallEvent(call=call):
                self._close()
                self._blocks.append(call)
            case UsageEvent(usage=usage):
                self.usage = self.usage + usage
            case FinishEvent():
                self.finish = event
            case _:
                assert_never(event)

    @property
    def finish_reason(self) -> FinishReason:
        """The reported finish reason (`other` if the provider never said)."""
        return self.finish.reason if self.finish else FinishReason.OTHER

    def message(self) -> Message:
        """The assistant message assembled so far."""
        self._close()
        return Message(Role.ASSISTANT, tuple(self._blocks))

    def _add_delta(self, delta: TextDelta | ThinkingDelta) -> None:
        if self._open_kind is not type(delta):
            self._close()
            self._open_kind = type(delta)
        self._pieces.append(delta.text)
        if isinstance(delta, ThinkingDelta) and (delta.signature or delta.redacted_data):
            self._close(delta.signature, delta.redacted_data)
        elif isinstance(delta, TextDelta) and delta.signature:
            self._close(delta.signature)

    def _close(self, signature: str | None = None, redacted: str | None = None) -> None:
        if self._open_kind is None:
            return
        text = "".join(self._pieces)
        if self._open_kind is TextDelta:
            if text or signature:
                self._blocks.append(TextBlock(text, signature))
        else:
            self._blocks.append(ThinkingBlock(text, signature, redacted, self._provider))
        self._pieces = []
        self._open_kind = None
