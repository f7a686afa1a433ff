"""SubAgentScope (REQ-STAT6-003): isolated scopes that never touch the parent."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.services.messages import Message
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.services.runtime.scopes import ScopeFactory, ScopeRequest
from chatscope.services.runtime.state import AgentRuntimeState
from chatscope.services.subagents.profile import SubagentProfile, SubAgentScope
from chatscope.testing.fakes import ScriptedProvider, ScriptedReply
from tests.support.scopes import make_chat, make_scope_factory

FOREGROUND_MODEL = "gemini-2.0-flash-exp"
SUBAGENT_MODEL = "gemini-2.0-flash-thinking-exp"


def _factory(tmp_path: Path, sink: RecordingSink | None = None) -> ScopeFactory:
    providers = [
        ScriptedProvider([ScriptedReply(text=f"{name} reply")] * 5, name=name)
        for name in ("gemini", "openai")
    ]
    return make_scope_factory(
        *providers,
        sink=sink or RecordingSink(),
        workspace=tmp_path,
        provider="gemini",
        model=FOREGROUND_MODEL,
        providers={"gemini": {"api_key": "g-key", "auth_required": False}},
    )


def _profile(**options: object) -> SubagentProfile:
    options.setdefault("provider", "gemini")
    options.setdefault("model", SUBAGENT_MODEL)
    return SubagentProfile.create(name="reviewer", **options)  # type: ignore[arg-type]


def test_subagent_gets_its_own_runtime_with_the_profile_model(tmp_path: Path) -> None:
    """The subagent runs the profile's model under a new runtime id linked to its parent."""
    scopes = _factory(tmp_path)
    parent = scopes.foreground()
    scope = SubAgentScope.create("reviewer", _profile(), parent, scopes=scopes)
    state = scope.runtime_context.state
    assert state.model == SUBAGENT_MODEL
    assert state.runtime_id != parent.runtime_id
    assert state.parent_runtime_id == parent.runtime_id
    assert state.subagent_name == "reviewer"
    assert parent.state.model == FOREGROUND_MODEL


def test_subagent_creation_never_changes_the_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creating a subagent calls no state mutator on the parent (regression guard)."""
    scopes = _factory(tmp_path)
    parent = scopes.foreground()
    snapshot = (parent.state, parent.ephemerals, parent.auth, parent.system_prompt)

    def forbidden(self: AgentRuntimeState, **changes: object) -> AgentRuntimeState:
        raise AssertionError("REGRESSION: parent state updated in the subagent path")

    monkeypatch.setattr(AgentRuntimeState, "with_updates", forbidden)
    SubAgentScope.create("sub", _profile(provider="openai", model="gpt-4"), parent, scopes=scopes)
    assert (parent.state, parent.ephemerals, parent.auth, parent.system_prompt) == snapshot


def test_subagent_may_use_another_provider(tmp_path: Path) -> None:
    """A profile on another provider gets that provider; the parent keeps its own."""
    scopes = _factory(tmp_path)
    parent = scopes.foreground()
    scope = SubAgentScope.create(
        "sub", _profile(provider="openai", model="gpt-4"), parent, scopes=scopes
    )
    assert scope.runtime_context.state.provider == "openai"
    assert scope.runtime_context.provider.name == "openai"
    assert parent.state.provider == parent.provider.name == "gemini"


async def test_histories_are_isolated(tmp_path: Path) -> None:
    """Foreground and subagents each own a history; writing one leaves the others empty."""
    scopes = _factory(tmp_path)
    parent = scopes.foreground()
    a = SubAgentScope.create("a", _profile(), parent, scopes=scopes).runtime_context
    b = SubAgentScope.create("b", _profile(), parent, scopes=scopes).runtime_context
    assert len({id(parent.history), id(a.history), id(b.history)}) == 3
    await a.history.append_turn([Message.user("subagent message")])
    await parent.history.append_turn([Message.user("foreground message")])
    assert [m.text for m in await parent.history.messages()] == ["foreground message"]
    assert [m.text for m in await a.history.messages()] == ["subagent message"]
    assert await b.history.messages() == ()


async def test_concurrent_foreground_and_subagent_keep_their_models(tmp_path: Path) -> None:
    """Running both chats at once leaves each scope with its own model and telemetry ids."""
    sink = RecordingSink()
    scopes = _factory(tmp_path, sink)
    parent = scopes.foreground()
    child = SubAgentScope.create("sub", _profile(), parent, scopes=scopes).runtime_context
    await asyncio.gather(make_chat(parent).send("fg query"), make_chat(child).send("sub query"))
    assert (parent.state.model, child.state.model) == (FOREGROUND_MODEL, SUBAGENT_MODEL)
    by_runtime = {fields["runtime_id"]: fields for _, fields in sink.events}
    assert by_runtime[parent.runtime_id]["model"] == FOREGROUND_MODEL
    assert by_runtime[child.runtime_id]["model"] == SUBAGENT_MODEL
    assert by_runtime[child.runtime_id]["parent_runtime_id"] == parent.runtime_id
    assert by_runtime[child.runtime_id]["subagent_name"] == "sub"


def test_profile_ephemeral_overrides_do_not_reach_the_parent(tmp_path: Path) -> None:
    """A profile's ephemeral overrides apply to the subagent only."""
    scopes = _factory(tmp_path)
    parent = scopes.foreground()
    profile = _profile(ephemeral_overrides={"context-limit": 8000})
    child = SubAgentScope.create("sub", profile, parent, scopes=scopes).runtime_context
    assert child.get_ephemeral_setting("context-limit") == 8000
    assert parent.get_ephemeral_setting("context-limit") == 60000


