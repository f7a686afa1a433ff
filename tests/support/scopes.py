"""Hand-built runtime scopes for unit tests that do not need the containers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr

from chatscope.config.ephemeral import EphemeralSettings
from chatscope.config.settings import ExplicitSettings
from chatscope.services.chat.retry import RetryPolicy
from chatscope.services.chat.session import ChatSession
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.runtime.auth import AuthResolver, AuthSpec
from chatscope.services.runtime.context import (
    AgentRuntimeContext,
    ProviderCatalog,
    create_agent_runtime_context,
    tool_context_of,
)
from chatscope.services.runtime.fallback import FallbackChains
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.services.runtime.ports import ModelProvider
from chatscope.services.runtime.scopes import ScopeFactory
from chatscope.services.runtime.state import AgentRuntimeState
from chatscope.services.tools.ports import Tool
from chatscope.services.tools.registry import ToolPolicy, ToolRegistry
from chatscope.services.tools.toolset import ToolSelection, assemble_tools

FAST_RETRY = RetryPolicy(initial_delay=0.001, max_delay=0.002, first_byte_timeout=5.0)


def make_context(
    provider: ModelProvider,
    *,
    sink: RecordingSink | None = None,
    tools: tuple[Tool, ...] = (),
    api_key: str | None = None,
    policy: ToolPolicy | None = None,
    **state: Any,
) -> AgentRuntimeContext:
    """A context around `provider` with fresh history and a recording sink."""
    state.setdefault("model", "test-model")
    runtime_state = AgentRuntimeState.create(provider=provider.name, **state)
    return create_agent_runtime_context(
        state=runtime_state,
        history=InMemoryHistory(),
        telemetry_sink=sink if sink is not None else RecordingSink(),
        providers=ProviderCatalog.of(provider),
        tools=ToolRegistry(tools, caller=tool_context_of(runtime_state), policy=policy),
        auth=AuthSpec(provider.name, SecretStr(api_key) if api_key else None, required=False),
        ephemerals=EphemeralSettings(),
    )


def make_chat(context: AgentRuntimeContext, **options: Any) -> ChatSession:
    """A chat session over `context` with tiny retry delays and an empty environment."""
    options.setdefault("retry_policy", FAST_RETRY)
    return ChatSession(context, auth_resolver=AuthResolver({}), **options)


def make_scope_factory(
    *providers: ModelProvider,
    sink: RecordingSink,
    workspace: Path,
    chains: FallbackChains | None = None,
    **settings: Any,
) -> ScopeFactory:
    """A `ScopeFactory` whose contexts are assembled by hand, as the containers would; its
    scopes share `chains` (an application's fallback chains) when given."""
    catalog = ProviderCatalog.of(*providers)

    def build_context(*, tool_selection: ToolSelection, **parts: Any) -> AgentRuntimeContext:
        caller = tool_context_of(parts["state"])
        return create_agent_runtime_context(
            history=InMemoryHistory(),
            telemetry_sink=sink,
            providers=catalog,
            tools=assemble_tools(caller=caller, selection=tool_selection),
            **parts,
        )

    explicit = ExplicitSettings(workspace=workspace, **settings)
    return ScopeFactory(explicit, build_context, chains=chains)
