"""The Anthropic Messages API (`POST /v1/messages`) over httpx.

The request is built from the invocation alone and the answer is parsed by its content type, so a
streamed and a whole-body response give the same neutral events. The adapter keeps no call's
values (REQ-SP4-002/003): it holds its client, its name and the wire form of the history it last
sent (`SentHistory`, so the next request maps only new messages); every per-call value lives in the
invocation or in a `StreamState` that dies with the call. How the answer is read lives in
`_events.py`.

A typed answer (`invocation.output_schema`) is asked for with a tool of its own,
`OUTPUT_TOOL_NAME`, whose `input_schema` is the schema, and a `tool_choice` that makes the model
use it: that very tool when it is the only one, any tool when the model may call others first,
and `auto` when thinking is on (the API refuses a forced tool then). The tool's input comes
back as the answer's text, never as a call to run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Iterable, Mapping
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
from chatscope.adapters.providers._wire_history import SentHistory, WireItems
from chatscope.adapters.providers.anthropic._events import (
    StreamState,
    process_event,
    process_response,
)
from chatscope.errors import StreamProtocolError
from chatscope.services.events import ProviderEvent
from chatscope.services.frozen import thaw
from chatscope.services.messages import (
    Block,
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)
from chatscope.services.runtime.invocation import OUTPUT_TOOL_NAME, ModelInvocation, OutputSchema
from chatscope.services.tools.ports import ToolDeclaration

__all__ = ["AnthropicProvider"]

_API_VERSION = "2023-06-01"
_VALID_TOOL_ID = re.compile(r"[a-zA-Z0-9_-]+")
_INVALID_TOOL_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_EMPTY_SCHEMA: Mapping[str, Any] = MappingProxyType({"type": "object", "properties": {}})
_OUTPUT_TOOL_DESCRIPTION = (
    "Give your final answer by calling this tool: its input is the answer, and must match its "
    "schema. Call it once, when you are done."
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
        url, headers, body = _request(invocation, self._name, secret, self._sent)
        async with streamed_response(
            self._client, self._name, secret, url, headers=headers, body=body
        ) as response:
            output_tool = OUTPUT_TOOL_NAME if invocation.output_schema is not None else None
            if not is_event_stream(response):
                body_bytes = await response.aread()
                for event in process_response(body_bytes, self._name, output_tool):
                    yield event
                return
            state = StreamState(self._name, output_tool=output_tool)
            async with sse_stream(response) as batches:
                async for batch in batches:
                    for _, data in batch:
                        for event in process_event(state, data):
                            yield event
            if not state.finished:
                raise StreamProtocolError("stream ended before message_stop", provider=self._name)


def _request(
    invocation: ModelInvocation, provider: str, secret: str | None, sent: SentHistory
) -> tuple[str, dict[str, str], dict[str, Any]]:
    url = endpoint(invocation, "/v1/messages")
    return url, _headers(secret), _request_body(invocation, provider, sent)


def _headers(secret: str | None) -> dict[str, str]:
    """The key travels in this call's headers only; local servers without a key get none."""
    headers = {"anthropic-version": _API_VERSION}
    if secret:
        headers["x-api-key"] = secret
    return headers


def _request_body(
    invocation: ModelInvocation, provider: str, sent: SentHistory | None = None
) -> dict[str, Any]:
    """Model params go to the top level and may override `max_tokens` and `stream`; `sent`,
    the adapter's, spares mapping again what the last request sent."""
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
    if invocation.output_schema is not None:
        _ask_for_output(body, invocation.output_schema)
    sent = sent if sent is not None else SentHistory()
    body["messages"] = sent.items(invocation.history, _append_messages, provider)
    return body


def _ask_for_output(body: dict[str, Any], output: OutputSchema) -> None:
    """Add the output tool and a `tool_choice` that has the model use it (module docstring)."""
    tools = body.setdefault("tools", [])
    tools.append(
        {
            "name": OUTPUT_TOOL_NAME,
            "description": _OUTPUT_TOOL_DESCRIPTION,
            "input_schema": output.json_schema(),
        }
    )
    thinking = body.get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("type", "disabled") != "disabled":
        body["tool_choice"] = {"type": "auto"}
    elif len(tools) > 1:
        body["tool_choice"] = {"type": "any"}
    else:
        body["tool_choice"] = {"type": "tool", "name": OUTPUT_TOOL_NAME}


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


def _append_messages(wire: WireItems, history: tuple[Message, ...], provider: str) -> None:
    """Tool results become user content; same-role neighbours merge, as the API wants turns."""
    for message in history:
        role = "assistant" if message.role is Role.ASSISTANT else "user"
        content = [part for block in message.blocks if (part := _map_block(block, provider))]
        if not content:
            continue
        last = wire.last()
        if last is not None and last["role"] == role:
            wire.last_to_extend()["content"].extend(content)
        else:
            wire.add({"role": role, "content": content})


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
