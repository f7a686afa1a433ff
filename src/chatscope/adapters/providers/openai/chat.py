"""OpenAI Chat Completions (`POST {base_url}/chat/completions`) as a `ModelProvider`.

Also the adapter for the many local and hosted servers that copy this wire format, so it reads
`reasoning_content` (DeepSeek, vLLM, llama.cpp) and tolerates a missing `[DONE]` after a finish.

Streaming rules:
- Only choice 0 is followed: chatscope continues one conversation, and with `n` > 1 the other
  choices are alternatives it has no place to keep.
- Tool calls arrive as `arguments` fragments keyed by `index`; they are emitted whole once the
  choice reports its `finish_reason`, as a response's calls are complete only then.
- Usage (requested with `stream_options.include_usage`) arrives after the finish chunk, so the
  `FinishEvent` is held back until the stream ends.
- A body that ends cleanly before `[DONE]` and before any `finish_reason` raises
  `StreamProtocolError("stream ended before completion")`: the HTTP body was complete, so the
  provider, not the network, cut the response short. A dropped connection surfaces from httpx
  as a transport error and becomes `ProviderNetworkError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from types import MappingProxyType
from typing import Any, assert_never

from chatscope.adapters.providers._http import (
    HttpProvider,
    endpoint,
    is_event_stream,
    load_json,
    read_json,
    streamed_response,
)
from chatscope.adapters.providers._sse import SSEEvent, sse_stream
from chatscope.adapters.providers._wire_history import SentHistory, WireItems
from chatscope.adapters.providers.openai._common import (
    PendingCall,
    auth_headers,
    error_from_payload,
    json_schema_format,
    wire_call_id,
)
from chatscope.errors import InvalidRequestError, StreamProtocolError
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

__all__ = ["OpenAIChatProvider"]

# Chat Completions rejects tool call ids longer than this ("string_above_max_length").
_CALL_ID_LIMIT = 40

_FINISH_REASONS: Mapping[str, FinishReason] = MappingProxyType(
    {
        "stop": FinishReason.STOP,
        "length": FinishReason.LENGTH,
        "tool_calls": FinishReason.TOOL_CALLS,
        "function_call": FinishReason.TOOL_CALLS,
        "content_filter": FinishReason.CONTENT_FILTER,
    }
)

# A delta with only these keys carries nothing but text.
_TEXT_ONLY_DELTA = frozenset({"role", "content"})

# Message fields that carry output chatscope has no neutral event for.
_UNSUPPORTED_FIELDS = ("audio", "function_call")


class OpenAIChatProvider(HttpProvider):
    """Streams one Chat Completions call per `stream`; holds the client, its name and the wire form
    of the history it last sent (`SentHistory`: the next request maps only new messages).

    Model, key and base URL come from each `ModelInvocation` (REQ-SP4-002/003), and the kept
    history is reused only for the very same messages, so one instance could serve any number
    of runtime scopes at once; each scope gets its own.
    """

    __slots__ = ()
    default_name = "openai"

    async def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
        """Yield the response as neutral events, ending with exactly one `FinishEvent`."""
        secret = invocation.credentials.secret()
        url = endpoint(invocation, "/chat/completions")
        body = _build_body(invocation, self._name, self._sent)
        headers = auth_headers(secret)
        async with streamed_response(
            self._client, self._name, secret, url, headers=headers, body=body
        ) as response:
            if is_event_stream(response):
                turn = _ChatTurn(self._name)
                async with sse_stream(response) as batches:
                    # Read on past `[DONE]` to the end of the body rather than break, so
                    # httpx's iterators finish instead of waiting for the finalizer.
                    async for batch in batches:
                        for event in turn.process_events(batch):
                            yield event
                events = turn.finish()
            else:
                events = _process_response(await read_json(response, self._name), self._name)
            for event in events:
                yield event


def _build_body(
    invocation: ModelInvocation, provider: str, sent: SentHistory | None = None
) -> dict[str, Any]:
    """The request; `sent`, the adapter's, spares mapping again what the last request sent."""
    body: dict[str, Any] = {
        "model": invocation.model,
        "messages": _map_messages(
            invocation, provider, sent if sent is not None else SentHistory()
        ),
    }
    if invocation.tools:
        body["tools"] = _map_tools(invocation.tools)
    if invocation.output_schema is not None:  # a typed answer's schema wins over model params
        format_ = json_schema_format(invocation.output_schema)
        body["response_format"] = {"type": "json_schema", "json_schema": format_}
    params: dict[str, Any] = thaw(invocation.model_params)
    streaming = params.pop("stream", True) is not False
    for key, value in params.items():
        body.setdefault(key, value)
    body["stream"] = streaming
    if streaming:
        body["stream_options"] = {"include_usage": True, **(params.get("stream_options") or {})}
    return body


