"""The model providers: the shared connection pool and one adapter factory per wire format."""

from __future__ import annotations

from dependency_injector import containers, providers

from chatscope.adapters.providers.anthropic.messages import AnthropicProvider
from chatscope.adapters.providers.demo import DemoProvider
from chatscope.adapters.providers.gemini import GeminiProvider
from chatscope.adapters.providers.http_client import create_http_client, http_client_lifecycle
from chatscope.adapters.providers.openai.chat import OpenAIChatProvider
from chatscope.adapters.providers.openai.responses import OpenAIResponsesProvider
from chatscope.config.settings import HttpSettings
from chatscope.services.runtime.context import ProviderCatalog


class ModelProvidersContainer(containers.DeclarativeContainer):
    """Long-lived, one per application. Holds no credentials.

    Provider adapters are `Factory` providers: every runtime scope gets a fresh adapter object,
    so no adapter instance is ever shared by two conversations (REQ-SP4-003). They share only
    the connection pool, which carries no key, model or base URL.
    """

    http = providers.Dependency(instance_of=HttpSettings)

    http_client = providers.Singleton(create_http_client, http=http)
    http_pool = providers.Resource(http_client_lifecycle, client=http_client)

    demo = providers.Factory(DemoProvider)
    openai = providers.Factory(OpenAIChatProvider, client=http_client, name="openai")
    openai_responses = providers.Factory(
        OpenAIResponsesProvider, client=http_client, name="openai-responses"
    )
    anthropic = providers.Factory(AnthropicProvider, client=http_client, name="anthropic")
    gemini = providers.Factory(GeminiProvider, client=http_client, name="gemini")

    # Each provider name's adapter factory itself (`.provider`): the catalog calls it for every
    # scope, so overriding `openai`, say, applies from the next scope on.
    adapter_factories = providers.Dict(
        {
            "demo": demo.provider,
            "openai": openai.provider,
            "openai-responses": openai_responses.provider,
            "anthropic": anthropic.provider,
            "gemini": gemini.provider,
        }
    )
    catalog = providers.Singleton(ProviderCatalog.of_factories, adapter_factories)
