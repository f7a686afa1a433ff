"""Runtime state and context details the mutation run showed unguarded.

Each test pins one behaviour of `chatscope.services.runtime.context` that a changed line could break
without any other test noticing: model params frozen however the state is built, optional
state fields passed through, error details, the system prompt, and which history a scope opens.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.errors import MissingProviderRuntimeError, UnknownProviderError
from chatscope.services.frozen import FrozenDict, thaw
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.runtime.auth import AuthSpec
from chatscope.services.runtime.context import (
    ContextAssembler,
    ProviderCatalog,
    create_agent_runtime_context,
)
from chatscope.services.runtime.invocation import AuthType
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.services.runtime.state import AgentRuntimeState
from chatscope.services.tools.registry import ToolRegistry
from chatscope.services.tools.toolset import ToolSelection
from chatscope.testing.fakes import ScriptedProvider

PARTS = ("state", "history", "telemetry_sink", "providers", "tools", "auth")

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
ids = st.text(alphabet="0123456789abcdef", min_size=1, max_size=32)


def _parts(provider: str = "gemini") -> dict[str, Any]:
    return {
        "state": AgentRuntimeState.create(provider=provider, model="m"),
        "history": InMemoryHistory(),
        "telemetry_sink": RecordingSink(),
        "providers": ProviderCatalog.of(ScriptedProvider([], name=provider)),
        "tools": ToolRegistry(),
        "auth": AuthSpec(provider, required=False),
    }


def _is_deeply_frozen(value: Any) -> bool:
    if isinstance(value, dict | list | set):
        return False
    if isinstance(value, FrozenDict):
        return all(_is_deeply_frozen(item) for item in value.values())
    if isinstance(value, tuple):
        return all(_is_deeply_frozen(item) for item in value)
    return True


@given(params=json_objects)
def test_plain_dict_params_given_to_the_constructor_are_deeply_frozen(
    params: dict[str, Any],
) -> None:
    """Built directly (not via `create`), a state still freezes its params, equal in content."""
    original = json.loads(json.dumps(params))
    plain: Any = params  # the annotation says FrozenDict; a plain dict must be frozen anyway
    state = AgentRuntimeState(
        runtime_id="r", session_id="s", provider="p", model="m", model_params=plain
    )
    assert isinstance(state.model_params, FrozenDict)
    assert _is_deeply_frozen(state.model_params)
    assert thaw(state.model_params) == original


@given(params=json_objects, extra=st.text(min_size=1, max_size=5))
def test_changing_the_callers_dict_afterwards_does_not_reach_the_state(
    params: dict[str, Any], extra: str
) -> None:
    """The state keeps its own frozen copy: the caller's dict stays the caller's."""
    plain: Any = params
    state = AgentRuntimeState(
        runtime_id="r", session_id="s", provider="p", model="m", model_params=plain
    )
    before = thaw(state.model_params)
    params[extra + "-added"] = ["new"]
    assert thaw(state.model_params) == before


def test_frozen_params_are_kept_as_given() -> None:
    """A `FrozenDict` handed in is already frozen and is kept, not copied."""
    params = FrozenDict({"temperature": 0.2})
    state = AgentRuntimeState(
        runtime_id="r", session_id="s", provider="p", model="m", model_params=params
    )
    assert state.model_params is params


@given(
    base_url=st.none() | st.just("http://127.0.0.1:9/v1"),
    auth_type=st.sampled_from(list(AuthType)),
    parent=st.none() | ids,
    name=st.none() | st.text(min_size=1, max_size=10),
)
def test_create_passes_every_optional_field_through(
    base_url: str | None, auth_type: AuthType, parent: str | None, name: str | None
) -> None:
    """`create` keeps base URL, auth type, parent runtime id and subagent name as given."""
    state = AgentRuntimeState.create(
        provider="p",
        model="m",
        base_url=base_url,
        auth_type=auth_type,
        parent_runtime_id=parent,
        subagent_name=name,
    )
    assert (state.base_url, state.auth_type) == (base_url, auth_type)
    assert (state.parent_runtime_id, state.subagent_name) == (parent, name)


@given(
    runtime_id=ids, empty=st.sets(st.sampled_from(["session_id", "provider", "model"]), min_size=1)
)
def test_an_incomplete_state_names_its_runtime_id(runtime_id: str, empty: set[str]) -> None:
    """The refusal says which runtime it concerns, and which fields are empty."""
    fields: dict[str, Any] = {"session_id": "s", "provider": "p", "model": "m"}
    fields |= dict.fromkeys(empty, "")
    with pytest.raises(MissingProviderRuntimeError) as caught:
        AgentRuntimeState(runtime_id=runtime_id, **fields)
    assert caught.value.runtime_id == runtime_id
    assert f"runtime {runtime_id}" in str(caught.value)
    assert set(caught.value.missing) == empty


def test_a_state_without_runtime_id_reports_none_not_an_empty_id() -> None:
    """An empty runtime id is itself missing; the error carries None, not ''."""
    with pytest.raises(MissingProviderRuntimeError) as caught:
        AgentRuntimeState(runtime_id="", session_id="s", provider="p", model="m")
    assert caught.value.runtime_id is None
    assert caught.value.missing == ("runtime_id",)


@given(missing=st.sets(st.sampled_from(PARTS[1:]), min_size=1))
def test_missing_parts_error_names_the_runtime_of_the_given_state(missing: set[str]) -> None:
    """With a state present, the missing-parts error carries that state's runtime id."""
    parts = _parts()
    state = parts["state"]
    with pytest.raises(MissingProviderRuntimeError) as caught:
        create_agent_runtime_context(**{k: v for k, v in parts.items() if k not in missing})
    assert caught.value.runtime_id == state.runtime_id
    assert state.runtime_id in str(caught.value)


