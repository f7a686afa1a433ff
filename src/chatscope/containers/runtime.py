"""The runtime-scope layer: factories that build a fresh scope for every chat and subagent."""

from __future__ import annotations

from dependency_injector import containers, providers

from chatscope.config.settings import Settings
from chatscope.services.auth import AuthResolver
from chatscope.services.chat import ChatSession
from chatscope.services.history import InMemoryHistory
from chatscope.services.ports import TelemetrySink
from chatscope.services.retry import RetryPolicy
from chatscope.services.runtime import ProviderCatalog, open_scope_context
from chatscope.services.scopes import ScopeFactory
from chatscope.services.tools import ToolRegistry


class RuntimeScopeContainer(containers.DeclarativeContainer):
    """Declared once per application; each call of `context` is a new, isolated scope.

    Nothing here is a `Singleton`: history, telemetry binding, tool registry and provider
    adapter are created per scope, so no value can cross from one conversation to another.
    Plain settings values arrive as dependencies the application resolves once, since reading
    `settings.provided.x` on every scope would cost more than building the scope's history.
    """

    settings = providers.Dependency(instance_of=Settings)
    history_backend = providers.Dependency(instance_of=str)
    max_turns = providers.Dependency(instance_of=int)
    provider_catalog = providers.Dependency(instance_of=ProviderCatalog)
    telemetry_sink: providers.Dependency[TelemetrySink] = providers.Dependency()
    workspace_tools = providers.Dependency(instance_of=tuple)
    auth_resolver = providers.Dependency(instance_of=AuthResolver)
    retry_policy = providers.Dependency(instance_of=RetryPolicy)

    history = providers.Selector(history_backend, memory=providers.Factory(InMemoryHistory))
    subagent_history = providers.Factory(InMemoryHistory)
    tools = providers.Factory(ToolRegistry, workspace_tools)
    context = providers.Factory(
        open_scope_context,
        open_history=history.provider,
        open_subagent_history=subagent_history.provider,
        tools=tools,
        telemetry_sink=telemetry_sink,
        providers=provider_catalog,
    )
    scopes = providers.Factory(ScopeFactory, settings=settings, build_context=context.provider)
    chat_session = providers.Factory(
        ChatSession,
        auth_resolver=auth_resolver,
        retry_policy=retry_policy,
        max_turns=max_turns,
    )
