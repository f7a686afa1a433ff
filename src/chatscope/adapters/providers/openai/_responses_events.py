"""How a Responses answer, streamed events or one whole body, becomes chatscope's events.

Stream events: content travels only in output items and in `*.delta` events, so an output item
type chatscope cannot represent, or an unknown `*.delta` event, raises `StreamProtocolError`;
other unknown events are lifecycle notices and are skipped, like those in `_IGNORED_EVENTS`. A
body that ends cleanly without `response.completed` / `response.incomplete` raises
`StreamProtocolError("stream ended before completion")`; a dropped connection surfaces from
httpx and becomes `ProviderNetworkError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from chatscope.adapters.providers.openai._common import PendingCall, error_from_payload
from chatscope.errors import StreamProtocolError
from chatscope.services.events import (
    FinishEvent,
    FinishReason,
    ProviderEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallEvent,
    UsageEvent,
)
from chatscope.services.messages import Usage

__all__ = ["ResponsesTurn", "process_response"]

_SUMMARY_SEPARATOR = "\n\n"

_IGNORED_EVENTS = frozenset(
    {
        "response.created",
        "response.in_progress",
        "response.queued",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.done",
        "response.output_text.annotation.added",
        "response.refusal.done",
        "response.function_call_arguments.done",
        "response.reasoning_summary_part.done",
        "response.reasoning_summary_text.done",
        "response.reasoning_text.done",
    }
)

_INCOMPLETE_REASONS: Mapping[str, FinishReason] = MappingProxyType(
    {
        "max_output_tokens": FinishReason.LENGTH,
        "content_filter": FinishReason.CONTENT_FILTER,
    }
)


def process_response(payload: dict[str, Any], provider: str) -> list[ProviderEvent]:
    """The events of a whole (non-streamed) `response` object."""
    if payload.get("error") or payload.get("status") == "failed":
        raise error_from_payload(provider, payload.get("error"))
    turn = ResponsesTurn(provider)
    events: list[ProviderEvent] = []
    for item in payload.get("output") or ():
        events.extend(turn.item_done(item))
    events.extend(turn.complete(payload))
    return events


_NO_EVENTS: tuple[ProviderEvent, ...] = ()


class ResponsesTurn:
    """What one response has said so far; created per call, never kept."""

    __slots__ = ("calls", "finished", "made_calls", "provider", "streamed")

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.calls: dict[str, PendingCall] = {}
        # Text already streamed per item id, so `output_item.done` only adds what deltas missed.
        self.streamed: dict[str, list[str]] = {}
        self.made_calls = False
        self.finished = False

    def process_event(self, data: Any) -> Sequence[ProviderEvent]:
        """The events of one SSE payload."""
        kind = data["type"]
        if kind == "response.output_text.delta":
            delta = self._delta(data)
            return (TextDelta(delta),) if delta else _NO_EVENTS
        handler = _HANDLERS.get(kind)
        if handler is not None:
            return handler(self, data)
        if kind in _IGNORED_EVENTS or not kind.endswith(".delta"):
            return _NO_EVENTS
        raise StreamProtocolError(f"unsupported stream event {kind!r}", provider=self.provider)

    def check_finished(self) -> None:
        """Raise unless the stream reached its terminal event."""
        if not self.finished:
            raise StreamProtocolError("stream ended before completion", provider=self.provider)

    def on_refusal_delta(self, data: dict[str, Any]) -> Sequence[ProviderEvent]:
        """A refusal is shown to the user like any other text."""
        delta = self._delta(data)
        return (TextDelta(delta),) if delta else _NO_EVENTS

    def on_thinking_delta(self, data: dict[str, Any]) -> Sequence[ProviderEvent]:
        """Reasoning summary text, or raw reasoning text from servers that expose it."""
        delta = self._delta(data)
        return (ThinkingDelta(delta),) if delta else _NO_EVENTS

    def on_summary_part(self, data: dict[str, Any]) -> Sequence[ProviderEvent]:
        """Separate summary parts the way a non-streamed summary is joined."""
        if data.get("summary_index", 0) > 0:
            self._record(data["item_id"], _SUMMARY_SEPARATOR)
            return (ThinkingDelta(_SUMMARY_SEPARATOR),)
        return _NO_EVENTS

    def on_arguments_delta(self, data: dict[str, Any]) -> Sequence[ProviderEvent]:
        """Collect one fragment of a function call's JSON arguments."""
        pending = self.calls.get(data["item_id"])
        if pending is None:
            message = "arguments for an unknown function call"
            raise StreamProtocolError(message, provider=self.provider)
        pending.parts.append(_string(data["delta"], "arguments delta", self.provider))
        return _NO_EVENTS

    def on_item_added(self, data: dict[str, Any]) -> Sequence[ProviderEvent]:
        """Start tracking a function call; refuse item types chatscope cannot represent."""
        item = data["item"]
        kind = item["type"]
        if kind == "function_call":
            self.calls[item["id"]] = PendingCall(
                item.get("call_id") or "", item.get("name") or "", item_id=item["id"] or None
            )
        elif kind not in ("message", "reasoning"):
            raise _unsupported_item(kind, self.provider)
        return _NO_EVENTS

    def on_item_done(self, data: dict[str, Any]) -> Sequence[ProviderEvent]:
        """A finished output item of the stream."""
        return self.item_done(data["item"])

    def on_completed(self, data: dict[str, Any]) -> Sequence[ProviderEvent]:
        """`response.completed` or `response.incomplete`: usage, then the finish."""
        return self.complete(data["response"])

    def on_failed(self, data: dict[str, Any]) -> Sequence[ProviderEvent]:
        """`response.failed` carries the error on its response object."""
        raise error_from_payload(self.provider, data["response"].get("error"))

    def on_error(self, data: dict[str, Any]) -> Sequence[ProviderEvent]:
        """An `error` event: OpenAI streams its code and message nested under `error`; the API
        reference puts them on the event itself. Either way they classify the error."""
        nested = data.get("error")
        raise error_from_payload(self.provider, nested if isinstance(nested, Mapping) else data)

    def item_done(self, item: dict[str, Any]) -> Sequence[ProviderEvent]:
        """The events of one complete output item (streamed or from a whole body)."""
        kind = item["type"]
        if kind == "message":
            return self._message_done(item)
        if kind == "reasoning":
            return self._reasoning_done(item)
        if kind == "function_call":
            return self._call_done(item)
        raise _unsupported_item(kind, self.provider)

    def complete(self, response: dict[str, Any]) -> list[ProviderEvent]:
        """Usage and the finish of the whole response."""
        self.finished = True
        events: list[ProviderEvent] = []
        if response.get("usage"):
            events.append(UsageEvent(_usage(response["usage"])))
        events.append(_finish(response, self.made_calls))
        return events

    def _delta(self, data: dict[str, Any]) -> str:
        """The text of a delta event, remembered against its item."""
        delta = _string(data["delta"], "delta", self.provider)
        self._record(data["item_id"], delta)
        return delta

    def _record(self, item_id: str, delta: str) -> None:
        pieces = self.streamed.get(item_id)
        if pieces is None:
            self.streamed[item_id] = [delta]
        else:
            pieces.append(delta)

    def _remainder(self, item_id: str, text: str) -> str:
        """What of an item's full text its deltas did not carry: all of it for a whole body.

        Where the deltas disagree with the finished item, what was streamed stands.
        """
        streamed = "".join(self.streamed.pop(item_id, ()))
        return text[len(streamed) :] if text.startswith(streamed) else ""

    def _message_done(self, item: dict[str, Any]) -> Sequence[ProviderEvent]:
        text = "".join(_message_part_text(part, self.provider) for part in item["content"])
        rest = self._remainder(item.get("id") or "", text)
        return (TextDelta(rest),) if rest else _NO_EVENTS

    def _reasoning_done(self, item: dict[str, Any]) -> Sequence[ProviderEvent]:
        item_id = item.get("id") or ""
        streamed = item_id in self.streamed
        rest = self._remainder(item_id, _reasoning_text(item, self.provider))
        events: list[ProviderEvent] = [ThinkingDelta(rest)] if rest else []
        encrypted = item.get("encrypted_content") or None
        if encrypted or events or streamed:
            # Closes the block: item id and encrypted content travel back on the next turn.
            events.append(ThinkingDelta("", signature=item_id or None, redacted_data=encrypted))
        return events

    def _call_done(self, item: dict[str, Any]) -> Sequence[ProviderEvent]:
        pending = self.calls.pop(item.get("id") or "", None)
        if pending is None or not pending.parts:
            call_id = item.get("call_id") or (pending.id if pending else "")
            name = item.get("name") or (pending.name if pending else "")
            arguments = [item.get("arguments") or ""]
            pending = PendingCall(call_id, name, arguments, item_id=item.get("id") or None)
        self.made_calls = True
        return (ToolCallEvent(pending.block(self.provider)),)


