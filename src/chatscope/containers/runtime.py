"""The runtime-scope layer: factories that build a fresh scope for every chat and subagent."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from dependency_injector import containers, providers

from chatscope.adapters.storage.database import Database
from chatscope.adapters.storage.sql_history import SqlHistoryStore
from chatscope.config.settings import CompressionSettings, Settings
from chatscope.services.chat import ChatRules, RetryPolicy, open_chat_session
from chatscope.services.history.compression import CompressionRules
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.history.summariser import Summariser
from chatscope.services.runtime.auth import AuthResolver
from chatscope.services.runtime.context import BuildTools, ContextAssembler, ProviderCatalog
from chatscope.services.runtime.fallback import FallbackChains
from chatscope.services.runtime.observability.tracing import NO_TRACING, Tracing
from chatscope.services.runtime.ports import TelemetrySink
from chatscope.services.runtime.scopes import ScopeFactory
from chatscope.services.subagents.task import SubagentExecutor
from chatscope.services.subagents.task_tools import SubagentTools


class RuntimeScopeContainer(containers.DeclarativeContainer):
    """Declared once per application; every scope built by `scopes` is new and isolated.

    Nothing a scope owns is a `Singleton`: history, telemetry binding, tool registry and
    provider adapter are created per scope, so no value can cross from one conversation to
    another. The builders are singletons of the application, since they hold nothing of any
    scope: `context` (the `ContextAssembler`) assembles each scope's context, `subagent_tools`
    binds its subagent tools (`task` for a foreground scope, with a runner and a concurrency
    limit of its own made then; `emit_value` for a subagent), `scopes` is the `ScopeFactory`,
    and `chat_rules` and `compression` are what every chat and compressor share.

    The builders take the application's services (sink, tracing, catalog, tool builder, auth
    resolver, retry policy, summariser) once, when the first scope or chat is built: a provider
    resolved through a `Dependency` costs more per call than most parts of a scope. What must be
    fresh for each scope is still a provider called for each scope (`history`, `compressor`,
    `chat_session`, the catalog's adapter factories, the application's tools), so overriding
    one of those takes effect at the next scope; the application's services are overridden
    before its first chat. Plain settings values arrive as dependencies the application
    resolves once, since reading `settings.provided.x` costs more than building a history.
    """

    settings = providers.Dependency(instance_of=Settings)
    history_backend = providers.Dependency(instance_of=str)
    database = providers.Dependency(instance_of=Database)  # type: ignore[type-abstract]
    max_turns = providers.Dependency(instance_of=int)
    provider_catalog = providers.Dependency(instance_of=ProviderCatalog)
    telemetry_sink: providers.Dependency[TelemetrySink] = providers.Dependency()
    # Makes each scope's tracer (the application's `OtelTracing`); by default nothing traces.
    tracing: providers.Dependency[Tracing] = providers.Dependency(default=NO_TRACING)
    # The `ScopeToolkit` of `ToolsContainer`: called once per scope, with its caller and
    # selection, for a registry of fresh tool objects.
    scope_tools: providers.Dependency[BuildTools] = providers.Dependency()
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

    # The application's backend, read once: selecting through the `Dependency` itself would
    # resolve its override again for every scope (0.4 µs, a quarter of opening a history).
    chosen_history_backend = providers.Singleton(str, history_backend)
    history = providers.Selector(
        chosen_history_backend,
        memory=providers.Factory(InMemoryHistory),
        database=providers.Factory(SqlHistoryStore, database=database),
    )
    subagent_history = providers.Factory(InMemoryHistory)
    # The application's one assembler: it takes the sink, tracing, catalog and tool builder
    # once, and calls `history` (or `subagent_history`) and the tool builder for every scope.
    context = providers.Singleton(
        ContextAssembler,
        open_history=history.provider,
        open_subagent_history=subagent_history.provider,
        build_tools=scope_tools,
        telemetry_sink=telemetry_sink,
        tracing=tracing,
        providers=provider_catalog,
    )
    compression = providers.Singleton(
        CompressionRules, summariser=summariser, settings=compression_settings
    )
    compressor = providers.Factory(CompressionRules.compressor, compression)
    chat_rules = providers.Singleton(
        ChatRules,
        auth_resolver=auth_resolver,
        retry_policy=retry_policy,
        max_turns=max_turns,
        output_retries=output_retries,
    )
    # A chat per call: `chat_session(context=..., max_turns=...)`; its compressor is its own.
    chat_session = providers.Factory(open_chat_session, rules=chat_rules, compressor=compressor)
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
        build_context=context,
        scope_tools=subagent_tools,
        chains=fallback_chains,
    )