def test_allowed_tools_must_exist(tmp_path: Path) -> None:
    """A profile allowing a tool the scope lacks is refused with the available names."""
    scopes = _factory(tmp_path)
    with pytest.raises(Exception, match="unknown tools"):
        SubAgentScope.create(
            "s", _profile(allowed_tools=["nope"]), scopes.foreground(), scopes=scopes
        )


@given(
    provider=st.sampled_from(["gemini", "openai"]),
    model=st.text(min_size=1, max_size=30),
    params=st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=4),
    overrides=st.fixed_dictionaries(
        {},
        optional={
            "context-limit": st.integers(1, 10**6),
            "compression-min-age": st.integers(0, 99),
        },
    ),
)
def test_no_profile_ever_changes_the_parent(
    tmp_path: Path,
    provider: str,
    model: str,
    params: dict[str, int | str],
    overrides: dict[str, int],
) -> None:
    """For any profile, the parent's state, ephemerals and auth are unchanged afterwards."""
    scopes = _factory(tmp_path)
    parent = scopes.foreground()
    before = dataclasses.astuple(parent.state), parent.ephemerals, parent.auth
    profile = _profile(
        provider=provider, model=model, model_params=params, ephemeral_overrides=overrides
    )
    child = SubAgentScope.create("sub", profile, parent, scopes=scopes).runtime_context
    assert (dataclasses.astuple(parent.state), parent.ephemerals, parent.auth) == before
    assert (child.state.provider, child.state.model) == (provider, model)
    assert child.runtime_id != parent.runtime_id


@given(names=st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=8))
def test_every_subagent_has_a_distinct_runtime_and_history(
    tmp_path: Path, names: list[str]
) -> None:
    """However many subagents one parent spawns, no two share a runtime id or history."""
    scopes = _factory(tmp_path)
    parent = scopes.foreground()
    children = [
        SubAgentScope.create(name, _profile(), parent, scopes=scopes).runtime_context
        for name in names
    ]
    assert len({c.runtime_id for c in children} | {parent.runtime_id}) == len(names) + 1
    assert len({id(c.history) for c in children}) == len(names)
    assert all(c.state.parent_runtime_id == parent.runtime_id for c in children)


def test_scope_request_wraps_plain_keys_as_secrets() -> None:
    """A key passed as text is held as a SecretStr and never printed."""
    request = ScopeRequest.create(api_key="sk-hidden-123456789")
    assert "sk-hidden" not in repr(request)
