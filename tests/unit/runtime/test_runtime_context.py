"""Runtime state and context: frozen, complete or refused, ephemerals, read-only provider view."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.config.ephemeral import EphemeralSettings
from chatscope.errors import MissingProviderRuntimeError, UnknownProviderError
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.runtime.auth import AuthSpec
from chatscope.services.runtime.context import ProviderCatalog, create_agent_runtime_context
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.services.runtime.state import AgentRuntimeState
from chatscope.services.tools.registry import ToolRegistry
from chatscope.testing.fakes import ScriptedProvider

PARTS = ("state", "history", "telemetry_sink", "providers", "tools", "auth")


def _parts(
    provider: str = "gemini", model: str = "gemini-2.0-flash", session_id: str | None = None
) -> dict[str, Any]:
    fake = ScriptedProvider([], name=provider)
    return {
        "state": AgentRuntimeState.create(provider=provider, model=model, session_id=session_id),
        "history": InMemoryHistory(),
        "telemetry_sink": RecordingSink(),
        "providers": ProviderCatalog.of(fake),
        "tools": ToolRegistry(),
        "auth": AuthSpec(provider, required=False),
    }


def test_context_is_frozen_and_keeps_the_state_reference() -> None:
    """The factory returns an immutable context holding the very state it was given."""
    parts = _parts()
    context = create_agent_runtime_context(**parts)
    assert context.state is parts["state"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.state = parts["state"]  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.state.model = "other"  # type: ignore[misc]


def test_ephemerals_default_to_the_seed_values() -> None:
    """With no snapshot given, the seed defaults apply (0.6 x 60000)."""
    context = create_agent_runtime_context(**_parts())
    assert context.get_ephemeral_setting("compression-threshold") == 0.6
    assert context.get_ephemeral_setting("context-limit") == 60000


def test_ephemerals_come_from_the_given_snapshot() -> None:
    """Every ephemeral getter returns the supplied snapshot's value."""
    ephemerals = EphemeralSettings.model_validate(
        {
            "compression-threshold": 0.75,
            "compression-preserve-threshold": 0.25,
            "context-limit": 80000,
            "compression-min-age": 5,
            "maxOutputTokens": 32768,
        }
    )
    context = create_agent_runtime_context(**_parts(), ephemerals=ephemerals)
    assert context.get_ephemeral_setting("compression-threshold") == 0.75
    assert context.get_ephemeral_setting("compression-preserve-threshold") == 0.25
    assert context.get_ephemeral_setting("context-limit") == 80000
    assert context.get_ephemeral_setting("compression-min-age") == 5
    assert context.get_ephemeral_setting("maxOutputTokens") == 32768


def test_provider_view_is_read_only() -> None:
    """There is no way to set the active provider through a context (REQ-STAT6-001.3)."""
    context = create_agent_runtime_context(**_parts())
    assert not hasattr(context.provider, "set_active_provider")
    with pytest.raises(AttributeError):
        context.provider._provider = ScriptedProvider([])  # type: ignore[misc]
    assert context.provider.get_active_provider().name == "gemini"


def test_provider_view_returns_the_catalog_adapter() -> None:
    """The view hands out exactly the adapter the catalog built for the state's provider."""
    fake = ScriptedProvider([], name="openai")
    parts = _parts(provider="openai") | {"providers": ProviderCatalog.of(fake)}
    assert create_agent_runtime_context(**parts).provider.get_active_provider() is fake


def test_unknown_provider_is_refused_with_the_known_names() -> None:
    """A state naming a provider the catalog lacks fails instead of falling back."""
    parts = _parts(provider="anthropic") | {"providers": ProviderCatalog.of(ScriptedProvider([]))}
    with pytest.raises(UnknownProviderError, match="known providers: demo"):
        create_agent_runtime_context(**parts)


def test_state_update_returns_a_new_state() -> None:
    """`with_updates` leaves the original untouched and validates the copy."""
    state = AgentRuntimeState.create(provider="gemini", model="a")
    updated = state.with_updates(model="b")
    assert (state.model, updated.model) == ("a", "b")
    assert updated.runtime_id == state.runtime_id
    with pytest.raises(MissingProviderRuntimeError, match="model"):
        state.with_updates(model="")


