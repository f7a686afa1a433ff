"""The frozen input of one provider call (REQ-SP4-002/003): all a call needs, nothing kept."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from pydantic import SecretStr

from chatscope.config.ephemeral import EphemeralSettings
from chatscope.services.frozen import FrozenDict
from chatscope.services.messages import Message
from chatscope.services.tools.ports import ToolDeclaration

__all__ = ["AuthType", "Credentials", "ModelInvocation"]


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
class ModelInvocation:
    """One model call. Providers read everything from here and store none of it."""

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
