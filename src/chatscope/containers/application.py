"""The application container: settings in, logging and infrastructure up, scopes out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import structlog
from dependency_injector import containers, providers

from chatscope.adapters.logging.setup import configure_logging
from chatscope.adapters.logging.sink import StructlogSink
from chatscope.adapters.pricing import PriceTable
from chatscope.adapters.telemetry.otel import OtelTracing, TablePricing, global_tracer_provider
from chatscope.adapters.tools.mcp import McpServers
from chatscope.adapters.tools.workspace import WorkspaceToolkit
from chatscope.config.profiles import load_profiles_for
from chatscope.config.settings import CompressionSettings, Settings
from chatscope.containers.executors import ray_executor
from chatscope.containers.providers import ModelProvidersContainer
from chatscope.containers.runtime import RuntimeScopeContainer
from chatscope.containers.storage import StorageContainer
from chatscope.containers.tools import ToolsContainer
from chatscope.services.chat import RetryPolicy
from chatscope.services.history.summariser import ModelSummariser
from chatscope.services.runtime.auth import AuthResolver
from chatscope.services.runtime.fallback import FallbackChains
from chatscope.services.subagents.task import LocalExecutor
from chatscope.services.subagents.task_tools import (
    profiles_by_name,
    tool_names,
    usable_profiles,
)
from chatscope.services.tools.ports import Tool


def known_tool_names(
    workspace: WorkspaceToolkit, application: Iterable[Tool], mcp_servers: McpServers
) -> tuple[str, ...]:
    """Every tool a subagent profile may allow: workspace, application and MCP tools.

    MCP tools are known once the servers have started (`init_resources`).
    """
    return (*workspace.names(), *tool_names(application), *mcp_servers.names())


def mcp_log_dir_of(settings: Settings) -> Path:
    """Where stdio MCP servers' stderr goes: `<data_dir>/mcp-logs/<server>.log`."""
    return settings.data_dir / "mcp-logs"


def compression_settings_of(settings: Settings) -> CompressionSettings:
    """The compression section, resolved once rather than on every chat session."""
    return settings.compression


class ApplicationContainer(containers.DeclarativeContainer):
    """Composes the layers. The entry point supplies `settings` and an `environ` snapshot.

    Usage::

        app = ApplicationContainer(settings=load_settings(), environ=dict(os.environ))
        await app.init_resources()
        context = app.runtime.scopes().foreground()
        chat = app.runtime.chat_session(context=context)
    """

    settings = providers.Dependency(instance_of=Settings)
    environ = providers.Dependency(instance_of=Mapping)  # type: ignore[type-abstract]

    logging = providers.Resource(
        configure_logging,
        level=settings.provided.log_level,
        log_format=settings.provided.log_format,
    )

    telemetry_sink = providers.Singleton(
        StructlogSink, logger=providers.Callable(structlog.get_logger, "chatscope.telemetry")
    )

    model_providers = providers.Container(ModelProvidersContainer, http=settings.provided.http)
    storage = providers.Container(
        StorageContainer,
        data_dir=settings.provided.data_dir,
        database_url=settings.provided.database_url,
        history_backend=settings.provided.history_backend,
    )
    tools = providers.Container(
        ToolsContainer,
        workspace=settings.provided.workspace,
        tools_settings=settings.provided.tools,
        mcp_settings=settings.provided.mcp_servers,
        mcp_log_dir=providers.Callable(mcp_log_dir_of, settings),
    )

    auth_resolver = providers.Singleton(AuthResolver, environ=environ)
    # The state of every fallback chain of this application's scopes (circuit breakers,
    # round-robin position): one object per application, never shared with another.
    fallback_chains = providers.Singleton(FallbackChains)
    # The genai-prices table, loaded when a cost is first asked for (never over the network).
    price_table = providers.Singleton(PriceTable)
    # Spans: the tracer provider the application configured (OpenTelemetry's global one; a
    # proxy until it configures one), or one handed in by overriding this provider. Every
    # scope gets a tracer of its own from `tracing`; a recorded call is priced from the table.
    tracer_provider = providers.Singleton(global_tracer_provider)
    tracing = providers.Singleton(
        OtelTracing,
        provider=tracer_provider,
        capture_content=settings.provided.telemetry.capture_content,
        pricing=providers.Factory(TablePricing, price_table.provider),
    )
    retry_policy = providers.Singleton(
        RetryPolicy,
        max_attempts=settings.provided.retry.max_attempts,
        initial_delay=settings.provided.retry.initial_delay,
        multiplier=settings.provided.retry.multiplier,
        max_delay=settings.provided.retry.max_delay,
        jitter=settings.provided.retry.jitter,
        max_server_delay=settings.provided.retry.max_server_delay,
        first_byte_timeout=settings.provided.http.first_byte_timeout,
    )

    summariser = providers.Singleton(
        ModelSummariser,
        auth_resolver=auth_resolver,
        retry_policy=retry_policy,
        provider_catalog=model_providers.catalog,
        settings=settings,
    )

    # Subagent profiles are read and validated once, when first needed; a broken profile
    # file is a configuration error naming the file and the key.
    profile_catalog = providers.Singleton(
        load_profiles_for,
        settings=settings,
        tool_names=providers.Callable(
            known_tool_names, tools.workspace_toolkit, tools.application_tools, tools.mcp_servers
        ),
    )
    subagent_profiles = providers.Singleton(profiles_by_name, profile_catalog)
    # What a chat's `task` tool offers: a broken profile leaves chats without `task` instead
    # of failing them; `subagents list` and `chatscope task` report it.
    chat_profiles = providers.Singleton(usable_profiles, subagent_profiles.provider)

    # Where subagents run: in this process, or on a Ray cluster's workers (a resource: the
    # container's shutdown kills them).
    subagent_executor = providers.Selector(
        settings.provided.subagent_executor,
        local=providers.Singleton(LocalExecutor),
        ray=providers.Resource(
            ray_executor, settings=settings, environ=environ, telemetry_sink=telemetry_sink
        ),
    )

    runtime = providers.Container(
        RuntimeScopeContainer,
        settings=settings,
        history_backend=providers.Singleton(str, settings.provided.history_backend),
        database=storage.database,
        max_turns=providers.Singleton(int, settings.provided.max_turns),
        provider_catalog=model_providers.catalog,
        telemetry_sink=telemetry_sink,
        tracing=tracing,
        scope_tools=tools.scope_tools,
        auth_resolver=auth_resolver,
        retry_policy=retry_policy,
        fallback_chains=fallback_chains,
        subagent_profiles=chat_profiles,
        summariser=summariser,
        compression_settings=providers.Singleton(compression_settings_of, settings),
        max_concurrent_subagents=providers.Singleton(
            int, settings.provided.max_concurrent_subagents
        ),
        output_retries=providers.Singleton(int, settings.provided.output_retries),
        subagent_executor=subagent_executor,
    )
