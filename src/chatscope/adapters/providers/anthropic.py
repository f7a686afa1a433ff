"""The Anthropic Messages API (`POST /v1/messages`) over httpx.

The request is built from the invocation alone and the answer is parsed by its content type, so a
streamed and a whole-body response give the same neutral events. The adapter keeps nothing between
calls (REQ-SP4-002/003): it holds its client and its name, and every per-call value lives in the
invocation or in a `_StreamState` that dies with the call.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, assert_never

from chatscope.adapters.providers._http import (
    HttpProvider,
    endpoint,
    is_event_stream,
    streamed_response,
)
from chatscope.adapters.providers._output_limits import (
    ANTHROPIC_OUTPUT_LIMITS,
    capped_output_tokens,
)
from chatscope.adapters.providers._sse import sse_stream
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
from chatscope.services.frozen import thaw
from chatscope.services.messages import (
    Block,
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
    Usage,
)
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.tools.ports import ToolDeclaration

__all__ = ["AnthropicProvider"]

_API_VERSION = "2023-06-01"
_VALID_TOOL_ID = re.compile(r"[a-zA-Z0-9_-]+")
_INVALID_TOOL_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_EMPTY_SCHEMA: Mapping[str, Any] = MappingProxyType({"type": "object", "properties": {}})
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


class AnthropicProvider(HttpProvider):
    """Streams one Messages API call per `stream`; model, key and URL come from the invocation."""

    __slots__ = ()
    default_name = "anthropic"

    async def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
        """Send the invocation and yield its answer as neutral events, `FinishEvent` last.

        The answer is parsed by what the server sent, not by what was asked: an error status, an
        event stream or one JSON body. The loops stay in this one generator because every nested
        async generator costs a hop per event.
        """
        secret = invocation.credentials.secret()
        url, headers, body = _request(invocation, self._name, secret)
        async with streamed_response(
            self._client, self._name, secret, url, headers=headers, body=body
        ) as response:
            if not is_event_stream(response):
                for event in _process_response(await response.aread(), self._name):
                    yield event
                return
            state = _StreamState(self._name)
            async with sse_stream(response) as events:
                async for sse in events:
                    for event in _process_event(state, sse.data):
                        yield event
            if not state.finished:
                raise StreamProtocolError("stream ended before message_stop", provider=self._name)


def _request(
    invocation: ModelInvocation, provider: str, secret: str | None
) -> tuple[str, dict[str, str], dict[str, Any]]:
    url = endpoint(invocation, "/v1/messages")
    return url, _headers(secret), _request_body(invocation, provider)


def _headers(secret: str | None) -> dict[str, str]:
    """The key travels in this call's headers only; local servers without a key get none."""
    headers = {"anthropic-version": _API_VERSION}
    if secret:
        headers["x-api-key"] = secret
    return headers


def _request_body(invocation: ModelInvocation, provider: str) -> dict[str, Any]:
    """Model params go to the top level and may override `max_tokens` and `stream`."""
    body: dict[str, Any] = {
        "model": invocation.model,
        "max_tokens": _max_tokens(invocation.model, invocation.ephemerals.max_output_tokens),
        "stream": True,
        **thaw(invocation.model_params),
    }
    if invocation.system_prompt:
        body["system"] = invocation.system_prompt
    if invocation.tools:
        body["tools"] = _map_tools(invocation.tools)
    body["messages"] = _map_messages(invocation.history, provider)
    return body


def _max_tokens(model: str, ceiling: int) -> int:
    """`maxOutputTokens`, lowered to the model family's documented limit where it is known."""
    return capped_output_tokens(model, ceiling, ANTHROPIC_OUTPUT_LIMITS)


def _map_tools(tools: Iterable[ToolDeclaration]) -> list[dict[str, Any]]:
    return [
        {
            "name": tool.name,
            "description": tool.description,
            "input_schema": thaw(tool.parameters) or dict(_EMPTY_SCHEMA),
        }
        for tool in tools
    ]


