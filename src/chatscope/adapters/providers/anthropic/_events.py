"""How an Anthropic Messages answer, an event stream or one JSON body, becomes chatscope's events.

Every per-call value lives in a `StreamState` that dies with the call. Content travels only in
`content_block_*` events; other unknown event types are skipped, as Anthropic adds them.

A call of the output tool (`output_tool`, asked for a typed answer) is the answer itself: its
input streams out as text, its `input_json_delta` fragments as they come, and it is no tool call;
a response whose only call it was finished with `stop`, not `tool_calls`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from chatscope.adapters.providers._http import parse_json
from chatscope.errors import (
    AuthenticationFailedError,
    ErrorCategory,
    InvalidRequestError,
    ModelNotFoundError,
    ProviderError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
)
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

__all__ = ["StreamState", "process_event", "process_response"]

_NO_EVENTS: tuple[ProviderEvent, ...] = ()

_STOP_REASONS: Mapping[str, FinishReason] = MappingProxyType(
    {
        "end_turn": FinishReason.STOP,
        "stop_sequence": FinishReason.STOP,
        "max_tokens": FinishReason.LENGTH,
        "model_context_window_exceeded": FinishReason.LENGTH,
        "tool_use": FinishReason.TOOL_CALLS,
        "refusal": FinishReason.CONTENT_FILTER,
    }
)

# Content only travels in `content_block_*` events, whose unknown block and delta types raise, as
# does an unknown `content_block_*` event: a new kind of content never vanishes unnoticed. Other
# unknown event types are skipped, as Anthropic says new ones may appear at any time.
_CONTENT_EVENT_PREFIX = "content_block"

_SSE_ERRORS: Mapping[str, tuple[type[ProviderError], ErrorCategory]] = MappingProxyType(
    {
        "invalid_request_error": (InvalidRequestError, ErrorCategory.INVALID_REQUEST),
        "request_too_large": (InvalidRequestError, ErrorCategory.CONTEXT_LENGTH),
        "authentication_error": (AuthenticationFailedError, ErrorCategory.AUTHENTICATION),
        "permission_error": (AuthenticationFailedError, ErrorCategory.PERMISSION),
        "not_found_error": (ModelNotFoundError, ErrorCategory.NOT_FOUND),
        "rate_limit_error": (RateLimitError, ErrorCategory.RATE_LIMIT),
        "overloaded_error": (ServerError, ErrorCategory.OVERLOADED),
        "api_error": (ServerError, ErrorCategory.SERVER),
    }
)


def _malformed(exc: Exception, provider: str) -> StreamProtocolError:
    """A payload that is not JSON, or not the documented shape, is the provider's fault."""
    return StreamProtocolError(
        f"malformed response ({type(exc).__name__}: {exc})", provider=provider
    )


@dataclass(slots=True)
class _PendingCall:
    """A tool call whose `input_json_delta` fragments are still arriving."""

    id: str
    name: str
    initial_input: Mapping[str, Any]
    fragments: list[str] = field(default_factory=list)

    def complete(self, provider: str) -> ToolCallBlock:
        """The call; input that is not a JSON object gives it an `arguments_error` for the
        model to correct (`ToolCallBlock.from_json`)."""
        text = "".join(self.fragments)
        if text:
            return ToolCallBlock.from_json(self.id, self.name, text, provider=provider)
        return ToolCallBlock.create(self.id, self.name, self.initial_input, provider=provider)


@dataclass(slots=True)
class StreamState:
    """What one streamed response has said so far; created per call, never shared."""

    provider: str
    usage: dict[str, Any] = field(default_factory=dict)
    calls: dict[int, _PendingCall] = field(default_factory=dict)
    stop_reason: str | None = None
    finished: bool = False
    output_tool: str | None = None
    answers: dict[int, _PendingCall] = field(default_factory=dict)
    made_calls: bool = False


