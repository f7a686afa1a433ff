"""The Google Gemini API (`generateContent` / `streamGenerateContent`) over httpx.

The request is built from the invocation alone and the answer is parsed by its content type, so a
streamed and a whole-body response give the same neutral events. The adapter keeps no call's
values (REQ-SP4-002/003): it holds its client, its name and the wire form of the history it last
sent (`SentHistory`, so the next request maps only new messages); every per-call value lives in the
invocation or in a `_StreamState` that dies with the call.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, assert_never

from chatscope.adapters.providers._http import (
    HttpProvider,
    endpoint,
    error_from_response,
    is_event_stream,
    parse_json,
    streamed_response,
)
from chatscope.adapters.providers._output_limits import GEMINI_OUTPUT_LIMITS, capped_output_tokens
from chatscope.adapters.providers._sse import sse_stream
from chatscope.adapters.providers._wire_history import SentHistory, WireItems
from chatscope.errors import (
    ProviderError,
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
from chatscope.services.runtime.invocation import ModelInvocation, OutputSchema
from chatscope.services.tools.ports import ToolDeclaration

__all__ = ["GeminiProvider"]

# Google's documented placeholder for a function call that Gemini did not sign (one written by
# another provider): without it, Gemini 3 refuses histories whose calls lack a signature. It is
# base64, as every `thoughtSignature` is on the wire.
_UNSIGNED_CALL_SIGNATURE = "c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I="

# Request fields that live beside `generationConfig`; every other model param goes inside it.
_TOP_LEVEL_PARAMS = frozenset({"toolConfig", "safetySettings", "cachedContent", "labels"})
_TEXT_PART_KEYS = frozenset({"text", "thought", "thoughtSignature"})
_NO_EVENTS: tuple[ProviderEvent, ...] = ()
# Models before Gemini 3 refuse a JSON response schema beside function declarations.
_GEMINI_MAJOR = re.compile(r"gemini-(\d+)")
_FIRST_SCHEMA_WITH_TOOLS_MAJOR = 3

_FINISH_REASONS: Mapping[str, FinishReason] = MappingProxyType(
    {
        "STOP": FinishReason.STOP,
        "MAX_TOKENS": FinishReason.LENGTH,
        "SAFETY": FinishReason.CONTENT_FILTER,
        "RECITATION": FinishReason.CONTENT_FILTER,
        "BLOCKLIST": FinishReason.CONTENT_FILTER,
        "PROHIBITED_CONTENT": FinishReason.CONTENT_FILTER,
        "SPII": FinishReason.CONTENT_FILTER,
        "IMAGE_SAFETY": FinishReason.CONTENT_FILTER,
    }
)


class GeminiProvider(HttpProvider):
    """Streams one Gemini call per `stream`; model, key and URL come from the invocation."""

    __slots__ = ()
    default_name = "gemini"

    async def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
        """Send the invocation and yield its answer as neutral events, `FinishEvent` last.

        The answer is parsed by what the server sent, not by what was asked: an error status, an
        event stream or one JSON body. The loops stay in this one generator because every nested
        async generator costs a hop per event.
        """
        secret = invocation.credentials.secret()
        url, headers, body = _request(invocation, self._name, secret, self._sent)
        async with streamed_response(
            self._client, self._name, secret, url, headers=headers, body=body
        ) as response:
            state = _StreamState(self._name)
            if is_event_stream(response):
                async with sse_stream(response) as batches:
                    async for batch in batches:
                        for _, data in batch:
                            for event in _process_chunk(state, data):
                                yield event
            else:
                for event in _process_chunk(state, await response.aread()):
                    yield event
            for event in _finish(state):
                yield event


def _request(
    invocation: ModelInvocation, provider: str, secret: str | None, sent: SentHistory
) -> tuple[str, dict[str, str], dict[str, Any]]:
    model = invocation.model.removeprefix("models/")
    streaming = invocation.model_params.get("stream", True)
    method = ":streamGenerateContent?alt=sse" if streaming else ":generateContent"
    url = endpoint(invocation, f"/models/{model}{method}")
    return url, _headers(secret), _request_body(invocation, provider, sent)


def _headers(secret: str | None) -> dict[str, str]:
    """The key goes in a header, never in `?key=`: URLs end up in logs."""
    return {"x-goog-api-key": secret} if secret else {}


def _request_body(
    invocation: ModelInvocation, provider: str, sent: SentHistory | None = None
) -> dict[str, Any]:
    """Model params go into `generationConfig`, except the few fields that live beside it;
    `sent`, the adapter's, spares mapping again what the last request sent.

    A typed answer's schema goes there too, as `responseJsonSchema` (plain JSON Schema, where
    `responseSchema` wants Google's OpenAPI subset) with `responseMimeType` JSON; it wins over
    model params, and a `responseSchema` among them is dropped, as the API takes only one. A
    model before Gemini 3 (or one whose name does not say) refuses it beside function
    declarations: with tools, such a model is asked for the schema in the system instruction.
    """
    params = thaw(invocation.model_params)
    params.pop("stream", None)
    top_level = {key: params.pop(key) for key in list(params) if key in _TOP_LEVEL_PARAMS}
    generation = {"maxOutputTokens": _max_output_tokens(invocation), **params}
    system = invocation.system_prompt
    output = invocation.output_schema
    if output is not None and (not invocation.tools or _schema_with_tools(invocation.model)):
        generation.pop("responseSchema", None)
        generation["responseMimeType"] = "application/json"
        generation["responseJsonSchema"] = output.json_schema()
    elif output is not None:
        system = _asked_in_words(system, output)
    sent = sent if sent is not None else SentHistory()
    body: dict[str, Any] = {
        "contents": sent.items(invocation.history, _append_messages, provider),
        "generationConfig": generation,
        **top_level,
    }
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if invocation.tools:
        body["tools"] = [{"functionDeclarations": _map_tools(invocation.tools)}]
    return body


def _schema_with_tools(model: str) -> bool:
    major = _GEMINI_MAJOR.search(model)
    return major is not None and int(major[1]) >= _FIRST_SCHEMA_WITH_TOOLS_MAJOR


def _asked_in_words(system: str | None, output: OutputSchema) -> str:
    schema = json.dumps(output.json_schema(), separators=(",", ":"))
    request = (
        "When you give your final answer, answer with only JSON (no prose, no code fence) "
        f"that matches this JSON schema: {schema}"
    )
    return f"{system}\n\n{request}" if system else request


def _max_output_tokens(invocation: ModelInvocation) -> int:
    """The `maxOutputTokens` setting, within the model family's documented limit."""
    ceiling = invocation.ephemerals.max_output_tokens
    return capped_output_tokens(invocation.model, ceiling, GEMINI_OUTPUT_LIMITS)


