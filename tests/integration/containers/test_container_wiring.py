"""The containers' wiring: who lives how long, and which setting reaches which object.

`docs/architecture.md` ("What lives how long") is the contract: application-wide objects are
one object for every scope, per-scope objects are new for each scope, and every setting that
a container passes on arrives where it is used. A wrong provider type (`Factory` for
`Singleton` or back), a dropped argument or two swapped ones breaks one of these tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from hypothesis import given, settings
from hypothesis import strategies as st

from chatscope import tool
from chatscope.adapters.providers.anthropic.messages import AnthropicProvider
from chatscope.adapters.providers.demo import DemoProvider
from chatscope.adapters.providers.gemini import GeminiProvider
from chatscope.adapters.providers.http_client import SHARD_CONNECTIONS, ShardedTransport
from chatscope.adapters.providers.openai.chat import OpenAIChatProvider
from chatscope.adapters.providers.openai.responses import OpenAIResponsesProvider
from chatscope.config.settings import PROVIDER_NAMES, ExplicitSettings
from chatscope.containers import ApplicationContainer
from chatscope.errors import ServerError
from chatscope.services.chat.retry import RetryPolicy
from chatscope.services.chat.session import ChatSession
from chatscope.services.events import ProviderEvent
from chatscope.services.history.compression import HistoryCompressor
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.testing import FunctionProvider, ScriptedProvider, ScriptedReply, build_test_app

ADAPTER_CLASSES = {
    "demo": DemoProvider,
    "openai": OpenAIChatProvider,
    "openai-responses": OpenAIResponsesProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
}


def _app(tmp_path: Path, **settings: Any) -> ApplicationContainer:
    settings.setdefault("history_backend", "memory")
    return ApplicationContainer(
        settings=ExplicitSettings(workspace=tmp_path, **settings), environ={}
    )


async def _awaited(result: Awaitable[None] | None) -> None:
    if result is not None:
        await result


# --- what lives how long ----------------------------------------------------------------------


def test_the_adapter_table_is_the_documented_one(tmp_path: Path) -> None:
    """Every provider name builds its own adapter class, reporting that very name."""
    catalog = _app(tmp_path).model_providers.catalog()
    assert set(catalog.names) == set(PROVIDER_NAMES) == set(ADAPTER_CLASSES)
    for name, adapter_class in ADAPTER_CLASSES.items():
        adapter = catalog.create(name)
        assert adapter.name == name
        assert type(adapter) is adapter_class


@pytest.mark.parametrize("name", sorted(ADAPTER_CLASSES))
def test_every_scope_gets_its_own_adapter_object(tmp_path: Path, name: str) -> None:
    """Two scopes on the same provider never share an adapter instance (REQ-SP4-003)."""
    scopes = _app(tmp_path).runtime.scopes()
    first = scopes.foreground(ScopeRequest(provider=name)).provider.get_active_provider()
    second = scopes.foreground(ScopeRequest(provider=name)).provider.get_active_provider()
    assert first is not second
    assert type(first) is type(second) is ADAPTER_CLASSES[name]


def test_http_adapters_share_the_one_connection_pool(tmp_path: Path) -> None:
    """All HTTP adapters of all scopes hold the application's single client, nothing else."""
    app = _app(tmp_path)
    client = app.model_providers.http_client()
    scopes = app.runtime.scopes()
    for name in ("openai", "openai-responses", "anthropic", "gemini"):
        for _ in range(2):
            adapter = scopes.foreground(ScopeRequest(provider=name)).provider.get_active_provider()
            assert adapter._client is client


def test_application_wide_services_are_one_object_each(tmp_path: Path) -> None:
    """Resolver, policy, profiles, sink, tools and catalog are built once per application."""
    app = _app(tmp_path)
    for provider in (
        app.auth_resolver,
        app.retry_policy,
        app.profile_catalog,
        app.subagent_profiles,
        app.telemetry_sink,
        app.tools.workspace_toolkit,
        app.tools.policy,
        app.tools.mcp_servers,
        app.model_providers.catalog,
        app.model_providers.http_client,
        app.tools.scope_tools,
        app.runtime.context,
        app.runtime.scopes,
        app.runtime.chat_rules,
        app.runtime.compression,
    ):
        assert provider() is provider()


def test_scopes_share_the_sink_but_never_a_tool_object(tmp_path: Path) -> None:
    """Each scope has its own telemetry binding over the shared sink, and tools of its own."""
    app = _app(tmp_path)
    scopes = app.runtime.scopes()
    first, second = scopes.foreground(), scopes.foreground()
    sink = app.telemetry_sink()
    assert first.telemetry is not second.telemetry
    assert first.telemetry._sink is second.telemetry._sink is sink
    assert first.tools is not second.tools
    names = app.tools.workspace_toolkit().names()
    assert names == first.tools.names() == second.tools.names()
    for name in names:
        mine, theirs = first.tools.get(name), second.tools.get(name)
        assert mine is not None
        assert theirs is not None
        assert mine is not theirs
        assert mine.declaration is theirs.declaration  # immutable, so built once