def process_event(state: StreamState, data: str) -> tuple[ProviderEvent, ...]:
    try:
        payload = parse_json(data)
        kind = payload["type"]
        if kind == "content_block_delta" and payload["delta"]["type"] == "text_delta":
            return (TextDelta(payload["delta"]["text"]),)  # the hot path, kept to one call
        return _EVENT_HANDLERS.get(kind, _on_other)(state, payload)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _malformed(exc, state.provider) from exc


Handler = Callable[[StreamState, Mapping[str, Any]], tuple[ProviderEvent, ...]]


def _on_message_start(state: StreamState, payload: Mapping[str, Any]) -> tuple[ProviderEvent, ...]:
    _merge_usage(state, payload["message"].get("usage"))
    return _NO_EVENTS


def _on_block_start(state: StreamState, payload: Mapping[str, Any]) -> tuple[ProviderEvent, ...]:
    block = payload["content_block"]
    kind = block["type"]
    if kind == "text":
        return (TextDelta(block["text"]),) if block["text"] else _NO_EVENTS
    if kind == "thinking":
        return (ThinkingDelta(block["thinking"]),) if block["thinking"] else _NO_EVENTS
    if kind == "redacted_thinking":
        return (ThinkingDelta("", redacted_data=block["data"]),)
    if kind == "tool_use":
        pending = _PendingCall(block["id"], block["name"], block.get("input") or {})
        calls = state.answers if pending.name == state.output_tool else state.calls
        calls[payload["index"]] = pending
        return _NO_EVENTS
    raise _unsupported(f"content block type {kind!r}", state.provider)


def _on_delta(state: StreamState, payload: Mapping[str, Any]) -> tuple[ProviderEvent, ...]:
    delta = payload["delta"]
    kind = delta["type"]
    if kind == "thinking_delta":
        return (ThinkingDelta(delta["thinking"]),)
    if kind == "input_json_delta":
        fragment = delta["partial_json"]
        answer = state.answers.get(payload["index"])
        if answer is not None:
            answer.fragments.append(fragment)
            return (TextDelta(fragment),) if fragment else _NO_EVENTS
        state.calls[payload["index"]].fragments.append(fragment)
        return _NO_EVENTS
    if kind == "signature_delta":
        # It arrives as the thinking block's last delta: it closes the block.
        return (ThinkingDelta("", signature=delta["signature"]),)
    raise _unsupported(f"delta type {kind!r}", state.provider)


def _on_block_stop(state: StreamState, payload: Mapping[str, Any]) -> tuple[ProviderEvent, ...]:
    answer = state.answers.get(payload["index"])
    if answer is not None:
        # An input given whole at the block's start (no fragments) is the answer's only text.
        return _NO_EVENTS if answer.fragments else (TextDelta(json.dumps(answer.initial_input)),)
    pending = state.calls.pop(payload["index"], None)
    if pending is None:
        return _NO_EVENTS
    state.made_calls = True
    return (ToolCallEvent(pending.complete(state.provider)),)


def _on_message_delta(state: StreamState, payload: Mapping[str, Any]) -> tuple[ProviderEvent, ...]:
    state.stop_reason = payload["delta"].get("stop_reason") or state.stop_reason
    _merge_usage(state, payload.get("usage"))
    return _NO_EVENTS


def _on_message_stop(state: StreamState, payload: Mapping[str, Any]) -> tuple[ProviderEvent, ...]:
    state.finished = True
    answered = bool(state.answers) and not state.made_calls
    return (UsageEvent(_usage(state.usage)), _finish(state.stop_reason, answered=answered))


def _on_error(state: StreamState, payload: Mapping[str, Any]) -> tuple[ProviderEvent, ...]:
    raise _stream_error(payload.get("error") or {}, state.provider)


def _on_other(state: StreamState, payload: Mapping[str, Any]) -> tuple[ProviderEvent, ...]:
    """`ping` and event types added after this adapter: nothing a conversation needs."""
    if str(payload["type"]).startswith(_CONTENT_EVENT_PREFIX):
        raise _unsupported(f"event type {payload['type']!r}", state.provider)
    return _NO_EVENTS