_Handler = Callable[[ResponsesTurn, dict[str, Any]], Sequence[ProviderEvent]]

_HANDLERS: Mapping[str, _Handler] = MappingProxyType(
    {
        "response.refusal.delta": ResponsesTurn.on_refusal_delta,
        "response.reasoning_summary_text.delta": ResponsesTurn.on_thinking_delta,
        "response.reasoning_text.delta": ResponsesTurn.on_thinking_delta,
        "response.reasoning_summary_part.added": ResponsesTurn.on_summary_part,
        "response.function_call_arguments.delta": ResponsesTurn.on_arguments_delta,
        "response.output_item.added": ResponsesTurn.on_item_added,
        "response.output_item.done": ResponsesTurn.on_item_done,
        "response.completed": ResponsesTurn.on_completed,
        "response.incomplete": ResponsesTurn.on_completed,
        "response.failed": ResponsesTurn.on_failed,
        "error": ResponsesTurn.on_error,
    }
)


def _message_part_text(part: dict[str, Any], provider: str) -> str:
    kind = part["type"]
    if kind == "output_text":
        return _string(part["text"], "output text", provider)
    if kind == "refusal":
        return _string(part["refusal"], "refusal", provider)
    raise StreamProtocolError(f"unsupported message content {kind!r}", provider=provider)


