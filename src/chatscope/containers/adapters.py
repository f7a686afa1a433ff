"""The adapters layer: the shared connection pool, provider adapters, telemetry sink and tools."""

from __future__ import annotations

from typing import Any

import structlog
from dependency_injector import containers, providers

from chatscope.adapters.anthropic import AnthropicProvider
from chatscope.adapters.database import create_database_engine
from chatscope.adapters.demo import DemoProvider
from chatscope.adapters.gemini import GeminiProvider
from chatscope.adapters.http_client import create_http_client, http_client_lifecycle
from chatscope.adapters.openai_chat import OpenAIChatProvider
from chatscope.adapters.openai_responses import OpenAIResponsesProvider
from chatscope.adapters.sql_history import SessionCatalog
from chatscope.adapters.sql_schema import database_lifecycle
from chatscope.adapters.workspace_tools import build_workspace_tools
from chatscope.config.settings import PROVIDER_NAMES, Settings
from chatscope.services.runtime import ProviderCatalog
from chatscope.services.telemetry import StructlogSink


class AdaptersContainer(containers.DeclarativeContainer):
    """Long-lived infrastructure, one per application. Holds no credentials.

    Provider adapters are `Factory` providers: every runtime scope gets a fresh adapter object,
    so no adapter instance is ever shared by two conversations (REQ-SP4-003). They share only
    the connection pool, which carries no key, model or base URL.
    """

    settings = providers.Dependency(instance_of=Settings)

    http_client = providers.Singleton(create_http_client, http=settings.provided.http)
    http_pool = providers.Resource(http_client_lifecycle, client=http_client)

    # The session database: one engine (one connection pool) per application, created on
    # first use. The resource migrates the schema on init and closes the pool on shutdown,
    # and does nothing at all with the memory history backend.
    database_engine = providers.Singleton(
        create_database_engine,
        data_dir=settings.provided.data_dir,
        database_url=settings.provided.database_url,
    )
    database = providers.Resource(
        database_lifecycle,
        open_engine=database_engine.provider,
        history_backend=settings.provided.history_backend,
    )
    session_catalog = providers.Factory(SessionCatalog, engine=database_engine)

    demo = providers.Factory(DemoProvider)
    openai = providers.Factory(OpenAIChatProvider, client=http_client, name="openai")
    openai_responses = providers.Factory(
        OpenAIResponsesProvider, client=http_client, name="openai-responses"
    )
    anthropic = providers.Factory(AnthropicProvider, client=http_client, name="anthropic")
    gemini = providers.Factory(GeminiProvider, client=http_client, name="gemini")

    model_providers: providers.Aggregate[Any] = providers.Aggregate(
        {
            "demo": demo,
            "openai": openai,
            "openai-responses": openai_responses,
            "anthropic": anthropic,
            "gemini": gemini,
        }
    )
    provider_catalog = providers.Singleton(
        ProviderCatalog, create=model_providers.provider, names=PROVIDER_NAMES
    )

    telemetry_sink = providers.Singleton(
        StructlogSink, logger=providers.Callable(structlog.get_logger, "chatscope.telemetry")
    )
    workspace_tools = providers.Singleton(build_workspace_tools, root=settings.provided.workspace)
