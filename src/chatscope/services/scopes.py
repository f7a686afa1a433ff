"""Turning a request for a scope (CLI flags, a subagent profile) into a fresh runtime context.

`ScopeFactory` computes the frozen state and auth spec; the containers' `context` factory (handed
in as `build_context`) assembles the parts. The factory reads the settings snapshot it was given
and changes nothing: building a subagent never touches its parent (REQ-STAT6-003.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr

from chatscope.config.ephemeral import EphemeralSettings
from chatscope.config.settings import Settings
from chatscope.services.auth import AuthSpec
from chatscope.services.frozen import FrozenDict, deep_freeze
from chatscope.services.runtime import AgentRuntimeContext, AgentRuntimeState, new_id

__all__ = ["BuildContext", "ScopeFactory", "ScopeRequest"]


class BuildContext(Protocol):
    """The containers' context factory: fresh history, telemetry, tools and adapter per call."""

    def __call__(
        self,
        *,
        state: AgentRuntimeState,
        auth: AuthSpec,
        ephemerals: EphemeralSettings,
        system_prompt: str | None,
        allowed_tools: tuple[str, ...] | None,
    ) -> AgentRuntimeContext:
        """Build one context."""
        ...


@dataclass(frozen=True, slots=True)
class ScopeRequest:
    """What a caller may choose for a scope; unset fields come from settings."""

    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    key_file: Path | None = None
    session_id: str | None = None
    model_params: FrozenDict = field(default_factory=FrozenDict)
    ephemeral_overrides: FrozenDict = field(default_factory=FrozenDict)
    system_prompt: str | None = None
    allowed_tools: tuple[str, ...] | None = None
    subagent_name: str | None = None

    @classmethod
    def create(cls, **fields: Any) -> ScopeRequest:
        """A request with its mappings frozen and a plain-text key wrapped as a secret."""
        for name in ("model_params", "ephemeral_overrides"):
            fields[name] = deep_freeze(fields.get(name) or {})
        if isinstance(fields.get("api_key"), str):
            fields["api_key"] = SecretStr(fields["api_key"])
        return cls(**fields)


class ScopeFactory:
    """Builds foreground and subagent runtime contexts from one settings snapshot."""

    __slots__ = ("_build_context", "_settings")

    def __init__(self, settings: Settings, build_context: BuildContext) -> None:
        self._settings = settings
        self._build_context = build_context

    def foreground(self, request: ScopeRequest | None = None) -> AgentRuntimeContext:
        """A fresh top-level scope: new runtime id, new history, new telemetry binding."""
        request = request or ScopeRequest()
        return self._build(request, parent=None, ephemerals=self._settings.ephemeral)

    def subagent(self, request: ScopeRequest, parent: AgentRuntimeContext) -> AgentRuntimeContext:
        """A fresh child scope of `parent`; the parent is read, never changed."""
        return self._build(request, parent=parent, ephemerals=parent.ephemerals)

    def _build(
        self,
        request: ScopeRequest,
        *,
        parent: AgentRuntimeContext | None,
        ephemerals: EphemeralSettings,
    ) -> AgentRuntimeContext:
        provider = request.provider or self._settings.provider
        section = self._settings.providers.get(provider)
        auth = AuthSpec.for_provider(
            provider,
            api_key=request.api_key or section.api_key,
            key_file=request.key_file or section.key_file,
            required=section.auth_required,
        )
        state = AgentRuntimeState(
            runtime_id=new_id(),
            session_id=request.session_id or new_id(),
            provider=provider,
            model=request.model or self._settings.model_for(provider),
            base_url=request.base_url or section.base_url,
            auth_type=auth.auth_type,
            model_params=request.model_params,
            parent_runtime_id=parent.runtime_id if parent else None,
            subagent_name=request.subagent_name,
        )
        return self._build_context(
            state=state,
            auth=auth,
            ephemerals=ephemerals.with_overrides(request.ephemeral_overrides),
            system_prompt=request.system_prompt,
            allowed_tools=request.allowed_tools,
        )