def _map_tools(tools: Iterable[ToolDeclaration]) -> list[dict[str, Any]]:
    """`parametersJsonSchema` takes plain JSON Schema; `parameters` wants Google's subset."""
    return [
        {
            "name": tool.name,
            "description": tool.description,
            "parametersJsonSchema": thaw(tool.parameters),
        }
        for tool in tools
    ]


def _append_messages(wire: WireItems, history: tuple[Message, ...], provider: str) -> None:
    """Tool results become user content; same-role neighbours merge into one turn."""
    for message in history:
        role = "model" if message.role is Role.ASSISTANT else "user"
        parts = [part for block in message.blocks if (part := _map_block(block, provider))]
        if not parts:
            continue
        last = wire.last()
        if last is not None and last["role"] == role:
            wire.last_to_extend()["parts"].extend(parts)
        else:
            wire.add({"role": role, "parts": parts})


def _map_block(block: Block, provider: str) -> dict[str, Any] | None:
    match block:
        case TextBlock():
            # Gemini refuses empty text, but an empty part may still carry a signature.
            if not block.text and block.signature is None:
                return None
            return _signed({"text": block.text}, block.signature)
        case ThinkingBlock():
            # Thought signatures only verify at the provider that issued them; another
            # provider's reasoning is left out on purpose.
            if block.provider != provider:
                return None
            return _signed({"text": block.text, "thought": True}, block.signature)
        case ToolCallBlock():
            call: dict[str, Any] = {"name": block.name, "args": thaw(block.arguments)}
            if block.id:
                call["id"] = block.id
            # Only a call Gemini made carries a signature it can verify (module docstring).
            own = block.signature if block.provider in (provider, None) else None
            return _signed({"functionCall": call}, own or _UNSIGNED_CALL_SIGNATURE)
        case ToolResultBlock():
            return {"functionResponse": _map_tool_result(block)}
        case _:
            assert_never(block)


def _map_tool_result(block: ToolResultBlock) -> dict[str, Any]:
    response = {"result": block.result} if block.error is None else {"error": block.error}
    reply: dict[str, Any] = {"name": block.name, "response": response}
    if block.call_id:
        reply["id"] = block.call_id
    return reply


def _signed(part: dict[str, Any], signature: str | None) -> dict[str, Any]:
    """Signatures go back exactly as Gemini sent them (standard base64)."""
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


@dataclass(slots=True)
class _StreamState:
    """What one response has said so far; created per call, never shared.

    Every chunk repeats the cumulative usage, so only the last one is kept and reported once.
    """

    provider: str
    usage: Mapping[str, Any] | None = None
    finish_reason: str | None = None
    calls: int = 0
    response_id: str = ""