_EVENT_HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        "content_block_delta": _on_delta,
        "content_block_start": _on_block_start,
        "content_block_stop": _on_block_stop,
        "message_start": _on_message_start,
        "message_delta": _on_message_delta,
        "message_stop": _on_message_stop,
        "error": _on_error,
    }
)


def _merge_usage(state: StreamState, usage: Mapping[str, Any] | None) -> None:
    """`message_delta` usage is cumulative, so later counts replace earlier ones, never add."""
    if usage:
        state.usage.update((key, value) for key, value in usage.items() if value is not None)


def process_response(
    body: bytes, provider: str, output_tool: str | None = None
) -> list[ProviderEvent]:
    """A whole (non-streamed) message, mapped to the events a stream of it would give."""
    try:
        payload = parse_json(body)
        if payload.get("type") == "error":
            raise _stream_error(payload.get("error") or {}, provider)
        events = [
            event
            for block in payload["content"]
            for event in _response_block_events(block, provider, output_tool)
        ]
        calls = any(isinstance(event, ToolCallEvent) for event in events)
        answered = not calls and any(_is_answer(block, output_tool) for block in payload["content"])
        events.append(UsageEvent(_usage(payload.get("usage") or {})))
        events.append(_finish(payload.get("stop_reason"), answered=answered))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _malformed(exc, provider) from exc
    return events


def _is_answer(block: Mapping[str, Any], output_tool: str | None) -> bool:
    return output_tool is not None and block["type"] == "tool_use" and block["name"] == output_tool


def _response_block_events(
    block: Mapping[str, Any], provider: str, output_tool: str | None
) -> tuple[ProviderEvent, ...]:
    if _is_answer(block, output_tool):
        return (TextDelta(json.dumps(block.get("input") or {})),)
    kind = block["type"]
    if kind == "text":
        return (TextDelta(block["text"]),)
    if kind == "thinking":
        return (ThinkingDelta(block["thinking"]), ThinkingDelta("", signature=block["signature"]))
    if kind == "redacted_thinking":
        return (ThinkingDelta("", redacted_data=block["data"]),)
    if kind == "tool_use":
        arguments = block.get("input") or {}
        call = ToolCallBlock.create(block["id"], block["name"], arguments, provider=provider)
        return (ToolCallEvent(call),)
    raise _unsupported(f"content block type {kind!r}", provider)


def _usage(raw: Mapping[str, Any]) -> Usage:
    """Input counts cache reads and writes too, as other providers' prompt counts do.

    Anthropic's `input_tokens` is only the uncached part of the prompt.
    """
    cache_read = raw.get("cache_read_input_tokens") or 0
    cache_write = raw.get("cache_creation_input_tokens") or 0
    return Usage(
        input_tokens=(raw.get("input_tokens") or 0) + cache_read + cache_write,
        output_tokens=raw.get("output_tokens") or 0,
        cached_tokens=cache_read,
    )


def _finish(stop_reason: str | None, *, answered: bool = False) -> FinishEvent:
    """`answered`: the output tool was the only call, so the model is done, not waiting."""
    reason = _STOP_REASONS.get(stop_reason or "", FinishReason.OTHER)
    if answered and reason is FinishReason.TOOL_CALLS:
        reason = FinishReason.STOP
    return FinishEvent(reason, raw=stop_reason)


def _stream_error(error: Mapping[str, Any], provider: str) -> ProviderError:
    """An `error` event arrives after a 200 status, so it carries no HTTP status of its own."""
    kind, category = _SSE_ERRORS.get(str(error.get("type")), (ServerError, ErrorCategory.SERVER))
    message = str(error.get("message") or error.get("type") or "unknown stream error")
    return kind(message, provider=provider, category=category)


def _unsupported(what: str, provider: str) -> StreamProtocolError:
    return StreamProtocolError(
        f"unsupported {what}: chatscope cannot represent it", provider=provider
    )