def test_model_params_are_deeply_frozen() -> None:
    """Nested model params cannot be changed after the state is built."""
    state = AgentRuntimeState.create(
        provider="gemini", model="m", model_params={"thinking": {"budget": 10}, "stop": ["x"]}
    )
    with pytest.raises(TypeError):
        state.model_params["thinking"]["budget"] = 11
    assert state.model_params["stop"] == ("x",)


@given(missing=st.sets(st.sampled_from(PARTS), min_size=1))
def test_missing_parts_are_all_named(missing: set[str]) -> None:
    """Whatever subset of parts is absent, the error names exactly that subset (REQ-SP4-001)."""
    parts = {name: value for name, value in _parts().items() if name not in missing}
    with pytest.raises(MissingProviderRuntimeError) as caught:
        create_agent_runtime_context(**parts)
    assert set(caught.value.missing) == missing


@given(
    model=st.text(min_size=5),
    provider=st.sampled_from(["gemini", "openai", "anthropic"]),
    session_id=st.uuids().map(str),
)
def test_every_context_is_frozen_with_its_own_values(
    model: str, provider: str, session_id: str
) -> None:
    """For any state, the context and its state are frozen and carry the state's values."""
    context = create_agent_runtime_context(
        **_parts(provider=provider, model=model, session_id=session_id)
    )
    assert dataclasses.is_dataclass(context)
    assert context.state.model == model
    assert context.state.session_id == session_id
    for target, field in ((context, "history"), (context.state, "provider")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(target, field, None)


@given(count=st.integers(min_value=2, max_value=50))
def test_runtime_ids_are_unique(count: int) -> None:
    """No two contexts ever share a runtime id."""
    ids = [create_agent_runtime_context(**_parts()).runtime_id for _ in range(count)]
    assert len(set(ids)) == count


@given(
    provider=st.text(min_size=3, max_size=20),
    model=st.text(min_size=5, max_size=40),
    session_id=st.uuids().map(str),
)
def test_telemetry_always_carries_the_scope_metadata(
    provider: str, model: str, session_id: str
) -> None:
    """Every event is enriched with provider, model, session and runtime id (REQ-STAT6-002.3)."""
    sink = RecordingSink()
    parts = _parts(provider=provider, model=model, session_id=session_id)
    context = create_agent_runtime_context(**parts | {"telemetry_sink": sink})
    context.telemetry.api_request(message_count=1, tool_count=0)
    [(event, fields)] = sink.events
    assert event == "api_request"
    assert (fields["provider"], fields["model"]) == (provider, model)
    assert (fields["session_id"], fields["runtime_id"]) == (session_id, context.runtime_id)
    assert fields["timestamp"]


def test_state_requires_ids_provider_and_model() -> None:
    """A state with an empty required field names every one that is missing."""
    with pytest.raises(MissingProviderRuntimeError) as caught:
        AgentRuntimeState(runtime_id="r", session_id="", provider="", model="")
    assert caught.value.missing == ("session_id", "provider", "model")


@given(
    names=st.lists(
        st.sampled_from(["demo", "openai", "anthropic", "gemini"]), min_size=1, unique=True
    ),
    calls=st.lists(st.integers(0, 3), max_size=12),
)
def test_a_catalog_of_factories_calls_the_named_factory_each_time(
    names: list[str], calls: list[int]
) -> None:
    """Every `create` calls that name's factory anew (a fresh adapter per scope), in the
    factories' order of names; a name without a factory is refused before any is called."""
    made: list[str] = []

    def factory(name: str) -> Any:
        def build() -> ScriptedProvider:
            made.append(name)
            return ScriptedProvider([], name=name)

        return build

    catalog = ProviderCatalog.of_factories({name: factory(name) for name in names})
    assert catalog.names == tuple(names)
    wanted = [names[call % len(names)] for call in calls]
    adapters = [catalog.create(name) for name in wanted]
    assert made == wanted
    assert [adapter.name for adapter in adapters] == wanted
    assert len({id(adapter) for adapter in adapters}) == len(adapters)
    with pytest.raises(UnknownProviderError):
        catalog.create("openai-responses")
    assert made == wanted
