"""Properties of subagent runs (REQ-STAT6-003): isolation from the parent, ids, limits, results."""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from hypothesis import given, settings
from hypothesis import strategies as st

from chatscope.errors import ProviderError, ToolError
from chatscope.services.events import ProviderEvent, TextDelta
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.messages import Message, Role, Usage
from chatscope.services.runtime.context import AgentRuntimeContext
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.services.runtime.state import AgentRuntimeState
from chatscope.services.subagents.profile import SubagentProfile, SubAgentScope
from chatscope.services.subagents.task import TaskRequest, TaskResult, TerminateReason
from chatscope.testing import FunctionProvider, ScriptedProvider, ScriptedReply
from tests.support.subagents import (
    StallingProvider,
    events_of,
    foreground_with_runner,
    profile,
    subagent_app,
)

FAKE_PROVIDERS = ("openai", "anthropic", "gemini")
TOOLS = ("read_file", "list_directory", "glob", "search_file_content", "write_file")

names = st.from_regex(r"[a-z][a-z0-9_-]{0,11}", fullmatch=True)
texts = st.text(min_size=1, max_size=20)
params = st.dictionaries(
    st.text(min_size=1, max_size=6),
    st.integers(-5, 5) | st.text(max_size=5) | st.booleans(),
    max_size=3,
)
ephemerals = st.fixed_dictionaries(
    {},
    optional={
        "context-limit": st.integers(1, 10**6),
        "compression-min-age": st.integers(0, 50),
        "compression-threshold": st.floats(0, 1),
    },
)
allow_lists = st.none() | st.lists(st.sampled_from(TOOLS), unique=True).map(tuple)


@st.composite
def profiles(draw: st.DrawFn, name: str | None = None) -> SubagentProfile:
    """A random profile on one of the fake providers."""
    return SubagentProfile.create(
        name=name or draw(names),
        provider=draw(st.sampled_from(FAKE_PROVIDERS)),
        model=draw(texts),
        model_params=draw(params),
        ephemeral_overrides=draw(ephemerals),
        system_prompt=draw(st.none() | texts),
        allowed_tools=draw(allow_lists),
        max_turns=draw(st.integers(1, 3)),
    )


parent_requests = st.builds(
    ScopeRequest.create,
    provider=st.sampled_from(FAKE_PROVIDERS),
    model=texts,
    model_params=params,
    ephemeral_overrides=ephemerals,
    system_prompt=st.none() | texts,
)


class SpyHistory(InMemoryHistory):
    """An in-memory history that records every call made on it."""

    def __init__(self, *, session_id: str, provider: str, model: str) -> None:
        super().__init__(session_id=session_id, provider=provider, model=model)
        self.calls: list[str] = []

    async def messages(self) -> tuple[Message, ...]:
        self.calls.append("messages")
        return await super().messages()

    async def append_turn(self, messages: Sequence[Message], usage: Usage | None = None) -> None:
        self.calls.append("append_turn")
        await super().append_turn(messages, usage)

    async def replace(self, messages: Sequence[Message]) -> None:
        self.calls.append("replace")
        await super().replace(messages)


def _respond(invocation: ModelInvocation) -> ScriptedReply:
    """Subagents emit their goal then answer; anyone else just answers with its runtime id."""
    last = invocation.history[-1]
    if last.role is Role.USER and any(tool.name == "emit_value" for tool in invocation.tools):
        return ScriptedReply(tool_calls=[("emit_value", {"name": "goal", "value": last.text})])
    return ScriptedReply(text=f"done {invocation.runtime_id}")


@dataclass
class Scenario:
    """A parent with prior history that ran some subagents, and what was observed."""

    parent: AgentRuntimeContext
    spy: SpyHistory
    goals: list[tuple[SubagentProfile, str]]
    results: list[TaskResult]
    sink: RecordingSink
    fakes: list[FunctionProvider]
    before: tuple[Any, ...] = ()
    after: tuple[Any, ...] = ()
    spy_calls_during_runs: list[str] = field(default_factory=list)


