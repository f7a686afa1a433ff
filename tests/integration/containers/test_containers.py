"""The containers: complete dependencies, a fresh scope per call, overrides for tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path

import pytest
from dependency_injector import errors, providers
from hypothesis import given
from hypothesis import strategies as st

from chatscope.adapters.providers.demo import DemoProvider
from chatscope.config.settings import ExplicitSettings, HttpSettings
from chatscope.containers import (
    ApplicationContainer,
    ModelProvidersContainer,
    StorageContainer,
    ToolsContainer,
)
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.testing import FunctionProvider, ScriptedProvider, ScriptedReply, build_test_app


def test_every_dependency_is_provided(tmp_path: Path) -> None:
    """The composed containers declare no dependency left unset."""
    app = ApplicationContainer(settings=ExplicitSettings(workspace=tmp_path), environ={})
    app.check_dependencies()


def test_each_scope_gets_fresh_history_tools_telemetry_and_adapter(tmp_path: Path) -> None:
    """Two scopes share no per-scope object; only the app-level tools and sink are shared."""
    app = build_test_app(workspace=tmp_path)
    scopes = app.runtime.scopes()
    first, second = scopes.foreground(), scopes.foreground()
    assert first.runtime_id != second.runtime_id
    assert first.history is not second.history
    assert first.tools is not second.tools
    assert first.telemetry is not second.telemetry
    assert first.provider.get_active_provider() is not second.provider.get_active_provider()
    assert isinstance(first.provider.get_active_provider(), DemoProvider)


def test_scope_request_overrides_settings_without_changing_them(tmp_path: Path) -> None:
    """A request for another provider/model builds that scope and leaves settings as they were."""
    app = build_test_app(workspace=tmp_path)
    settings = app.settings()
    context = app.runtime.scopes().foreground(
        ScopeRequest(provider="openai", model="gpt-x", base_url="http://127.0.0.1:9/v1")
    )
    assert (context.state.provider, context.state.model) == ("openai", "gpt-x")
    assert context.state.base_url == "http://127.0.0.1:9/v1"
    assert app.settings() is settings
    assert settings.provider == "demo"


async def test_a_provider_can_be_overridden_with_a_fake(tmp_path: Path) -> None:
    """Overriding one adapter provider routes that provider's scopes to the fake."""
    fake = ScriptedProvider([ScriptedReply(text="from the fake")], name="anthropic")
    app = build_test_app(fake, workspace=tmp_path)
    context = app.runtime.scopes().foreground()
    turn = await app.runtime.chat_session(context=context).send("hi")
    assert turn.text == "from the fake"
    assert fake.invocations[0].model == "claude-sonnet-4-5"


async def test_history_factory_can_be_overridden(tmp_path: Path) -> None:
    """Tests may swap the per-scope history store through the runtime container."""

    class CountingHistory:
        def __init__(self, *, session_id: str, provider: str, model: str) -> None:
            self.session_id = session_id
            self.label = (provider, model)
            self.turns = 0

        async def messages(self) -> tuple[()]:
            return ()

        async def append_turn(self, messages: object, usage: object = None) -> None:
            self.turns += 1

        async def token_count(self) -> int:
            return 0

        async def replace(self, messages: object) -> None:
            raise AssertionError("nothing compresses here")

    app = build_test_app(ScriptedProvider([ScriptedReply(text="ok")]), workspace=tmp_path)
    with app.runtime.history.override(providers.Factory(CountingHistory)):
        context = app.runtime.scopes().foreground()
        await app.runtime.chat_session(context=context).send("hi")
    assert isinstance(context.history, CountingHistory)
    assert context.history.turns == 1
    assert context.history.session_id == context.state.session_id
    assert context.history.label == (context.state.provider, context.state.model)


async def test_resources_start_and_stop(tmp_path: Path) -> None:
    """The shared connection pool opens on init and is closed on shutdown."""
    app = ApplicationContainer(settings=ExplicitSettings(workspace=tmp_path), environ={})
    await _awaited(app.init_resources())
    client = app.model_providers.http_client()
    assert client is app.model_providers.http_client()
    assert not client.is_closed
    await _awaited(app.shutdown_resources())
    assert client.is_closed


async def _awaited(result: Awaitable[None] | None) -> None:
    if result is not None:
        await result


def _answer_with_own_values(invocation: ModelInvocation) -> ScriptedReply:
    key = invocation.credentials.secret()
    return ScriptedReply(text=f"{invocation.runtime_id}|{invocation.model}|{key}")


