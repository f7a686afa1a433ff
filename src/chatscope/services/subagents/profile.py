"""Subagents (REQ-STAT6-003): each runs in its own scope, built fresh, isolated from its parent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from chatscope.config.profiles import ProfileSpec
from chatscope.config.settings import FallbackSettings
from chatscope.errors import ConfigurationError
from chatscope.services.frozen import FrozenDict, deep_freeze
from chatscope.services.runtime.context import AgentRuntimeContext
from chatscope.services.runtime.observability.tracing import TraceParent
from chatscope.services.runtime.scopes import ScopeFactory, ScopeRequest

__all__ = ["SubAgentScope", "SubagentProfile"]


@dataclass(frozen=True, slots=True)
class SubagentProfile:
    """What a subagent runs with: its own provider, model, params, prompt and tools.

    `allowed_tools` None means every tool of the scope, `mcp_servers` None every MCP server;
    `api_key_env` names an environment variable looked up (before the provider's standard ones)
    at each call. `output_schema` (a JSON schema, deeply frozen) asks each run for a typed
    answer, validated like any chat's `output_type`. `fallback` gives its scope a chain: the
    profile's own endpoint first, then the members.
    """

    name: str
    provider: str
    model: str
    model_params: FrozenDict = field(default_factory=FrozenDict)
    ephemeral_overrides: FrozenDict = field(default_factory=FrozenDict)
    system_prompt: str | None = None
    allowed_tools: tuple[str, ...] | None = None
    max_turns: int = 10
    timeout_seconds: float | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    key_file: Path | None = None
    api_key_env: str | None = None
    description: str = ""
    output_schema: FrozenDict | None = None
    mcp_servers: tuple[str, ...] | None = None
    fallback: FallbackSettings | None = None

    @classmethod
    def create(cls, *, name: str, provider: str, model: str, **options: Any) -> SubagentProfile:
        """A profile with its mappings deeply frozen."""
        for key in ("model_params", "ephemeral_overrides"):
            options[key] = deep_freeze(options.get(key) or {})
        if options.get("output_schema") is not None:
            options["output_schema"] = deep_freeze(options["output_schema"])
        for key in ("allowed_tools", "mcp_servers"):
            if options.get(key) is not None:
                options[key] = tuple(options[key])
        return cls(name=name, provider=provider, model=model, **options)

    @classmethod
    def from_spec(cls, spec: ProfileSpec) -> SubagentProfile:
        """The profile a validated profile file describes (its schema file read: `load_profile`)."""
        if isinstance(spec.output_schema, Path):
            raise ConfigurationError(
                f"subagent {spec.name!r}: output schema file {spec.output_schema} was not read; "
                "load the profile with load_profile"
            )
        return cls.create(
            name=spec.name,
            provider=spec.provider,
            model=spec.model,
            model_params=spec.model_params,
            ephemeral_overrides=spec.ephemeral_overrides,
            system_prompt=spec.system_prompt,
            allowed_tools=spec.allowed_tools,
            max_turns=spec.max_turns,
            timeout_seconds=spec.timeout_seconds,
            base_url=spec.base_url,
            key_file=spec.key_file,
            api_key_env=spec.api_key_env,
            description=spec.description,
            output_schema=spec.output_schema,
            mcp_servers=spec.mcp_servers,
            fallback=spec.fallback,
        )

    def scope_request(
        self, scope_name: str, *, trace_parent: TraceParent | None = None
    ) -> ScopeRequest:
        """The scope this profile asks for, named `scope_name`, traced under `trace_parent`."""
        return ScopeRequest(
            provider=self.provider,
            model=self.model,
            base_url=self.base_url,
            api_key=self.api_key,
            key_file=self.key_file,
            api_key_env=self.api_key_env,
            model_params=self.model_params,
            ephemeral_overrides=self.ephemeral_overrides,
            system_prompt=self.system_prompt,
            allowed_tools=self.allowed_tools,
            subagent_name=scope_name,
            mcp_servers=self.mcp_servers,
            trace_parent=trace_parent,
            fallback=self.fallback,
        )


@dataclass(frozen=True, slots=True)
class SubAgentScope:
    """A subagent's runtime: own runtime id, `parent_runtime_id` set, own history and telemetry."""

    name: str
    profile: SubagentProfile
    runtime_context: AgentRuntimeContext

    @classmethod
    def create(
        cls,
        name: str,
        profile: SubagentProfile,
        parent: AgentRuntimeContext,
        *,
        scopes: ScopeFactory,
    ) -> SubAgentScope:
        """Build the subagent's scope; `parent` is only read (its runtime id, its ephemerals and
        the span it is in now, which the subagent's spans are traced under: inside the `task`
        tool, that call's span)."""
        request = profile.scope_request(name, trace_parent=parent.telemetry.tracer.here())
        context = scopes.subagent(request, parent)
        return cls(name=name, profile=profile, runtime_context=context)

    @property
    def metadata(self) -> Mapping[str, str | None]:
        """The telemetry metadata every event of this subagent carries."""
        return self.runtime_context.telemetry.metadata