def _map_messages(history: Iterable[Message], provider: str) -> list[dict[str, Any]]:
    """Tool results become user content; same-role neighbours merge, as the API wants turns."""
    wire: list[dict[str, Any]] = []
    for message in history:
        role = "assistant" if message.role is Role.ASSISTANT else "user"
        content = [part for block in message.blocks if (part := _map_block(block, provider))]
        if not content:
            continue
        if wire and wire[-1]["role"] == role:
            wire[-1]["content"].extend(content)
        else:
            wire.append({"role": role, "content": content})
    return wire


def _map_block(block: Block, provider: str) -> dict[str, Any] | None:
    match block:
        case TextBlock():
            # The API rejects empty text blocks, and an empty one carries nothing.
            return {"type": "text", "text": block.text} if block.text else None
        case ThinkingBlock():
            return _map_thinking(block, provider)
        case ToolCallBlock():
            return {
                "type": "tool_use",
                "id": _tool_id(block.id),
                "name": block.name,
                "input": thaw(block.arguments),
            }
        case ToolResultBlock():
            return _map_tool_result(block)
        case _:
            assert_never(block)


def _map_thinking(block: ThinkingBlock, provider: str) -> dict[str, Any] | None:
    """Only our own signed reasoning goes back.

    A signature is verified by the provider that issued it, so another provider's reasoning (or
    unsigned reasoning, which the API refuses) is left out of the request on purpose.
    """
    if block.provider != provider:
        return None
    if block.redacted_data is not None:
        return {"type": "redacted_thinking", "data": block.redacted_data}
    if block.signature is None:
        return None
    return {"type": "thinking", "thinking": block.text, "signature": block.signature}


def _map_tool_result(block: ToolResultBlock) -> dict[str, Any]:
    result: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": _tool_id(block.call_id),
        "content": block.content,
    }
    if block.is_error:
        result["is_error"] = True
    return result


def _tool_id(call_id: str) -> str:
    """Ids from other providers may break `^[a-zA-Z0-9_-]+$`: rewrite them deterministically.

    The same function maps a call and its result, so the pair stays matched; the digest of the
    original id keeps two ids that differ only in invalid characters apart.
    """
    if _VALID_TOOL_ID.fullmatch(call_id):
        return call_id
    digest = hashlib.sha256(call_id.encode()).hexdigest()[:12]
    return f"{_INVALID_TOOL_ID_CHARS.sub('_', call_id)}_{digest}"


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
        text = "".join(self.fragments)
        arguments = _parse_arguments(text, self.name, provider) if text else self.initial_input
        return ToolCallBlock.create(self.id, self.name, arguments, provider=provider)


@dataclass(slots=True)
class _StreamState:
    """What one streamed response has said so far; created per call, never shared."""

    provider: str
    usage: dict[str, Any] = field(default_factory=dict)
    calls: dict[int, _PendingCall] = field(default_factory=dict)
    stop_reason: str | None = None
    finished: bool = False


def _process_event(state: _StreamState, data: str) -> tuple[ProviderEvent, ...]:
    try:
        payload = json.loads(data)
        kind = payload["type"]
        if kind == "content_block_delta" and payload["delta"]["type"] == "text_delta":
            return (TextDelta(payload["delta"]["text"]),)  # the hot path, kept to one call
        return _EVENT_HANDLERS.get(kind, _on_other)(state, payload)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _malformed(exc, state.provider) from exc


Handler = Callable[[_StreamState, Mapping[str, Any]], tuple[ProviderEvent, ...]]


def _on_message_start(state: _StreamState, payload: Mapping[str, Any]) -> tuple[ProviderEvent, ...]:
    _merge_usage(state, payload["message"].get("usage"))
    return _NO_EVENTS


def _on_block_start(state: _StreamState, payload: Mapping[str, Any]) -> tuple[ProviderEvent, ...]:
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
        state.calls[payload["index"]] = pending
        return _NO_EVENTS
    raise _unsupported(f"content block type {kind!r}", state.provider)