async def _snapshot(parent: AgentRuntimeContext, settings_dump: dict[str, Any]) -> tuple[Any, ...]:
    return (
        parent.state,
        parent.ephemerals,
        parent.auth,
        parent.system_prompt,
        parent.tools.names(),
        parent.provider.name,
        dict(parent.telemetry.metadata),
        await InMemoryHistory.messages(parent.history),  # type: ignore[arg-type]
        settings_dump,
    )


async def _run_scenario(
    tmp_path: Path,
    request: ScopeRequest,
    profile_list: list[SubagentProfile],
    picks: list[tuple[int, str]],
    prior: list[str],
) -> Scenario:
    sink = RecordingSink()
    fakes = [FunctionProvider(_respond, name=name) for name in FAKE_PROVIDERS]
    app = subagent_app(
        *fakes, workspace=tmp_path, profiles=profile_list, sink=sink, max_concurrent_subagents=2
    )
    app.runtime.history.override(providers.Factory(SpyHistory))
    parent, runner = foreground_with_runner(app, request)
    assert isinstance(parent.history, SpyHistory)
    for text in prior:
        await parent.history.append_turn([Message.user(text)])
    goals = [(profile_list[index % len(profile_list)], goal) for index, goal in picks]
    scenario = Scenario(parent, parent.history, goals, [], sink, fakes)
    scenario.before = await _snapshot(parent, app.settings().model_dump())
    parent.history.calls.clear()
    scenario.results = list(
        await asyncio.gather(
            *(runner.run(TaskRequest(subagent_name=p.name, goal_prompt=g)) for p, g in goals)
        )
    )
    scenario.spy_calls_during_runs = list(parent.history.calls)
    scenario.after = await _snapshot(parent, app.settings().model_dump())
    return scenario


scenarios = st.tuples(
    parent_requests,
    st.lists(profiles(), min_size=1, max_size=3, unique_by=lambda p: p.name),
    st.lists(st.tuples(st.integers(0, 5), texts), min_size=1, max_size=4),
    st.lists(texts, max_size=3),
)


@settings(max_examples=25)
@given(case=scenarios)
def test_running_subagents_never_changes_the_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: tuple[Any, ...]
) -> None:
    """Parent state, ephemerals, auth, tools, telemetry, history and settings are untouched.

    Spies: the parent's history sees no call at all while subagents run, and no runtime state
    is ever updated (a call to `with_updates` would fail the run).
    """

    def forbidden(self: AgentRuntimeState, **changes: object) -> AgentRuntimeState:
        raise AssertionError("REGRESSION: a runtime state was updated in the subagent path")

    monkeypatch.setattr(AgentRuntimeState, "with_updates", forbidden)
    scenario = asyncio.run(_run_scenario(tmp_path, *case))
    assert scenario.spy_calls_during_runs == []
    assert scenario.after == scenario.before
    assert all(
        r.terminate_reason in {TerminateReason.GOAL, TerminateReason.MAX_TURNS}
        for r in scenario.results
    ), [r.error for r in scenario.results]


@settings(max_examples=25)
@given(case=scenarios)
def test_each_subagent_has_its_own_ids_events_and_conversation(
    tmp_path: Path, case: tuple[Any, ...]
) -> None:
    """Every event carries its own scope's ids, and each model saw only its own goal."""
    scenario = asyncio.run(_run_scenario(tmp_path, *case))
    parent_id = scenario.parent.runtime_id
    run_ids = [result.runtime_id for result in scenario.results]
    assert len(set(run_ids)) == len(run_ids)
    assert parent_id not in run_ids
    assert {fields["runtime_id"] for _, fields in scenario.sink.events} <= set(run_ids)
    invocations = [i for fake in scenario.fakes for i in fake.invocations]
    for (prof, goal), result in zip(scenario.goals, scenario.results, strict=True):
        for _, fields in events_of(scenario.sink, result.runtime_id):
            assert fields["parent_runtime_id"] == parent_id
            assert (fields["subagent_name"], fields["provider"]) == (prof.name, prof.provider)
            assert fields["model"] == prof.model
        own = [i for i in invocations if i.runtime_id == result.runtime_id]
        assert own
        assert all(i.provider == prof.provider for i in own)
        for invocation in own:
            user_texts = [m.text for m in invocation.history if m.role is Role.USER]
            assert user_texts == [goal]
        assert dict(result.emitted_values) == {"goal": goal}


