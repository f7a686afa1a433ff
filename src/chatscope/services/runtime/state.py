"""Who a scope is (REQ-STAT6-001): its ids, provider, model and endpoint, frozen and validated.

An update returns a new state; the old one is untouched, so a scope can never be re-pointed.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chatscope.errors import MissingProviderRuntimeError
from chatscope.services.frozen import FrozenDict, deep_freeze
from chatscope.services.runtime.invocation import AuthType

__all__ = ["AgentRuntimeState", "new_id"]


def new_id() -> str:
    """A fresh random identifier for a runtime or session."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class AgentRuntimeState:
    """Who a scope is. Frozen and validated; `model_params` is deeply frozen."""

    runtime_id: str
    session_id: str
    provider: str
    model: str
    base_url: str | None = None
    auth_type: AuthType = AuthType.NONE
    model_params: FrozenDict = field(default_factory=FrozenDict)
    parent_runtime_id: str | None = None
    subagent_name: str | None = None

    def __post_init__(self) -> None:
        missing = [name for name in _REQUIRED_STATE_FIELDS if not getattr(self, name)]
        if missing:
            raise MissingProviderRuntimeError(missing, runtime_id=self.runtime_id or None)
        if not isinstance(self.model_params, FrozenDict):
            object.__setattr__(self, "model_params", deep_freeze(self.model_params))

    @classmethod
    def create(
        cls,
        *,
        provider: str,
        model: str,
        session_id: str | None = None,
        model_params: Mapping[str, Any] | None = None,
        **optional: Any,
    ) -> AgentRuntimeState:
        """A state with a fresh runtime id (and session id unless given)."""
        return cls(
            runtime_id=new_id(),
            session_id=session_id or new_id(),
            provider=provider,
            model=model,
            model_params=deep_freeze(model_params or {}),
            **optional,
        )

    def with_updates(self, **changes: Any) -> AgentRuntimeState:
        """A new, validated state with `changes` applied; this one is untouched."""
        return dataclasses.replace(self, **changes)


_REQUIRED_STATE_FIELDS = ("runtime_id", "session_id", "provider", "model")