def test_chat_sessions_are_per_scope_over_shared_services(tmp_path: Path) -> None:
    """A chat session is new for each scope; its resolver and policy are the application's."""
    app = _app(tmp_path)
    scopes = app.runtime.scopes()
    first = app.runtime.chat_session(context=scopes.foreground())
    second = app.runtime.chat_session(context=scopes.foreground())
    assert first is not second
    assert first.context is not second.context
    for session in (first, second):
        assert session._auth is app.auth_resolver()
        assert session._retry is app.retry_policy()


def test_subagent_scopes_get_their_own_history(tmp_path: Path) -> None:
    """Children of one parent never share a history object with it or with each other."""
    scopes = _app(tmp_path).runtime.scopes()
    parent = scopes.foreground()
    children = [scopes.subagent(ScopeRequest(subagent_name=f"s{i}"), parent) for i in range(3)]
    histories = {id(parent.history)} | {id(child.history) for child in children}
    assert len(histories) == 4


# --- which setting reaches which object -------------------------------------------------------

retry_settings = st.fixed_dictionaries(
    {
        "max_attempts": st.integers(1, 20),
        "initial_delay": st.floats(0.5, 50.0),
        "multiplier": st.floats(1.0, 5.0),
        "max_delay": st.floats(60.0, 600.0),
        "jitter": st.floats(0.0, 0.9),
        "max_server_delay": st.floats(1.0, 1000.0),
    }
)


@settings(max_examples=15)
@given(retry=retry_settings, first_byte=st.floats(1.0, 500.0))
def test_the_retry_policy_is_the_configured_one(
    tmp_path: Path, retry: dict[str, Any], first_byte: float
) -> None:
    """Each retry setting, and the first-byte timeout, lands in its own policy field."""
    app = _app(tmp_path, retry=retry, http={"first_byte_timeout": first_byte})
    assert app.retry_policy() == RetryPolicy(**retry, first_byte_timeout=first_byte)


@settings(max_examples=15)
@given(
    connect=st.floats(0.5, 100.0),
    idle=st.floats(0.5, 100.0),
    connections=st.integers(1, 500),
)
def test_the_connection_pool_uses_the_http_settings(
    tmp_path: Path, connect: float, idle: float, connections: int
) -> None:
    """The shared client's timeouts and pool size are the configured ones."""
    http = {"connect_timeout": connect, "idle_stream_timeout": idle, "max_connections": connections}
    client = _app(tmp_path, http=http).model_providers.http_client()
    assert client.timeout == httpx.Timeout(connect=connect, read=idle, write=connect, pool=connect)
    transport = client._transport
    assert isinstance(transport, ShardedTransport)
    assert sum(transport.shard_limits) == connections
    assert max(transport.shard_limits) <= SHARD_CONNECTIONS


class _AlwaysFailing:
    """A provider whose every attempt fails before its first event, counting the attempts."""

    name = "openai"

    def __init__(self) -> None:
        self.calls = 0

    async def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
        self.calls += 1
        raise ServerError("down", provider="openai", status=503)
        yield  # pragma: no cover - makes this an async generator


@pytest.mark.parametrize("attempts", [1, 3])
async def test_chats_retry_as_often_as_configured(tmp_path: Path, attempts: int) -> None:
    """A chat's model call is tried exactly `retry.max_attempts` times."""
    fake = _AlwaysFailing()
    retry = {"max_attempts": attempts, "initial_delay": 0.001, "max_delay": 0.001}
    app = build_test_app(fake, workspace=tmp_path, retry=retry)
    chat = app.runtime.chat_session(context=app.runtime.scopes().foreground())
    with pytest.raises(ServerError):
        await chat.send("hi")
    assert fake.calls == attempts


@pytest.mark.parametrize("max_turns", [1, 3])
async def test_chats_stop_after_the_configured_number_of_model_calls(
    tmp_path: Path, max_turns: int
) -> None:
    """A model that keeps asking for tools is called `max_turns` times, no more."""
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    fake = FunctionProvider(
        lambda invocation: ScriptedReply(tool_calls=[("list_directory", {"path": "."})]),
        name="gemini",
    )
    app = build_test_app(fake, workspace=tmp_path, max_turns=max_turns)
    chat = app.runtime.chat_session(context=app.runtime.scopes().foreground())
    await chat.send("look around")
    assert len(fake.invocations) == max_turns


async def test_keys_come_from_the_applications_environment_snapshot(tmp_path: Path) -> None:
    """The `environ` given to the application is where a scope's standard key is found."""
    fake = FunctionProvider(lambda invocation: ScriptedReply(text="ok"), name="anthropic")
    app = build_test_app(fake, workspace=tmp_path, environ={"ANTHROPIC_API_KEY": "env-key-123"})
    chat = app.runtime.chat_session(context=app.runtime.scopes().foreground())
    await chat.send("hi")
    assert fake.invocations[0].credentials.secret() == "env-key-123"