@settings(max_examples=20)
@given(count=st.integers(1, 8), cap=st.integers(1, 4))
def test_concurrent_runs_never_exceed_the_cap(tmp_path: Path, count: int, cap: int) -> None:
    """However many tasks start at once, exactly min(count, cap) run together at the peak."""

    async def scenario() -> tuple[int, list[TaskResult]]:
        active, peak = 0, 0

        async def slow(_: ModelInvocation) -> ScriptedReply:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.003)
            active -= 1
            return ScriptedReply(text="ok")

        sub = FunctionProvider(slow, name="anthropic")
        app = subagent_app(
            sub, workspace=tmp_path, profiles=[profile()], max_concurrent_subagents=cap
        )
        _, runner = foreground_with_runner(app)
        request = TaskRequest(subagent_name="helper", goal_prompt="go")
        results = await asyncio.gather(*(runner.run(request) for _ in range(count)))
        return peak, list(results)

    peak, results = asyncio.run(scenario())
    assert peak == min(count, cap)
    assert all(result.terminate_reason is TerminateReason.GOAL for result in results)


@settings(max_examples=20)
@given(limit=st.integers(1, 4), asked=st.none() | st.integers(1, 6))
def test_turn_limit_is_the_lower_of_profile_and_request(
    tmp_path: Path, limit: int, asked: int | None
) -> None:
    """A model that always calls a tool makes exactly min(profile, request) calls."""
    looping = FunctionProvider(
        lambda _: ScriptedReply(tool_calls=[("emit_value", {"name": "n", "value": "v"})]),
        name="anthropic",
    )
    app = subagent_app(looping, workspace=tmp_path, profiles=[profile(max_turns=limit)])
    _, runner = foreground_with_runner(app)
    request = TaskRequest(subagent_name="helper", goal_prompt="go", max_turns=asked)
    result = asyncio.run(runner.run(request))
    assert result.terminate_reason is TerminateReason.MAX_TURNS
    assert result.model_calls == len(looping.invocations) == min(limit, asked or limit)


@settings(max_examples=20)
@given(chunks=st.lists(st.text(max_size=8), max_size=5), how=st.sampled_from(["timeout", "cancel"]))
def test_a_run_cut_short_keeps_everything_it_streamed(
    tmp_path: Path, chunks: list[str], how: str
) -> None:
    """On timeout or cancellation the result holds exactly the text streamed so far."""
    stalling = StallingProvider(chunks)

    async def scenario() -> TaskResult:
        app = subagent_app(stalling, workspace=tmp_path, profiles=[profile()])
        _, runner = foreground_with_runner(app)
        timeout = 0.02 if how == "timeout" else None
        request = TaskRequest(subagent_name="helper", goal_prompt="go", timeout_seconds=timeout)
        run = runner.start(request)
        if how == "cancel":
            await stalling.streaming.wait()
            run.cancel()
        return await asyncio.wait_for(run.result(), 5)

    result = asyncio.run(scenario())
    expected = TerminateReason.TIMEOUT if how == "timeout" else TerminateReason.CANCELLED
    assert (result.terminate_reason, result.final_message) == (expected, "".join(chunks))
    assert result.usage == Usage(7, 3)
    assert stalling.closed == 1


secrets = st.text(string.ascii_letters + string.digits, min_size=16, max_size=30).map(
    lambda tail: "sk-" + tail
)