def _process_chunk(state: _StreamState, data: str | bytes) -> Iterable[ProviderEvent]:
    """One SSE payload, or a whole body: one chunk, or a JSON array of them without `alt=sse`."""
    try:
        payload = parse_json(data)
        if isinstance(payload, list):
            return [event for chunk in payload for event in _chunk_events(state, chunk)]
        return _chunk_events(state, payload)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StreamProtocolError(
            f"malformed response ({type(exc).__name__}: {exc})", provider=state.provider
        ) from exc


def _chunk_events(state: _StreamState, chunk: Mapping[str, Any]) -> Iterable[ProviderEvent]:
    if "error" in chunk:
        raise _chunk_error(chunk, state.provider)
    state.usage = chunk.get("usageMetadata", state.usage)
    state.response_id = chunk.get("responseId", state.response_id)
    candidates = chunk.get("candidates")
    if not candidates:
        blocked = (chunk.get("promptFeedback") or {}).get("blockReason")
        state.finish_reason = blocked or state.finish_reason
        return _NO_EVENTS
    if len(candidates) > 1:
        raise StreamProtocolError(
            f"{len(candidates)} candidates in one response; chatscope asks for one",
            provider=state.provider,
        )
    candidate = candidates[0]
    state.finish_reason = candidate.get("finishReason", state.finish_reason)
    content = candidate.get("content")
    parts: list[Mapping[str, Any]] = (content.get("parts") or []) if content else []
    if len(parts) == 1:
        return _process_part(state, parts[0])
    return [event for part in parts for event in _process_part(state, part)]


def _process_part(state: _StreamState, part: Mapping[str, Any]) -> tuple[ProviderEvent, ...]:
    if len(part) == 1 and "text" in part:
        return (TextDelta(part["text"]),)
    signature = part.get("thoughtSignature")
    if "functionCall" in part:
        return (ToolCallEvent(_tool_call(state, part["functionCall"], signature)),)
    unsupported = part.keys() - _TEXT_PART_KEYS
    if unsupported:
        raise StreamProtocolError(
            f"unsupported part type {sorted(unsupported)[0]!r}: chatscope cannot represent it",
            provider=state.provider,
        )
    text = part.get("text", "")
    if not part.get("thought"):
        return (TextDelta(text, signature=signature),)
    if signature is None:
        return (ThinkingDelta(text),)
    return (ThinkingDelta(text), ThinkingDelta("", signature=signature))


def _tool_call(
    state: _StreamState, call: Mapping[str, Any], signature: str | None
) -> ToolCallBlock:
    """Gemini may leave a call without an id: derive a stable one so its result still pairs."""
    index, state.calls = state.calls, state.calls + 1
    name = call["name"]
    call_id = call.get("id") or _call_id(index, name, state.response_id)
    arguments = call.get("args") or {}
    return ToolCallBlock.create(
        call_id, name, arguments, signature=signature, provider=state.provider
    )


def _call_id(index: int, name: str, response_id: str) -> str:
    """The response id keeps calls of different turns apart when the same tool is called again."""
    suffix = f"_{response_id}" if response_id else ""
    return f"gemini_{index}_{name}{suffix}"


def _finish(state: _StreamState) -> tuple[ProviderEvent, ...]:
    """A Gemini stream simply closes; a finish reason is what says it was complete."""
    raw = state.finish_reason
    if raw is None:
        raise StreamProtocolError("response ended without a finishReason", provider=state.provider)
    reason = _FINISH_REASONS.get(raw, FinishReason.OTHER)
    if reason is FinishReason.STOP and state.calls:
        reason = FinishReason.TOOL_CALLS
    finish = FinishEvent(reason, raw=raw)
    if state.usage is None:
        return (finish,)
    return (UsageEvent(_usage(state.usage)), finish)


def _usage(meta: Mapping[str, Any]) -> Usage:
    """Output counts thoughts too, as other providers' output counts include reasoning.

    Gemini's `candidatesTokenCount` leaves thoughts out; with them added, input plus output equals
    its `totalTokenCount`.
    """
    thoughts = meta.get("thoughtsTokenCount", 0)
    return Usage(
        input_tokens=meta.get("promptTokenCount", 0) + meta.get("toolUsePromptTokenCount", 0),
        output_tokens=meta.get("candidatesTokenCount", 0) + thoughts,
        cached_tokens=meta.get("cachedContentTokenCount", 0),
        reasoning_tokens=thoughts,
    )


def _chunk_error(chunk: Mapping[str, Any], provider: str) -> ProviderError:
    """An error sent inside a 200 stream; its `code` is the HTTP status Gemini would have used."""
    code = chunk["error"].get("code") if isinstance(chunk["error"], dict) else None
    status = code if isinstance(code, int) else 500
    return error_from_response(provider, status, {}, json.dumps(chunk).encode())
