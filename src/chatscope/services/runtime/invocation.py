"""The frozen input of one provider call (REQ-SP4-002/003): all a call needs, nothing kept."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from chatscope.config.ephemeral import EphemeralSettings
from chatscope.services.frozen import FrozenDict, deep_freeze, thaw
from chatscope.services.messages import Message
from chatscope.services.tools.ports import ToolDeclaration

__all__ = ["OUTPUT_TOOL_NAME", "AuthType", "Credentials", "ModelInvocation", "OutputSchema"]

OUTPUT_TOOL_NAME = "final_output"
"""The tool an adapter without a native schema field (Anthropic) forces for a typed answer."""

_WIRE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NOT_WIRE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


class AuthType(enum.StrEnum):
    """How a call authenticates."""

    API_KEY = "api_key"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Credentials:
    """Resolved for one call only; the key is a `SecretStr` so no repr or log shows it."""

    api_key: SecretStr | None = None

    @property
    def auth_type(self) -> AuthType:
        """`api_key` when a key is present, else `none`."""
        return AuthType.API_KEY if self.api_key is not None else AuthType.NONE

    def secret(self) -> str | None:
        """The key's plain text, for the request headers of this call and nowhere else."""
        return self.api_key.get_secret_value() if self.api_key is not None else None


@dataclass(frozen=True, slots=True)
class OutputSchema:
    """The JSON schema a typed answer must match; each adapter sends it as its API takes one.

    `schema` (deeply frozen) always has an object root: the chat loop wraps any other type as
    `{"result": ...}` and unwraps the answer. `strict` says the schema keeps OpenAI's strict
    mode rules (every object closed, every property required), so the API may enforce it;
    `name` is safe on every wire (letters, digits, `_` and `-`, at most 64).
    """

    name: str
    schema: FrozenDict
    strict: bool = False

    def __post_init__(self) -> None:
        if not _WIRE_NAME.fullmatch(self.name):
            raise ValueError(f"output schema name {self.name!r} is not 1-64 of [A-Za-z0-9_-]")
        if self.schema.get("type") != "object":
            raise ValueError("an output schema has an object root; wrap other types")

    @classmethod
    def create(cls, name: str, schema: Mapping[str, Any], *, strict: bool) -> OutputSchema:
        """A schema deeply frozen, under `name` made wire-safe (`output` if nothing is left)."""
        safe = _NOT_WIRE_NAME_CHARS.sub("_", name).strip("_")[:64] or "output"
        return cls(safe, deep_freeze(schema), strict)

    def json_schema(self) -> dict[str, Any]:
        """The schema as plain, mutable JSON for a request body."""
        plain: dict[str, Any] = thaw(self.schema)
        return plain


@dataclass(frozen=True, slots=True)
class ModelInvocation:
    """One model call. Providers read everything from here and store none of it.

    With `output_schema` set the call asks for a typed answer: JSON matching that schema.
    """

    runtime_id: str
    provider: str
    model: str
    base_url: str | None
    credentials: Credentials
    history: tuple[Message, ...]
    tools: tuple[ToolDeclaration, ...] = ()
    model_params: FrozenDict = field(default_factory=FrozenDict)
    ephemerals: EphemeralSettings = field(default_factory=EphemeralSettings)
    system_prompt: str | None = None
    output_schema: OutputSchema | None = None