@pytest.mark.parametrize(("level", "shown"), [("info", True), ("warning", False)])
async def test_logging_follows_the_configured_level_and_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], level: str, shown: bool
) -> None:
    """After start-up, telemetry lines go to stderr as JSON, filtered by the configured level."""
    fake = FunctionProvider(lambda invocation: ScriptedReply(text="ok"), name="gemini")
    app = build_test_app(fake, workspace=tmp_path, log_level=level, log_format="json")
    await _awaited(app.init_resources())
    try:
        chat = app.runtime.chat_session(context=app.runtime.scopes().foreground())
        await chat.send("hi")
    finally:
        await _awaited(app.shutdown_resources())
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    requests = [line for line in lines if line.get("event") == "api_request"]
    assert bool(requests) is shown
    assert all(line["level"] == "info" for line in requests)


async def test_console_format_is_honoured_off_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`log_format="console"` renders console lines even where "auto" would choose JSON."""
    fake = FunctionProvider(lambda invocation: ScriptedReply(text="ok"), name="gemini")
    app = build_test_app(fake, workspace=tmp_path, log_level="info", log_format="console")
    await _awaited(app.init_resources())
    try:
        chat = app.runtime.chat_session(context=app.runtime.scopes().foreground())
        await chat.send("hi")
    finally:
        await _awaited(app.shutdown_resources())
    [line] = [line for line in capsys.readouterr().err.splitlines() if "api_request" in line]
    assert not line.lstrip().startswith("{")
    assert "info" in re.sub(r"\x1b\[[0-9;]*m", "", line)


def test_a_scope_lists_the_workspace_tools_before_the_applications(tmp_path: Path) -> None:
    """The registry's order is the workspace's tools, then the application's own."""

    @tool
    def zeta_tool(text: str) -> str:
        """Echo the text."""
        return text

    app = _app(tmp_path)
    app.tools.application_tools.override(providers.List(providers.Object(zeta_tool)))
    names = app.runtime.scopes().foreground().tools.names()
    workspace = tuple(app.tools.workspace_toolkit().names())
    assert names[: len(workspace)] == workspace
    assert "zeta_tool" in names[len(workspace) :]


# --- overriding a per-scope provider after the first scope ------------------------------------

PER_SCOPE_PARTS = ("history", "compressor", "application_tools", "adapter")


class _MarkedHistory(InMemoryHistory):
    """An override's history."""

    __slots__ = ()


class _MarkedCompressor(HistoryCompressor):
    """An override's compressor."""

    __slots__ = ()


@tool
def override_tool(text: str) -> str:
    """Echo the text."""
    return text


def _override(app: ApplicationContainer, part: str) -> None:
    if part == "history":
        app.runtime.history.override(providers.Factory(_MarkedHistory))
    elif part == "compressor":
        summariser = app.summariser()
        app.runtime.compressor.override(providers.Factory(_MarkedCompressor, summariser))
    elif part == "application_tools":
        app.tools.application_tools.override(providers.List(providers.Object(override_tool)))
    else:
        app.model_providers.demo.override(providers.Factory(ScriptedProvider, [], name="demo"))


def _parts_overridden(chat: ChatSession) -> set[str]:
    context = chat.context
    found = {
        "history": isinstance(context.history, _MarkedHistory),
        "compressor": isinstance(chat._compressor, _MarkedCompressor),
        "application_tools": "override_tool" in context.tools.names(),
        "adapter": isinstance(context.provider.get_active_provider(), ScriptedProvider),
    }
    return {part for part, overridden in found.items() if overridden}


@settings(max_examples=20)
@given(chosen=st.sets(st.sampled_from(PER_SCOPE_PARTS)))
def test_a_per_scope_provider_overridden_after_a_chat_applies_from_the_next_scope(
    tmp_path: Path, chosen: set[str]
) -> None:
    """History, compressor, the application's tools and the model adapter are made for each
    scope by their providers: overridden once chats exist, the next scope gets exactly the
    overridden ones, and the chat built before keeps what it had."""
    app = _app(tmp_path)
    before = app.runtime.chat_session(context=app.runtime.scopes().foreground())
    for part in chosen:
        _override(app, part)
    after = app.runtime.chat_session(context=app.runtime.scopes().foreground())
    assert _parts_overridden(after) == chosen
    assert _parts_overridden(before) == set()


@settings(max_examples=10)
@given(configured=st.integers(1, 3), own=st.none() | st.integers(1, 3))
async def test_a_chat_given_its_own_turn_limit_stops_there(
    tmp_path: Path, configured: int, own: int | None
) -> None:
    """`chat_session(max_turns=...)` is that chat's limit; without it, the settings' one."""
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    fake = FunctionProvider(
        lambda invocation: ScriptedReply(tool_calls=[("list_directory", {"path": "."})]),
        name="gemini",
    )
    app = build_test_app(fake, workspace=tmp_path, max_turns=configured)
    options = {} if own is None else {"max_turns": own}
    chat = app.runtime.chat_session(context=app.runtime.scopes().foreground(), **options)
    await chat.send("look around")
    assert len(fake.invocations) == (configured if own is None else own)
