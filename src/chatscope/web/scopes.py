"""What a request asks for, as a `ScopeRequest`: its model resolved, its OpenAI messages mapped.

A model id is a subagent profile's name (its provider, model, params, system prompt and tools),
`provider/model`, or a provider's name alone (its default model). These functions are pure:
they read the settings and profiles they are given and build values, nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from chatscope.config.settings import PROVIDER_NAMES, Settings
from chatscope.services.frozen import thaw
from chatscope.services.messages import (
    Block,
    Message,
    Role,
    TextBlock,
    ToolCallBlock,
    ToolResultBlock,
)
from chatscope.services.runtime.ports import HistoryStore
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.services.subagents.profile import SubagentProfile
from chatscope.web.errors import ApiError

__all__ = [
    "ChatMessage",
    "CompletionRequest",
    "Conversation",
    "ModelChoice",
    "model_ids",
    "read_conversation",
    "resolve_model",
    "scope_request",
]


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The provider and model a request runs on, and the profile it named, if any."""

    provider: str
    model: str
    profile: SubagentProfile | None = None

    @property
    def id(self) -> str:
        """The model id a client sees: the profile's name, or `provider/model`."""
        return self.profile.name if self.profile else f"{self.provider}/{self.model}"

    @property
    def output_type(self) -> Any:
        """The profile's output schema (None: free text)."""
        schema = self.profile.output_schema if self.profile else None
        return None if schema is None else thaw(schema)


def model_ids(settings: Settings, profiles: Mapping[str, SubagentProfile]) -> list[str]:
    """Every model id a client may name: each profile, then each provider's default model."""
    defaults = [f"{name}/{settings.providers.get(name).default_model}" for name in PROVIDER_NAMES]
    return [*profiles, *defaults]


def resolve_model(
    model: str | None,
    provider: str | None,
    *,
    settings: Settings,
    profiles: Mapping[str, SubagentProfile],
) -> ModelChoice:
    """The choice `model` (and `provider`, if given) names; 404 `model_not_found` if none.

    With `provider`, `model` is that provider's model (default: its default model). Without,
    `model` is a model id; with neither, the settings' provider and model.
    """
    if provider is not None:
        if provider not in PROVIDER_NAMES:
            raise _unknown_model(provider)
        return ModelChoice(provider, model or settings.model_for(provider))
    if model is None:
        return ModelChoice(settings.provider, settings.model_for(settings.provider))
    profile = profiles.get(model)
    if profile is not None:
        return ModelChoice(profile.provider, profile.model, profile)
    head, _, tail = model.partition("/")
    if head in PROVIDER_NAMES:
        return ModelChoice(head, tail or settings.model_for(head))
    raise _unknown_model(model)


def _unknown_model(name: str) -> ApiError:
    return ApiError(
        404,
        f"no model {name!r}: name a subagent profile, a provider, or provider/model "
        "(GET /v1/models lists them)",
        code="model_not_found",
    )