def _map_tools(tools: Iterable[ToolDeclaration]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": thaw(tool.parameters),
            },
        }
        for tool in tools
    ]


def _map_messages(
    invocation: ModelInvocation, provider: str, sent: SentHistory
) -> list[dict[str, Any]]:
    """The system prompt, then history: only history is kept between requests (the prompt is
    the scope's, but one item is no work to redo)."""
    messages = sent.items(invocation.history, _append_messages, provider)
    if invocation.system_prompt is not None:
        messages.insert(0, {"role": "system", "content": invocation.system_prompt})
    return messages


def _append_messages(wire: WireItems, history: tuple[Message, ...], provider: str) -> None:
    """Each message maps on its own: nothing merges across messages in this format."""
    for message in history:
        wire.items.extend(_map_message(message, provider))


def _map_message(message: Message, provider: str) -> list[dict[str, Any]]:
    match message.role:
        case Role.USER:
            return [_map_user(message, provider)]
        case Role.ASSISTANT:
            return [_map_assistant(message, provider)]
        case Role.TOOL:
            return [_map_tool_result(block, provider) for block in message.blocks]
        case _:
            assert_never(message.role)


def _map_user(message: Message, provider: str) -> dict[str, Any]:
    texts: list[str] = []
    for block in message.blocks:
        match block:
            case TextBlock():
                texts.append(block.text)
            case ThinkingBlock() | ToolCallBlock() | ToolResultBlock():
                raise _unsupported(block, message.role, provider)
            case _:
                assert_never(block)
    content: str | list[dict[str, str]] = (
        texts[0] if len(texts) == 1 else [{"type": "text", "text": text} for text in texts]
    )
    return {"role": "user", "content": content}


def _map_assistant(message: Message, provider: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.blocks:
        match block:
            case TextBlock():
                texts.append(block.text)
            case ThinkingBlock():
                # Chat Completions has no field that takes reasoning back (OpenAI drops it between
                # turns), so leaving it out is the wire format's rule, not a lost block.
                pass
            case ToolCallBlock():
                calls.append(_map_tool_call(block))
            case ToolResultBlock():
                raise _unsupported(block, message.role, provider)
            case _:
                assert_never(block)
    wire: dict[str, Any] = {"role": "assistant"}
    if texts or not calls:
        wire["content"] = "".join(texts)
    if calls:
        wire["tool_calls"] = calls
    return wire


def _map_tool_call(block: ToolCallBlock) -> dict[str, Any]:
    return {
        "id": wire_call_id(block.id, _CALL_ID_LIMIT),
        "type": "function",
        "function": {"name": block.name, "arguments": block.arguments_json()},
    }


def _map_tool_result(block: Block, provider: str) -> dict[str, Any]:
    if not isinstance(block, ToolResultBlock):
        raise _unsupported(block, Role.TOOL, provider)
    return {
        "role": "tool",
        "tool_call_id": wire_call_id(block.call_id, _CALL_ID_LIMIT),
        "content": block.content,
    }


def _unsupported(block: Block, role: Role, provider: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"a {type(block).__name__} cannot be sent in a {role} message to Chat Completions",
        provider=provider,
    )


class _ChatTurn:
    """What one streamed response has said so far; created per call, never kept."""

    __slots__ = ("calls", "done", "finish_raw", "made_calls", "provider", "usage")

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.calls: dict[int, PendingCall] = {}
        self.usage: Usage | None = None
        self.finish_raw: str | None = None
        self.made_calls = False
        self.done = False

    def process_events(self, batch: list[SSEEvent]) -> list[ProviderEvent]:
        """The events of the SSE events a read of the body completed. `[DONE]` ends the answer:
        anything after it is read (so the body ends) but ignored."""
        events: list[ProviderEvent] = []
        for _, data in batch:
            if data == "[DONE]":
                self.done = True
            elif not self.done:
                self._process_chunk(load_json(data, self.provider), events)
        return events

    def _process_chunk(self, chunk: Any, events: list[ProviderEvent]) -> None:
        """Add the events of one `chat.completion.chunk` to `events`."""
        if type(chunk) is not dict:
            raise StreamProtocolError("stream chunk is not a JSON object", provider=self.provider)
        if chunk.get("error") is not None:
            raise error_from_payload(self.provider, chunk["error"])
        usage = chunk.get("usage")
        if usage:
            # Kept, not emitted: some compatible servers repeat a running total on every chunk.
            self.usage = _usage(usage)
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) == 0:
                self._process_choice(choice, events)

    def finish(self) -> list[ProviderEvent]:
        """The closing events once the body has ended."""
        if not self.done and self.finish_raw is None:
            raise StreamProtocolError("stream ended before completion", provider=self.provider)
        events = self._flush_calls()
        if self.usage is not None:
            events.append(UsageEvent(self.usage))
        reason = _finish_reason(self.finish_raw, self.made_calls)
        events.append(FinishEvent(reason, self.finish_raw))
        return events

    def _process_choice(self, choice: dict[str, Any], events: list[ProviderEvent]) -> None:
        delta = choice.get("delta")
        if delta:
            content = delta.get("content")
            if type(content) is str and delta.keys() <= _TEXT_ONLY_DELTA:
                if content:  # the hot path: a delta of text, once per streamed token
                    events.append(TextDelta(content))
            else:
                _content_events(delta, events, self.provider)
                fragments = delta.get("tool_calls")
                if fragments:
                    self._add_fragments(fragments)
        finish = choice.get("finish_reason")
        if finish:
            self.finish_raw = finish
            events.extend(self._flush_calls())

    def _add_fragments(self, fragments: list[dict[str, Any]]) -> None:
        for fragment in fragments:
            function = fragment.get("function") or {}
            pending = self.calls.get(fragment.get("index", 0))
            if pending is None:
                _check_call_type(fragment, self.provider)
                pending = PendingCall(fragment.get("id") or "", function.get("name") or "")
                self.calls[fragment.get("index", 0)] = pending
            arguments = function.get("arguments")
            if arguments:
                pending.parts.append(arguments)

    def _flush_calls(self) -> list[ProviderEvent]:
        events: list[ProviderEvent] = [
            ToolCallEvent(self.calls[index].block(self.provider)) for index in sorted(self.calls)
        ]
        self.calls.clear()
        self.made_calls = self.made_calls or bool(events)
        return events


