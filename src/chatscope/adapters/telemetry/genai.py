"""The OpenTelemetry GenAI semantic conventions as chatscope uses them: names and content.

Span names and attribute names follow the conventions' inference (`chat {model}`), agent
(`invoke_agent {name}`) and tool (`execute_tool {name}`) spans; `chatscope.*` attributes are
chatscope's own (runtime id, session id, parent runtime, subagent, the purpose of a call).

Content (prompts, answers, tool arguments and results) is recorded only when asked for, as the
JSON the conventions describe for `gen_ai.input.messages`, `gen_ai.output.messages`,
`gen_ai.system_instructions` and `gen_ai.tool.call.arguments` / `.result`. Every string in it
first loses the call's key (`scrub_secret`) and anything shaped like a key (`redact_secrets`),
and the encoded JSON is scrubbed once more. Nothing here imports OpenTelemetry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, assert_never
from urllib.parse import urlsplit

from chatscope.errors import ProviderError, redact_secrets, scrub_secret
from chatscope.services.messages import (
    Block,
    Message,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.state import AgentRuntimeState

__all__ = [
    "AGENT_NAME",
    "clean",
    "error_attributes",
    "identity_attributes",
    "input_messages_json",
    "json_text",
    "output_messages_json",
    "provider_name",
    "request_attributes",
    "system_instructions_json",
    "tool_attributes",
]

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_PROVIDER = "chatscope.response.provider"
CONVERSATION = "gen_ai.conversation.id"
AGENT = "gen_ai.agent.name"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
COST = "gen_ai.usage.cost"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
ERROR_TYPE = "error.type"
RUNTIME_ID = "chatscope.runtime.id"
SESSION_ID = "chatscope.session.id"
PARENT_RUNTIME_ID = "chatscope.parent_runtime.id"
SUBAGENT = "chatscope.subagent.name"
PURPOSE = "chatscope.call.purpose"
ATTEMPTS = "chatscope.call.attempts"
MODEL_CALLS = "chatscope.turn.model_calls"

AGENT_NAME = "chatscope"
"""`gen_ai.agent.name` of a foreground chat (a subagent is named after its profile)."""

TOOL_ERROR = "tool_error"
"""`error.type` of a tool call that ended in an error result."""

# chatscope's provider names to the conventions' `gen_ai.provider.name` values; others as is.
_PROVIDER_NAMES: Mapping[str, str] = MappingProxyType(
    {"openai-responses": "openai", "gemini": "gcp.gemini"}
)


def provider_name(provider: str) -> str:
    """`gen_ai.provider.name` for a chatscope provider name."""
    return _PROVIDER_NAMES.get(provider, provider)


def identity_attributes(state: AgentRuntimeState) -> dict[str, str]:
    """Who the scope is: its ids, and the subagent it runs, if it is one."""
    identity = {
        RUNTIME_ID: state.runtime_id,
        SESSION_ID: state.session_id,
        CONVERSATION: state.session_id,
    }
    if state.parent_runtime_id is not None:
        identity[PARENT_RUNTIME_ID] = state.parent_runtime_id
    if state.subagent_name is not None:
        identity[SUBAGENT] = state.subagent_name
    return identity


def request_attributes(invocation: ModelInvocation) -> dict[str, Any]:
    """What one model call asks for: provider, model, endpoint (host and port only, never the
    rest of the URL) and output cap."""
    attributes: dict[str, Any] = {
        PROVIDER: provider_name(invocation.provider),
        REQUEST_MODEL: invocation.model,
        "gen_ai.request.stream": True,
        "gen_ai.request.max_tokens": invocation.ephemerals.max_output_tokens,
        "gen_ai.output.type": "json" if invocation.output_schema is not None else "text",
    }
    attributes.update(_server(invocation.base_url))
    return attributes


def tool_attributes(call: ToolCallBlock) -> dict[str, str]:
    """Which tool a call runs, and the call's id."""
    return {TOOL_NAME: call.name, TOOL_CALL_ID: call.id, TOOL_TYPE: "function"}


def _server(base_url: str | None) -> dict[str, Any]:
    if not base_url:
        return {}
    try:
        parts = urlsplit(base_url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return {}
    if not host:
        return {}
    default = 443 if parts.scheme == "https" else 80
    return {"server.address": host, "server.port": port or default}


def error_attributes(error: BaseException) -> dict[str, Any]:
    """`error.type` (the error's class), and a provider error's category and HTTP status."""
    attributes: dict[str, Any] = {ERROR_TYPE: type(error).__name__}
    if isinstance(error, ProviderError):
        attributes["chatscope.error.category"] = str(error.category)
        if error.status is not None:
            attributes["http.response.status_code"] = error.status
    return attributes


def clean(text: str, secret: str | None) -> str:
    """`text` without the call's key and without anything shaped like a key."""
    return redact_secrets(scrub_secret(text, secret))


def json_text(value: Any, secret: str | None) -> str:
    """`value` as JSON, every string in it cleaned, and the encoding cleaned once more."""
    return clean(json.dumps(_cleaned(value, secret), ensure_ascii=False), secret)


def _cleaned(value: Any, secret: str | None) -> Any:
    if isinstance(value, str):
        return clean(value, secret)
    if isinstance(value, Mapping):
        return {clean(str(key), secret): _cleaned(item, secret) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_cleaned(item, secret) for item in value]
    return value


def input_messages_json(messages: Iterable[Message], secret: str | None) -> str:
    """`gen_ai.input.messages`: the chat history sent, as role and parts."""
    return json_text([_message(message) for message in messages], secret)


def output_messages_json(message: Message, finish_reason: str, secret: str | None) -> str:
    """`gen_ai.output.messages`: the one answer, with why it ended."""
    answer = _message(message) | {"finish_reason": finish_reason}
    return json_text([answer], secret)


def system_instructions_json(text: str, secret: str | None) -> str:
    """`gen_ai.system_instructions`: the system prompt as one text part."""
    return json_text([{"type": "text", "content": text}], secret)


def _message(message: Message) -> dict[str, Any]:
    return {"role": str(message.role), "parts": [_part(block) for block in message.blocks]}


def _part(block: Block) -> dict[str, Any]:
    match block:
        case TextBlock(text=text):
            return {"type": "text", "content": text}
        case ThinkingBlock(text=text):
            return {"type": "reasoning", "content": text}
        case ToolCallBlock():
            return {
                "type": "tool_call",
                "id": block.id,
                "name": block.name,
                "arguments": block.arguments,
            }
        case ToolResultBlock():
            return {"type": "tool_call_response", "id": block.call_id, "result": block.content}
        case _:
            assert_never(block)