@settings(max_examples=30)
@given(
    secret=secrets,
    kind=st.sampled_from(["provider", "runtime", "value"]),
    said=st.lists(st.text(string.ascii_letters, max_size=6), max_size=3),
)
def test_errors_become_results_and_never_carry_a_secret(
    tmp_path: Path, secret: str, kind: str, said: list[str]
) -> None:
    """Whatever fails inside a subagent is an ERROR result, redacted, with its text kept."""

    error = {
        "provider": ProviderError(f"rejected {secret}", provider="anthropic", status=400),
        "runtime": RuntimeError(f"boom with api_key={secret}"),
        "value": ValueError(f"Bearer {secret}"),
    }[kind]

    class FailsMidStream:
        name = "anthropic"

        async def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
            for piece in said:
                yield TextDelta(piece)
            raise error

    provider = FailsMidStream()
    app = subagent_app(provider, workspace=tmp_path, profiles=[profile()])
    _, runner = foreground_with_runner(app)
    result = asyncio.run(runner.run(TaskRequest(subagent_name="helper", goal_prompt="go")))
    assert result.terminate_reason is TerminateReason.ERROR
    assert result.final_message == "".join(said)
    assert result.error
    assert secret not in json.dumps(result.as_json())
    assert secret[3:] not in json.dumps(result.as_json())


@settings(max_examples=30)
@given(
    pairs=st.lists(
        st.tuples(
            st.text(min_size=1, max_size=6).filter(str.strip),
            st.text(max_size=8) | st.integers() | st.lists(st.integers(), max_size=2),
        ),
        max_size=6,
    )
)
def test_emitted_values_come_back_and_the_last_write_wins(
    tmp_path: Path, pairs: list[tuple[str, Any]]
) -> None:
    """Each `emit_value` call is in the result; a name emitted twice keeps its last value."""
    calls = [("emit_value", {"name": name, "value": value}) for name, value in pairs]
    replies = iter([ScriptedReply(tool_calls=calls), ScriptedReply(text="done")])
    sub = FunctionProvider(lambda _: next(replies), name="anthropic")
    app = subagent_app(sub, workspace=tmp_path, profiles=[profile(max_turns=2)])
    _, runner = foreground_with_runner(app)
    result = asyncio.run(runner.run(TaskRequest(subagent_name="helper", goal_prompt="go")))
    document = json.loads(json.dumps(result.as_json()))
    assert document["emitted_values"] == dict(pairs)
    assert document["terminate_reason"] == "GOAL"


@given(
    name=names,
    goal=texts,
    context=st.none() | texts,
    turns=st.none() | st.integers(1, 500),
    seconds=st.none() | st.floats(0.001, 1e6),
)
def test_valid_task_arguments_are_kept_and_shape_the_prompt(
    name: str, goal: str, context: str | None, turns: int | None, seconds: float | None
) -> None:
    """Valid arguments round trip; the prompt holds the goal and, if given, the context."""
    arguments: dict[str, Any] = {"subagent_name": name, "goal_prompt": goal}
    arguments |= {"context": context, "max_turns": turns, "timeout_seconds": seconds}
    request = TaskRequest.from_arguments(arguments)
    assert (request.subagent_name, request.goal_prompt, request.context) == (name, goal, context)
    assert (request.max_turns, request.timeout_seconds) == (turns, seconds)
    assert request.prompt().endswith(goal)
    assert context is None or context in request.prompt()


@given(
    turns=st.integers(max_value=0) | st.text(string.ascii_letters, min_size=1),
    seconds=st.floats(max_value=0) | st.sampled_from([float("inf"), float("nan")]),
    bad=st.sampled_from(["max_turns", "timeout_seconds"]),
)
def test_invalid_limits_are_tool_errors_naming_the_argument(
    turns: Any, seconds: float, bad: str
) -> None:
    """A non-positive or non-finite limit is refused as a `ToolError` naming the argument."""
    arguments: dict[str, Any] = {"subagent_name": "a", "goal_prompt": "b"}
    arguments[bad] = turns if bad == "max_turns" else seconds
    with pytest.raises(ToolError, match=bad):
        TaskRequest.from_arguments(arguments)