async def _run_chats(app: ApplicationContainer, count: int) -> list[tuple[str, str, str, str]]:
    scopes = app.runtime.scopes()

    async def one(index: int) -> tuple[str, str, str, str]:
        request = ScopeRequest.create(model=f"model-{index}", api_key=f"sk-key-{index:04d}xyz")
        context = scopes.foreground(request)
        turn = await app.runtime.chat_session(context=context).send(f"prompt {index}")
        return turn.text, context.runtime_id, f"model-{index}", f"sk-key-{index:04d}xyz"

    return await asyncio.gather(*(one(index) for index in range(count)))


async def test_two_hundred_concurrent_chats_each_see_only_their_own_model_and_key(
    tmp_path: Path,
) -> None:
    """200 chats run at once; every model call carries exactly its own scope's values."""
    fake = FunctionProvider(_answer_with_own_values, name="openai")
    app = build_test_app(fake, workspace=tmp_path)
    results = await _run_chats(app, 200)
    assert len(fake.invocations) == 200
    for text, runtime_id, model, key in results:
        assert text == f"{runtime_id}|{model}|{key}"
    assert len({invocation.runtime_id for invocation in fake.invocations}) == 200


@given(
    scopes=st.lists(
        st.tuples(st.text(min_size=1, max_size=12), st.from_regex(r"[!-~]{8,20}", fullmatch=True)),
        min_size=2,
        max_size=25,
    ),
    delays=st.lists(st.integers(min_value=0, max_value=3), min_size=25, max_size=25),
)
async def test_no_value_crosses_scopes_under_any_interleaving(
    tmp_path: Path, scopes: list[tuple[str, str]], delays: list[int]
) -> None:
    """For random models, keys and scheduling, each call sees only its own scope's values."""

    async def respond(invocation: ModelInvocation) -> ScriptedReply:
        for _ in range(delays[len(fake.invocations) % len(delays)]):
            await asyncio.sleep(0)
        return _answer_with_own_values(invocation)

    fake = FunctionProvider(respond, name="gemini")
    app = build_test_app(fake, workspace=tmp_path)
    factory = app.runtime.scopes()

    async def one(model: str, key: str) -> tuple[str, str]:
        context = factory.foreground(ScopeRequest.create(model=model, api_key=key))
        turn = await app.runtime.chat_session(context=context).send("x")
        return turn.text, f"{context.runtime_id}|{model}|{key}"

    for seen, expected in await asyncio.gather(*(one(m, k) for m, k in scopes)):
        assert seen == expected


def test_each_chat_gets_its_own_compressor_around_the_one_summariser(tmp_path: Path) -> None:
    """Cooldowns are per chat; the stateless summariser and the settings are the application's."""
    app = build_test_app(workspace=tmp_path, compression={"failure_cooldown_turns": 7})
    scopes = app.runtime.scopes()
    first = app.runtime.chat_session(context=scopes.foreground())
    second = app.runtime.chat_session(context=scopes.foreground())
    compressors = [first._compressor, second._compressor]
    assert compressors[0] is not None
    assert compressors[1] is not None
    assert compressors[0] is not compressors[1]
    assert compressors[0]._summarise is compressors[1]._summarise is app.summariser()
    assert compressors[0]._settings.failure_cooldown_turns == 7


def test_each_concern_container_declares_its_inputs(tmp_path: Path) -> None:
    """Every inner container names what it needs: unset inputs fail, given inputs complete it."""
    for container in (ModelProvidersContainer(), StorageContainer(), ToolsContainer()):
        with pytest.raises(errors.Error, match="has undefined dependencies"):
            container.check_dependencies()
    ModelProvidersContainer(http=HttpSettings()).check_dependencies()
    StorageContainer(
        data_dir=tmp_path, database_url=None, history_backend="memory"
    ).check_dependencies()
    ToolsContainer(workspace=tmp_path).check_dependencies()


async def test_each_concern_container_works_alone_from_its_own_inputs(tmp_path: Path) -> None:
    """Providers, storage and tools are usable without the application around them."""
    models = ModelProvidersContainer(http=HttpSettings(max_connections=3))
    adapter = models.catalog().create("openai")
    assert adapter.name == "openai"
    assert adapter._client is models.http_client()  # type: ignore[attr-defined]
    storage = StorageContainer(data_dir=tmp_path, database_url=None, history_backend="memory")
    database = storage.database()
    assert database.url.database == str(tmp_path / "chatscope.db")
    await database.dispose()
    tools = ToolsContainer(workspace=tmp_path).workspace_toolkit().tools()
    (tmp_path / "note.txt").write_text("hello", encoding="utf-8")
    [read_file] = [tool for tool in tools if tool.declaration.name == "read_file"]
    assert "hello" in await read_file.run({"path": "note.txt"})