def test_missing_state_error_has_no_runtime_id() -> None:
    """Without a state there is no runtime to name."""
    parts = {k: v for k, v in _parts().items() if k != "state"}
    with pytest.raises(MissingProviderRuntimeError) as caught:
        create_agent_runtime_context(**parts)
    assert caught.value.runtime_id is None
    assert caught.value.missing == ("state",)


@given(prompt=st.none() | st.text(max_size=40))
def test_the_system_prompt_reaches_the_context(prompt: str | None) -> None:
    """A scope's system prompt is the one it was built with, None included."""
    context = create_agent_runtime_context(**_parts(), system_prompt=prompt)
    assert context.system_prompt == prompt


class _RecordingOpener:
    """A history opener that remembers the sessions it opened, and for which model."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.labels: list[tuple[str, str]] = []
        self.owners: list[str | None] = []
        self.histories: list[InMemoryHistory] = []

    def __call__(
        self, *, session_id: str, provider: str, model: str, owner: str | None = None
    ) -> InMemoryHistory:
        self.opened.append(session_id)
        self.labels.append((provider, model))
        self.owners.append(owner)
        history = InMemoryHistory()
        self.histories.append(history)
        return history


@given(parent=st.none() | ids, session_id=ids, owner=st.none() | ids)
def test_only_a_subagent_opens_its_own_history(
    parent: str | None, session_id: str, owner: str | None
) -> None:
    """A foreground scope opens its session's history, as its owner's; a subagent always its
    own store, whoever owns its parent's session."""
    foreground, subagent = _RecordingOpener(), _RecordingOpener()
    parts = _parts()
    state = parts.pop("state").with_updates(session_id=session_id, parent_runtime_id=parent)
    parts.pop("history")
    tools = parts.pop("tools")
    assemble = ContextAssembler(
        open_history=foreground,
        open_subagent_history=subagent,
        build_tools=lambda **_: tools,
        telemetry_sink=parts.pop("telemetry_sink"),
        providers=parts.pop("providers"),
    )
    context = assemble(state=state, tool_selection=ToolSelection(), owner=owner, **parts)
    used, unused = (subagent, foreground) if parent else (foreground, subagent)
    assert used.opened == [session_id]
    assert used.labels == [(state.provider, state.model)]
    assert used.owners == [None if parent else owner]
    assert unused.opened == []
    assert context.history is used.histories[0]


@given(parent=st.none() | ids, owner=st.none() | ids)
def test_a_history_the_caller_opened_is_used_as_it_is(
    parent: str | None, owner: str | None
) -> None:
    """Given a history, the scope uses it and opens nothing."""
    opener = _RecordingOpener()
    parts = _parts()
    state = parts.pop("state").with_updates(parent_runtime_id=parent)
    given_history = parts.pop("history")
    tools = parts.pop("tools")
    assemble = ContextAssembler(
        open_history=opener,
        open_subagent_history=opener,
        build_tools=lambda **_: tools,
        telemetry_sink=parts.pop("telemetry_sink"),
        providers=parts.pop("providers"),
    )
    context = assemble(
        state=state, tool_selection=ToolSelection(), owner=owner, history=given_history, **parts
    )
    assert context.history is given_history
    assert opener.opened == []


@given(name=st.text(min_size=1, max_size=12).filter(lambda name: name != "gemini"))
def test_unknown_provider_error_names_the_requested_provider(name: str) -> None:
    """The catalog's refusal says which provider was asked for and which exist."""
    catalog = ProviderCatalog.of(ScriptedProvider([], name="gemini"))
    with pytest.raises(UnknownProviderError) as caught:
        catalog.create(name)
    assert caught.value.name == name
    assert caught.value.known == ("gemini",)
