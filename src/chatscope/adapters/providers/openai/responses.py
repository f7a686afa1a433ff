"""OpenAI Responses (`POST {base_url}/responses`) as a `ModelProvider`.

Reasoning round trip. A `reasoning` output item becomes thinking deltas: its summary text (parts
joined by a blank line) and then one closing `ThinkingDelta` whose `signature` is the item id
(`rs_...`) and whose `redacted_data` is the item's `encrypted_content`. The assembled
`ThinkingBlock` therefore holds `signature=id`, `redacted_data=encrypted_content`, and is sent back
as `{"type": "reasoning", "id", "encrypted_content", "summary"}` only when it came from this
adapter (`block.provider == name`) and carries encrypted content: without it the id alone cannot
be resolved statelessly, and another provider's thinking means nothing to OpenAI. When streaming,
the encrypted content is read from `response.output_item.done`: the copy on `.added` can be
incomplete.

Tool calls use the item's `call_id` as the neutral id, as `function_call_output` pairs on it.
The `fc_...` item id is kept as `ToolCallBlock.item_id` and sent back as the function call's `id`
when the call came from this adapter, so a replayed reasoning item is followed by the very
function call item it produced; calls from other providers go back without an `id`.

How the answer is read back (stream events, a whole body) lives in `_responses_events.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any, assert_never

from chatscope.adapters.providers._http import (
    HttpProvider,
    endpoint,
    is_event_stream,
    load_json,
    read_json,
    streamed_response,
)
from chatscope.adapters.providers._sse import sse_stream
from chatscope.adapters.providers._wire_history import SentHistory, WireItems
from chatscope.adapters.providers.openai._common import (
    auth_headers,
    json_schema_format,
    wire_call_id,
)
from chatscope.adapters.providers.openai._responses_events import ResponsesTurn, process_response
from chatscope.errors import InvalidRequestError
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
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.tools.ports import ToolDeclaration

__all__ = ["OpenAIResponsesProvider"]

# `call_id` of function call items is limited to 64 characters.
_CALL_ID_LIMIT = 64


class OpenAIResponsesProvider(HttpProvider):
    """Streams one Responses call per `stream`; holds the client, its name and the wire form
    of the history it last sent (`SentHistory`: the next request maps only new messages).

    Model, key and base URL come from each `ModelInvocation` (REQ-SP4-002/003), and the kept
    history is reused only for the very same messages, so one instance could serve any number
    of runtime scopes at once; each scope gets its own.
    """

    __slots__ = ()
    default_name = "openai-responses"

    async def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
        """Yield the response as neutral events, ending with exactly one `FinishEvent`."""
        secret = invocation.credentials.secret()
        url = endpoint(invocation, "/responses")
        body = _build_body(invocation, self._name, self._sent)
        headers = auth_headers(secret)
        async with streamed_response(
            self._client, self._name, secret, url, headers=headers, body=body
        ) as response:
            if is_event_stream(response):
                turn = ResponsesTurn(self._name)
                async with sse_stream(response) as batches:
                    # Read to the end of the body rather than break after the final event, so
                    # httpx's iterators finish instead of waiting for the finalizer.
                    async for batch in batches:
                        for _, data in batch:
                            if not turn.finished and data != "[DONE]":
                                for event in turn.process_event(load_json(data, self._name)):
                                    yield event
                turn.check_finished()
            else:
                payload = await read_json(response, self._name)
                for event in process_response(payload, self._name):
                    yield event


def _build_body(
    invocation: ModelInvocation, provider: str, sent: SentHistory | None = None
) -> dict[str, Any]:
    """The request; `sent`, the adapter's, spares mapping again what the last request sent."""
    sent = sent if sent is not None else SentHistory()
    body: dict[str, Any] = {
        "model": invocation.model,
        "input": sent.items(invocation.history, _append_messages, provider),
    }
    if invocation.system_prompt is not None:
        body["instructions"] = invocation.system_prompt
    if invocation.tools:
        body["tools"] = _map_tools(invocation.tools)
    params: dict[str, Any] = thaw(invocation.model_params)
    if invocation.output_schema is not None:
        # A typed answer's schema wins over model params; their other `text` options stay.
        format_ = {"type": "json_schema", **json_schema_format(invocation.output_schema)}
        body["text"] = {**(params.pop("text", None) or {}), "format": format_}
    streaming = params.pop("stream", True) is not False
    for key, value in params.items():
        body.setdefault(key, value)
    body["stream"] = streaming
    return body


def _map_tools(tools: Iterable[ToolDeclaration]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "name": tool.name,
            "description": tool.description,
            "parameters": thaw(tool.parameters),
        }
        for tool in tools
    ]


def _append_messages(wire: WireItems, history: tuple[Message, ...], provider: str) -> None:
    """Each message maps on its own: nothing merges across messages in this format."""
    items = wire.items
    for message in history:
        match message.role:
            case Role.USER:
                items.append(_map_user(message, provider))
            case Role.ASSISTANT:
                items.extend(_map_assistant(message, provider))
            case Role.TOOL:
                items.extend(_map_tool_result(block, provider) for block in message.blocks)
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
        texts[0] if len(texts) == 1 else [{"type": "input_text", "text": text} for text in texts]
    )
    return {"role": "user", "content": content}


def _map_assistant(message: Message, provider: str) -> list[dict[str, Any]]:
    """One input item per block, in order, so reasoning stays right before what followed it."""
    items: list[dict[str, Any]] = []
    for block in message.blocks:
        match block:
            case TextBlock():
                _append_text(items, block.text)
            case ThinkingBlock():
                reasoning = _map_reasoning(block, provider)
                if reasoning is not None:
                    items.append(reasoning)
            case ToolCallBlock():
                items.append(_map_tool_call(block, provider))
            case ToolResultBlock():
                raise _unsupported(block, message.role, provider)
            case _:
                assert_never(block)
    return items


def _append_text(items: list[dict[str, Any]], text: str) -> None:
    if not text:
        return
    if items and items[-1].get("role") == "assistant":
        items[-1]["content"] += text
    else:
        items.append({"role": "assistant", "content": text})


def _map_reasoning(block: ThinkingBlock, provider: str) -> dict[str, Any] | None:
    # Omitted on purpose unless it is this adapter's own encrypted reasoning (module docstring).
    if block.provider != provider or not block.redacted_data or not block.signature:
        return None
    summary = [{"type": "summary_text", "text": block.text}] if block.text else []
    return {
        "type": "reasoning",
        "id": block.signature,
        "encrypted_content": block.redacted_data,
        "summary": summary,
    }


def _map_tool_call(block: ToolCallBlock, provider: str) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "function_call"}
    if block.item_id and block.provider == provider:
        item["id"] = block.item_id  # only this adapter's own `fc_...` ids mean anything here
    item["call_id"] = wire_call_id(block.id, _CALL_ID_LIMIT)
    item["name"] = block.name
    item["arguments"] = block.arguments_json()
    return item


def _map_tool_result(block: Block, provider: str) -> dict[str, Any]:
    if not isinstance(block, ToolResultBlock):
        raise _unsupported(block, Role.TOOL, provider)
    return {
        "type": "function_call_output",
        "call_id": wire_call_id(block.call_id, _CALL_ID_LIMIT),
        "output": block.content,
    }


def _unsupported(block: Block, role: Role, provider: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"a {type(block).__name__} cannot be sent in a {role} message to Responses",
        provider=provider,
    )