def _on_delta(state: _StreamState, payload: Mapping[str, Any]) -> tuple[ProviderEvent, ...]:
    delta = payload["delta"]
    kind = delta["type"]
    if kind == "thinking_delta":
        return (ThinkingDelta(delta["thinking"]),)
    if kind == "input_json_delta":
        state.calls[payload["index"]].fragments.append(delta["partial_json"])
        return _NO_EVENTS
    if kind == "signature_delta":
        # It arrives as the thinking block's last delta: it closes the block.
        return (ThinkingDelta("", signature=delta["signature"]),)
    raise _unsupported(f"delta type {kind!r}", state.provider)


def _on_block_stop(state: _StreamState, payload: Mapping[str, Any]) -> tuple[ProviderEvent, ...]:
    pending = state.calls.pop(payload["index"], None)
    if pending is None:
        return _NO_EVENTS
    return (ToolCallEvent(pending.complete(state.provider)),)


def _on_message_delta(state: _StreamState, payload: Mapping[str, Any]) -> tuple[ProviderEvent, ...]:
    state.stop_reason = payload["delta"].get("stop_reason") or state.stop_reason
    _merge_usage(state, payload.get("usage"))
    return _NO_EVENTS


def _on_message_stop(state: _StreamState, payload: Mapping[str, Any]) -> tuple[ProviderEvent, ...]:
    state.finished = True
    return (UsageEvent(_usage(state.usage)), _finish(state.stop_reason))


def _on_error(state: _StreamState, payload: Mapping[str, Any]) -> tuple[ProviderEvent, ...]:
    raise _stream_error(payload.get("error") or {}, state.provider)


def _on_other(state: _StreamState, payload: Mapping[str, Any]) -> tuple[ProviderEvent, ...]:
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


def _merge_usage(state: _StreamState, usage: Mapping[str, Any] | None) -> None:
    """`message_delta` usage is cumulative, so later counts replace earlier ones, never add."""
    if usage:
        state.usage.update((key, value) for key, value in usage.items() if value is not None)


def _process_response(body: bytes, provider: str) -> list[ProviderEvent]:
    """A whole (non-streamed) message, mapped to the events a stream of it would give."""
    try:
        payload = json.loads(body)
        if payload.get("type") == "error":
            raise _stream_error(payload.get("error") or {}, provider)
        events = [
            event
            for block in payload["content"]
            for event in _response_block_events(block, provider)
        ]
        events.append(UsageEvent(_usage(payload.get("usage") or {})))
        events.append(_finish(payload.get("stop_reason")))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _malformed(exc, provider) from exc
    return events


def _response_block_events(block: Mapping[str, Any], provider: str) -> tuple[ProviderEvent, ...]:
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


def _finish(stop_reason: str | None) -> FinishEvent:
    reason = _STOP_REASONS.get(stop_reason or "", FinishReason.OTHER)
    return FinishEvent(reason, raw=stop_reason)


def _parse_arguments(text: str, name: str, provider: str) -> Mapping[str, Any]:
    try:
        arguments = json.loads(text)
    except ValueError as exc:
        raise StreamProtocolError(
            f"arguments of tool call {name!r} are not valid JSON: {exc}", provider=provider
        ) from exc
    if not isinstance(arguments, dict):
        raise StreamProtocolError(
            f"arguments of tool call {name!r} are not a JSON object", provider=provider
        )
    return arguments


def _stream_error(error: Mapping[str, Any], provider: str) -> ProviderError:
    """An `error` event arrives after a 200 status, so it carries no HTTP status of its own."""
    kind, category = _SSE_ERRORS.get(str(error.get("type")), (ServerError, ErrorCategory.SERVER))
    message = str(error.get("message") or error.get("type") or "unknown stream error")
    return kind(message, provider=provider, category=category)


def _unsupported(what: str, provider: str) -> StreamProtocolError:
    return StreamProtocolError(
        f"unsupported {what}: chatscope cannot represent it", provider=provider
    )