@given(foreground=allow_lists, with_task=st.booleans(), subagent=allow_lists)
def test_allow_lists_decide_the_tools_of_each_scope(
    tmp_path: Path,
    foreground: tuple[str, ...] | None,
    with_task: bool,
    subagent: tuple[str, ...] | None,
) -> None:
    """A foreground scope has its allowed tools, plus `task` when allowed; a subagent has its
    allowed tools plus `emit_value`, and never `task`."""
    app = subagent_app(
        ScriptedProvider([], name="anthropic"), workspace=tmp_path, profiles=[profile()]
    )
    scopes = app.runtime.scopes()
    allowed = None if foreground is None else (*foreground, *(("task",) if with_task else ()))
    parent = scopes.foreground(ScopeRequest(allowed_tools=allowed))
    offered = TOOLS if foreground is None else tuple(t for t in TOOLS if t in foreground)
    has_task = foreground is None or with_task
    assert parent.tools.names() == offered + (("task",) if has_task else ())
    child = SubAgentScope.create("helper", profile(allowed_tools=subagent), parent, scopes=scopes)
    kept = TOOLS if subagent is None else tuple(t for t in TOOLS if t in subagent)
    assert child.runtime_context.tools.names() == (*kept, "emit_value")


@settings(max_examples=25)
@given(
    variable=st.from_regex(r"[A-Z][A-Z0-9_]{2,12}", fullmatch=True),
    own=st.none() | st.from_regex(r"own-[a-z0-9]{4,8}", fullmatch=True),
    standard=st.none() | st.from_regex(r"std-[a-z0-9]{4,8}", fullmatch=True),
)
def test_the_profile_key_variable_is_read_first_at_each_call(
    tmp_path: Path, variable: str, own: str | None, standard: str | None
) -> None:
    """`api_key_env` wins, the provider's standard variable comes next, else the run errs."""
    environ = {
        name: value
        for name, value in [(variable, own), ("ANTHROPIC_API_KEY", standard)]
        if value is not None
    }
    sub = FunctionProvider(lambda _: ScriptedReply(text="ok"), name="anthropic")
    app = subagent_app(
        sub, workspace=tmp_path, profiles=[profile(api_key_env=variable)], environ=environ
    )
    _, runner = foreground_with_runner(app)
    result = asyncio.run(runner.run(TaskRequest(subagent_name="helper", goal_prompt="go")))
    expected = own or standard
    if expected is None:
        assert result.terminate_reason is TerminateReason.ERROR
        assert f"${variable}" in (result.error or "")
    else:
        assert result.terminate_reason is TerminateReason.GOAL
        assert sub.invocations[-1].credentials.secret() == expected


@settings(max_examples=20)
@given(prior=st.lists(texts, max_size=3), goals=st.lists(texts, min_size=1, max_size=3))
def test_a_parent_chatting_while_its_subagents_run_keeps_exactly_its_own_turn(
    tmp_path: Path, prior: list[str], goals: list[str]
) -> None:
    """Concurrent execution: the parent's history gains its own turn and nothing else."""

    async def scenario() -> tuple[list[str], list[TaskResult]]:
        fakes = [FunctionProvider(_respond, name=name) for name in FAKE_PROVIDERS]
        app = subagent_app(*fakes, workspace=tmp_path, profiles=[profile()])
        parent, runner = foreground_with_runner(app)
        for text in prior:
            await parent.history.append_turn([Message.user(text)])
        chat = app.runtime.chat_session(context=parent)
        runs = [runner.run(TaskRequest(subagent_name="helper", goal_prompt=g)) for g in goals]
        *results, _ = await asyncio.gather(*runs, chat.send("parent question"))
        return [m.text for m in await parent.history.messages()], list(results)

    history, results = asyncio.run(scenario())
    assert history[: len(prior)] == prior
    assert history[len(prior) :][0] == "parent question"
    assert not any(goal in history[len(prior) + 1 :] for goal in goals if goal != "parent question")
    assert [dict(r.emitted_values) for r in results] == [{"goal": g} for g in goals]
