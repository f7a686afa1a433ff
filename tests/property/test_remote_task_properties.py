"""What a remote executor ships (`RemoteTask`): plain data that round-trips, and never holds a
key or a history of the parent, whatever the parent scope holds."""

from __future__ import annotations

import asyncio
import pickle
import string
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.messages import Message
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.services.subagents.remote import describe_task, remote_scope
from chatscope.services.subagents.task import SubagentLaunch, TaskRequest
from chatscope.testing import ScriptedProvider
from tests.support.subagents import foreground_with_runner, profile, subagent_app

_WORDS = st.text(string.ascii_letters + string.digits, min_size=12, max_size=40)
_TRACE = st.dictionaries(st.sampled_from(["traceparent", "tracestate"]), _WORDS, max_size=2)


@given(
    key=_WORDS,
    history=st.lists(_WORDS, min_size=1, max_size=4),
    context_limit=st.integers(1000, 500_000),
    goal=_WORDS,
    trace=_TRACE,
)
def test_the_shipped_task_round_trips_and_holds_no_key_or_history(
    tmp_path: Path,
    key: str,
    history: list[str],
    context_limit: int,
    goal: str,
    trace: dict[str, str],
) -> None:
    """Pickled, the task equals itself, carries the parent's id, ephemerals and trace context,
    and holds neither the parent's key nor any message of its history."""
    helper = profile("helper", provider="openai", max_turns=2)
    app = subagent_app(ScriptedProvider([], name="openai"), workspace=tmp_path, profiles=[helper])
    secret, marks = f"sk-{key}", [f"HISTORY-{text}" for text in history]
    parent, _ = foreground_with_runner(
        app,
        ScopeRequest.create(
            api_key=secret,
            history=InMemoryHistory([Message.user(mark) for mark in marks]),
            ephemeral_overrides={"context-limit": context_limit},
        ),
    )
    launch = SubagentLaunch(
        parent=parent,
        profile=helper,
        request=TaskRequest(subagent_name="helper", goal_prompt=goal),
        scopes=app.runtime.scopes(),
        open_chat=app.runtime.chat_session,
        limit=asyncio.Semaphore(1),
    )
    task = describe_task(launch, trace)
    payload = pickle.dumps(task)
    assert pickle.loads(payload) == task  # noqa: S301 - our own bytes
    assert secret.encode() not in payload
    assert not any(mark.encode() in payload for mark in marks)
    assert (task.parent_runtime_id, dict(task.trace_context)) == (parent.runtime_id, trace)
    assert task.parent_ephemerals() == parent.ephemerals


@given(context_limit=st.integers(1000, 500_000))
def test_a_worker_builds_a_fresh_child_of_the_described_parent(
    tmp_path: Path, context_limit: int
) -> None:
    """Another application's factory builds, from the task alone, a new scope whose parent id
    and ephemerals are the parent's, with its own runtime id and an empty history."""
    helper = profile("helper", provider="openai", max_turns=2)
    parent_app = subagent_app(ScriptedProvider([], name="openai"), workspace=tmp_path)
    parent = parent_app.runtime.scopes().foreground(
        ScopeRequest.create(ephemeral_overrides={"context-limit": context_limit})
    )
    worker_app = subagent_app(ScriptedProvider([], name="openai"), workspace=tmp_path)
    launch = SubagentLaunch(
        parent=parent,
        profile=helper,
        request=TaskRequest(subagent_name="helper", goal_prompt="g"),
        scopes=parent_app.runtime.scopes(),
        open_chat=parent_app.runtime.chat_session,
        limit=asyncio.Semaphore(1),
    )
    scope = remote_scope(
        pickle.loads(pickle.dumps(describe_task(launch, {}))),  # noqa: S301 - our own bytes
        scopes=worker_app.runtime.scopes(),
        profiles={"helper": helper},
    )
    state = scope.runtime_context.state
    assert state.parent_runtime_id == parent.runtime_id
    assert state.runtime_id != parent.runtime_id
    assert scope.runtime_context.ephemerals == parent.ephemerals
    assert "emit_value" in scope.runtime_context.tools.names()
    assert "task" not in scope.runtime_context.tools.names()
    assert asyncio.run(scope.runtime_context.history.messages()) == ()
