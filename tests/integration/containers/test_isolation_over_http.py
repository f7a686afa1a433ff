"""Concurrent chats with their own keys, models and endpoints, checked where it counts: at the
server. Every request that arrives must carry exactly its own scope's values."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatscope.config.settings import ExplicitSettings
from chatscope.containers import ApplicationContainer
from chatscope.services.chat.session import ChatSession
from chatscope.services.runtime.scopes import ScopeRequest
from tests.support.replay_server import (
    RecordedRequest,
    ReplayServer,
    ScriptedResponse,
    replay_server,
)
from tests.support.streams import minimal_stream

PROVIDERS = ("openai", "anthropic", "gemini")


def _scope_values(request: RecordedRequest) -> tuple[str, str, str]:
    """(tenant from the path, key from the auth header, model from body or path)."""
    tenant = request.path.split("/")[1]
    headers = request.headers
    key = headers.get("x-api-key") or headers.get("x-goog-api-key") or headers["authorization"]
    key = key.removeprefix("Bearer ")
    body = request.json()
    model = body.get("model") or request.path.split("/models/")[1].split(":")[0]
    return tenant, key, model


def _respond(request: RecordedRequest) -> ScriptedResponse:
    tenant, key, model = _scope_values(request)
    provider = (
        "anthropic"
        if "/messages" in request.path
        else "gemini"
        if ":" in request.path
        else "openai"
    )
    delay = (sum(map(ord, tenant)) % 4) * 0.005
    return ScriptedResponse.sse(
        minimal_stream(provider, f"{tenant}|{key}|{model}"), first_byte_delay=delay
    )


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    """One live server answering every request with the values it saw."""
    with replay_server() as live:
        live.respond_with(_respond)
        yield live


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[ApplicationContainer]:
    """An application whose scopes each bring their own key, model and base URL."""
    container = ApplicationContainer(settings=ExplicitSettings(workspace=tmp_path), environ={})
    await container.init_resources()  # type: ignore[misc]
    yield container
    await container.shutdown_resources()  # type: ignore[misc]


def _base_url(server: ReplayServer, provider: str, tenant: str) -> str:
    suffix = {"openai": "/v1", "anthropic": "", "gemini": "/v1beta"}[provider]
    return f"{server.url}/{tenant}{suffix}"


scopes = st.lists(
    st.tuples(
        st.sampled_from(PROVIDERS),
        st.from_regex(r"[a-z][a-z0-9-]{2,12}", fullmatch=True),
        st.from_regex(r"key-[A-Za-z0-9]{6,16}", fullmatch=True),
    ),
    min_size=2,
    max_size=12,
)


@settings(max_examples=15)
@given(chosen=scopes)
async def test_every_request_carries_exactly_its_own_scope_values(
    server: ReplayServer, app: ApplicationContainer, chosen: list[tuple[str, str, str]]
) -> None:
    """Random providers, models, keys and endpoints, run at once: nothing crosses scopes."""
    factory = app.runtime.scopes()

    async def one(index: int, provider: str, model: str, key: str) -> tuple[str, str]:
        tenant = f"t{index}"
        request = ScopeRequest.create(
            provider=provider,
            model=model,
            api_key=key,
            base_url=_base_url(server, provider, tenant),
        )
        chat: ChatSession = app.runtime.chat_session(context=factory.foreground(request))
        turn = await chat.send("who am I?")
        return turn.text, f"{tenant}|{key}|{model}"

    results = await asyncio.gather(*(one(i, *values) for i, values in enumerate(chosen)))
    for seen, expected in results:
        assert seen == expected