def _reasoning_text(item: dict[str, Any], provider: str) -> str:
    texts = [_reasoning_part_text(part, provider) for part in item.get("summary") or ()]
    texts.extend(_reasoning_part_text(part, provider) for part in item.get("content") or ())
    return _SUMMARY_SEPARATOR.join(texts)


def _reasoning_part_text(part: dict[str, Any], provider: str) -> str:
    kind = part["type"]
    if kind not in ("summary_text", "reasoning_text"):
        raise StreamProtocolError(f"unsupported reasoning content {kind!r}", provider=provider)
    return _string(part["text"], "reasoning text", provider)


def _string(value: Any, what: str, provider: str) -> str:
    if not isinstance(value, str):
        raise StreamProtocolError(f"{what} is not a string", provider=provider)
    return value


def _unsupported_item(kind: Any, provider: str) -> StreamProtocolError:
    return StreamProtocolError(
        f"output item of type {kind!r} cannot be represented by chatscope", provider=provider
    )


def _usage(usage: dict[str, Any]) -> Usage:
    input_details = usage.get("input_tokens_details") or {}
    output_details = usage.get("output_tokens_details") or {}
    return Usage(
        input_tokens=usage.get("input_tokens") or 0,
        output_tokens=usage.get("output_tokens") or 0,
        cached_tokens=input_details.get("cached_tokens") or 0,
        reasoning_tokens=output_details.get("reasoning_tokens") or 0,
    )


def _finish(response: dict[str, Any], made_calls: bool) -> FinishEvent:
    """Responses has no finish reason: it is read from `status` and `incomplete_details`."""
    status = response.get("status") or "completed"
    if status == "incomplete":
        raw = (response.get("incomplete_details") or {}).get("reason") or status
        return FinishEvent(_INCOMPLETE_REASONS.get(raw, FinishReason.OTHER), raw)
    if status == "completed":
        return FinishEvent(FinishReason.TOOL_CALLS if made_calls else FinishReason.STOP, status)
    return FinishEvent(FinishReason.OTHER, status)