def _process_response(payload: dict[str, Any], provider: str) -> list[ProviderEvent]:
    """The events of a whole (non-streamed) `chat.completion` body."""
    if payload.get("error") is not None:
        raise error_from_payload(provider, payload["error"])
    choice = _first_choice(payload.get("choices"), provider)
    message = choice.get("message") or {}
    events: list[ProviderEvent] = []
    _content_events(message, events, provider)
    for wire_call in message.get("tool_calls") or ():
        _check_call_type(wire_call, provider)
        function = wire_call.get("function") or {}
        pending = PendingCall(
            wire_call.get("id") or "", function.get("name") or "", [function.get("arguments") or ""]
        )
        events.append(ToolCallEvent(pending.block(provider)))
    if payload.get("usage"):
        events.append(UsageEvent(_usage(payload["usage"])))
    raw = choice.get("finish_reason")
    made_calls = bool(message.get("tool_calls"))
    events.append(FinishEvent(_finish_reason(raw, made_calls), raw))
    return events


def _first_choice(choices: Any, provider: str) -> dict[str, Any]:
    # As in streaming, only choice 0 continues the conversation.
    for choice in choices or ():
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    raise StreamProtocolError("response has no choice 0", provider=provider)


def _content_events(message: dict[str, Any], events: list[ProviderEvent], provider: str) -> None:
    """Text, reasoning and refusal of a message or delta; refusals are shown as plain text."""
    reasoning = message.get("reasoning_content")
    if reasoning:
        events.append(ThinkingDelta(_string(reasoning, "reasoning_content", provider)))
    content = message.get("content")
    if content:
        events.append(TextDelta(_string(content, "content", provider)))
    refusal = message.get("refusal")
    if refusal:
        events.append(TextDelta(_string(refusal, "refusal", provider)))
    for field in _UNSUPPORTED_FIELDS:
        if message.get(field):
            raise StreamProtocolError(
                f"response carries {field!r} output, which chatscope cannot represent",
                provider=provider,
            )


def _string(value: Any, what: str, provider: str) -> str:
    if not isinstance(value, str):
        raise StreamProtocolError(f"{what} is not a string", provider=provider)
    return value


def _check_call_type(wire_call: dict[str, Any], provider: str) -> None:
    kind = wire_call.get("type", "function")
    if kind != "function":
        raise StreamProtocolError(f"unsupported tool call type {kind!r}", provider=provider)


def _usage(usage: dict[str, Any]) -> Usage:
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=usage.get("prompt_tokens") or 0,
        output_tokens=usage.get("completion_tokens") or 0,
        cached_tokens=prompt_details.get("cached_tokens") or 0,
        reasoning_tokens=completion_details.get("reasoning_tokens") or 0,
    )


def _finish_reason(raw: str | None, made_calls: bool) -> FinishReason:
    """The neutral reason; a response that made tool calls waits for them whatever it says.

    Some compatible servers report `stop` next to tool calls, and the chat loop must still run them.
    """
    reason = _FINISH_REASONS.get(raw or "", FinishReason.OTHER)
    if made_calls and reason is FinishReason.STOP:
        return FinishReason.TOOL_CALLS
    return reason