def scope_request(
    choice: ModelChoice,
    *,
    tenant: str,
    provider_key: SecretStr | None = None,
    session_id: str | None = None,
    history: HistoryStore | None = None,
    system: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ScopeRequest:
    """The scope of one request: the choice's provider and model (and profile), the tenant as
    owner of its session, its own provider key, and `system` after the profile's prompt.

    `overrides` are sampling choices of the request (`temperature`, `max_tokens`).
    """
    profile = choice.profile
    fields: dict[str, Any] = {"provider": choice.provider, "model": choice.model}
    if profile is not None:
        base = profile.scope_request(profile.name)
        fields |= {"base_url": base.base_url, "key_file": base.key_file}
        fields |= {"api_key_env": base.api_key_env, "allowed_tools": base.allowed_tools}
        fields |= {"mcp_servers": base.mcp_servers, "ephemeral_overrides": base.ephemeral_overrides}
        fields["model_params"] = thaw(base.model_params)
    prompt = "\n\n".join(part for part in (_profile_prompt(profile), system) if part)
    fields |= {"system_prompt": prompt or None, "api_key": provider_key, "owner": tenant}
    fields |= {"session_id": session_id, "history": history}
    _apply_overrides(fields, overrides or {})
    return ScopeRequest.create(**fields)


def _profile_prompt(profile: SubagentProfile | None) -> str | None:
    return profile.system_prompt if profile else None


def _apply_overrides(fields: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    if overrides.get("temperature") is not None:
        fields["model_params"] = {**fields.get("model_params", {})}
        fields["model_params"]["temperature"] = overrides["temperature"]
    if overrides.get("max_tokens") is not None:
        fields["ephemeral_overrides"] = {**thaw(fields.get("ephemeral_overrides") or {})}
        fields["ephemeral_overrides"]["maxOutputTokens"] = overrides["max_tokens"]


class _Function(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    arguments: str = "{}"


class _ToolCall(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    function: _Function


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One message of an OpenAI Chat Completions request."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[_Part] | None = None
    tool_calls: list[_ToolCall] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The text of the message; a part that is not text is refused (400)."""
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        for part in self.content:
            if part.type != "text" or part.text is None:
                raise ApiError(400, f"content parts of type {part.type!r} are not supported")
        return "".join(part.text or "" for part in self.content)


@dataclass(frozen=True, slots=True)
class Conversation:
    """An OpenAI request's messages: system prompt, earlier messages, and the prompt."""

    system: str | None
    history: tuple[Message, ...]
    prompt: str


def read_conversation(messages: Sequence[ChatMessage]) -> Conversation:
    """Map the messages: system and developer messages make the system prompt, the last
    message (the user's) is the prompt, the others the earlier history (400 otherwise)."""
    if not messages or messages[-1].role != "user":
        raise ApiError(400, "the last message must be the user's", code="invalid_messages")
    system = [m.text() for m in messages if m.role in ("system", "developer")]
    history = _history(m for m in messages[:-1] if m.role not in ("system", "developer"))
    return Conversation("\n\n".join(system) or None, history, messages[-1].text())


def _history(messages: Any) -> tuple[Message, ...]:
    mapped: list[Message] = []
    names: dict[str, str] = {}
    for message in messages:
        if message.role == "tool":
            result = _tool_result(message, names)
            if mapped and mapped[-1].role is Role.TOOL:
                mapped[-1] = Message(Role.TOOL, (*mapped[-1].blocks, result))
            else:
                mapped.append(Message(Role.TOOL, (result,)))
        elif message.role == "assistant":
            blocks = _assistant_blocks(message, names)
            if blocks:
                mapped.append(Message(Role.ASSISTANT, blocks))
        else:
            mapped.append(Message.user(message.text()))
    return tuple(mapped)


def _assistant_blocks(message: ChatMessage, names: dict[str, str]) -> tuple[Block, ...]:
    text = message.text()
    blocks: list[Block] = [TextBlock(text)] if text else []
    for call in message.tool_calls or ():
        names[call.id] = call.function.name
        blocks.append(ToolCallBlock.create(call.id, call.function.name, _arguments(call)))
    return tuple(blocks)


def _arguments(call: _ToolCall) -> dict[str, Any]:
    try:
        arguments = json.loads(call.function.arguments or "{}")
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        raise ApiError(400, f"the arguments of tool call {call.id!r} are not a JSON object")
    return arguments


def _tool_result(message: ChatMessage, names: Mapping[str, str]) -> ToolResultBlock:
    if not message.tool_call_id:
        raise ApiError(400, "a tool message needs its tool_call_id", code="invalid_messages")
    name = names.get(message.tool_call_id, "tool")
    return ToolResultBlock(message.tool_call_id, name, result=message.text())


class CompletionRequest(BaseModel):
    """The fields of a Chat Completions request chatscope reads; others are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)

    def overrides(self) -> dict[str, Any]:
        """The sampling choices a scope takes from the request."""
        limit = self.max_completion_tokens or self.max_tokens
        return {"temperature": self.temperature, "max_tokens": limit}
