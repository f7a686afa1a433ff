"""The runtime-scope layer: factories that build a fresh scope for every chat and subagent."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from dependency_injector import containers, providers

from chatscope.adapters.storage.database import Database
from chatscope.adapters.storage.sql_history import SqlHistoryStore
from chatscope.config.settings import CompressionSettings, Settings
from chatscope.services.chat import ChatSession, RetryPolicy
from chatscope.services.history.compression import HistoryCompressor
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.history.summariser import Summariser
from chatscope.services.runtime.auth import AuthResolver
from chatscope.services.runtime.context import ProviderCatalog, open_scope_context
from chatscope.services.runtime.fallback import FallbackChains
from chatscope.services.runtime.observability.tracing import NO_TRACING, Tracing
from chatscope.services.runtime.ports import TelemetrySink
from chatscope.services.runtime.scopes import ScopeFactory
from chatscope.services.subagents.task import SubagentExecutor
from chatscope.services.subagents.task_tools import SubagentTools
from chatscope.services.tools.registry import ToolRegistry


class RuntimeScopeContainer(containers.DeclarativeContainer):
    """Declared once per application; each call of `context` is a new, isolated scope.

    Nothing a scope owns is a `Singleton`: history, telemetry binding, tool registry and
    provider adapter are created per scope, so no value can cross from one conversation to
    another. The two builders are singletons of the application, since they hold nothing of
    any scope: `subagent_tools` gives every scope built by `scopes` its subagent tools (`task`
    for a foreground scope, with a runner and a concurrency limit of its own made then;
    `emit_value` for a subagent), and `scopes` is the `ScopeFactory`, which reads the per-scope
    factories (`context`) on every call, so overriding those still takes effect. Plain settings
    values arrive as dependencies the application resolves once, since reading
    `settings.provided.x` on every scope would cost more than building the scope's history.
    """

    settings = providers.Dependency(instance_of=Settings)
    history_backend = providers.Dependency(instance_of=str)
    database = providers.Dependency(instance_of=Database)  # type: ignore[type-abstract]
    max_turns = providers.Dependency(instance_of=int)
    provider_catalog = providers.Dependency(instance_of=ProviderCatalog)
    telemetry_sink: providers.Dependency[TelemetrySink] = providers.Dependency()
    # Makes each scope's tracer (the application's `OtelTracing`); by default nothing traces.
    tracing: providers.Dependency[Tracing] = providers.Dependency(default=NO_TRACING)
    # The tools factory of `ToolsContainer`: called once per scope, with its caller and
    # selection, for a registry of fresh tool objects.
    scope_tools: providers.Dependency[ToolRegistry] = providers.Dependency()
    auth_resolver = providers.Dependency(instance_of=AuthResolver)
    retry_policy = providers.Dependency(instance_of=RetryPolicy)
    subagent_profiles = providers.Dependency(
        instance_of=Mapping,  # type: ignore[type-abstract]
        default=MappingProxyType({}),
    )
    max_concurrent_subagents = providers.Dependency(instance_of=int, default=4)
    output_retries = providers.Dependency(instance_of=int, default=1)
    # The summariser keeps no state of a chat (it is handed the context on each call), so the
    # application's one serves every compressor; each chat's cooldowns live in its compressor.
    summariser: providers.Dependency[Summariser] = providers.Dependency()
    compression_settings = providers.Dependency(instance_of=CompressionSettings)
    # The application's fallback chains (breaker state, round-robin position), shared by its
    # scopes; without them every scope that has a chain gets a chain of its own.
    fallback_chains: providers.Dependency[FallbackChains | None] = providers.Dependency(
        default=providers.Object(None)
    )

    # Where subagents run (the application's executor); None: in this process.
    subagent_executor: providers.Dependency[SubagentExecutor | None] = providers.Dependency(
        default=providers.Object(None)
    )

    history = providers.Selector(
        history_backend,
        memory=providers.Factory(InMemoryHistory),
        database=providers.Factory(SqlHistoryStore, database=database),
    )
    subagent_history = providers.Factory(InMemoryHistory)
    context = providers.Factory(
        open_scope_context,
        open_history=history.provider,
        open_subagent_history=subagent_history.provider,
        build_tools=scope_tools.provider,
        telemetry_sink=telemetry_sink,
        tracing=tracing,
        providers=provider_catalog,
    )
    compressor = providers.Factory(
        HistoryCompressor, summariser=summariser, settings=compression_settings
    )
    chat_session = providers.Factory(
        ChatSession,
        auth_resolver=auth_resolver,
        retry_policy=retry_policy,
        max_turns=max_turns,
        compressor=compressor,
        output_retries=output_retries,
    )
    subagent_tools = providers.Singleton(
        SubagentTools,
        profiles=subagent_profiles,
        open_chat=chat_session.provider,
        max_concurrent=max_concurrent_subagents,
        executor=subagent_executor,
    )
    scopes = providers.Singleton(
        ScopeFactory,
        settings=settings,
        build_context=context.provider,
        scope_tools=subagent_tools,
        chains=fallback_chains,
    )
