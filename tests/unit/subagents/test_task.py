"""The `task` tool and its runner: every terminate reason, the concurrency cap, tool binding."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from chatscope.errors import AuthenticationFailedError
from chatscope.services.events import TextDelta, ToolResultEvent
from chatscope.services.messages import Role
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.services.subagents.task import TaskRequest, TerminateReason
from chatscope.testing import FunctionProvider, ScriptedProvider, ScriptedReply
from tests.support.subagents import (
    StallingProvider,
    events_of,
    foreground_with_runner,
    profile,
    subagent_app,
)

PARENT = ScriptedProvider([], name="openai")


def _emits_then_answers(invocation: ModelInvocation) -> ScriptedReply:
    if invocation.history[-1].role is Role.USER:
        return ScriptedReply(tool_calls=[("emit_value", {"name": "answer", "value": "42"})])
    return ScriptedReply(text="The answer is 42.", chunks=3)


async def test_goal_returns_the_final_message_emitted_values_and_usage(tmp_path: Path) -> None:
    """A subagent that finishes reports GOAL with its text, emitted values and summed usage."""
    sub = FunctionProvider(_emits_then_answers, name="anthropic")
    app = subagent_app(PARENT, sub, workspace=tmp_path, profiles=[profile(system_prompt="sys")])
    parent, runner = foreground_with_runner(app)
    result = await runner.run(
        TaskRequest(subagent_name="helper", goal_prompt="compute", context="c")
    )
    assert result.terminate_reason is TerminateReason.GOAL
    assert result.final_message == "The answer is 42."
    assert dict(result.emitted_values) == {"answer": "42"}
    assert (result.usage.input_tokens, result.usage.output_tokens, result.model_calls) == (
        20,
        10,
        2,
    )
    assert (result.parent_runtime_id, result.model) == (parent.runtime_id, "helper-model")
    first = sub.invocations[0]
    assert first.history[0].text == "Context:\nc\n\nGoal:\ncompute"
    assert first.system_prompt == "sys"
    assert first.runtime_id == result.runtime_id != parent.runtime_id


async def test_max_turns_ends_the_run_and_a_request_only_tightens_the_limit(
    tmp_path: Path,
) -> None:
    """A model that never stops calling tools ends at the lower of request and profile limits."""
    looping = FunctionProvider(
        lambda _: ScriptedReply(
            text="step ", tool_calls=[("emit_value", {"name": "n", "value": "v"})]
        ),
        name="anthropic",
    )
    app = subagent_app(PARENT, looping, workspace=tmp_path, profiles=[profile(max_turns=3)])
    _, runner = foreground_with_runner(app)
    tight = await runner.run(TaskRequest(subagent_name="helper", goal_prompt="go", max_turns=2))
    loose = await runner.run(TaskRequest(subagent_name="helper", goal_prompt="go", max_turns=50))
    assert (tight.terminate_reason, tight.model_calls) == (TerminateReason.MAX_TURNS, 2)
    assert (loose.terminate_reason, loose.model_calls) == (TerminateReason.MAX_TURNS, 3)
    assert loose.final_message == "step step step "


async def test_timeout_returns_the_partial_output(tmp_path: Path) -> None:
    """On timeout the text streamed so far is returned, and the provider stream is closed."""
    stalling = StallingProvider(["Found ", "three ", "files"])
    app = subagent_app(PARENT, stalling, workspace=tmp_path, profiles=[profile(timeout_seconds=60)])
    _, runner = foreground_with_runner(app)
    request = TaskRequest(subagent_name="helper", goal_prompt="look", timeout_seconds=0.05)
    result = await asyncio.wait_for(runner.run(request), 5)
    assert result.terminate_reason is TerminateReason.TIMEOUT
    assert result.final_message == "Found three files"
    assert result.usage.input_tokens == 7
    assert result.error is None
    assert stalling.closed == 1


async def test_the_profile_timeout_applies_when_the_request_gives_none(tmp_path: Path) -> None:
    """A request without `timeout_seconds` still ends at the profile's limit."""
    stalling = StallingProvider(["x"])
    app = subagent_app(
        PARENT, stalling, workspace=tmp_path, profiles=[profile(timeout_seconds=0.05)]
    )
    _, runner = foreground_with_runner(app)
    result = await runner.run(TaskRequest(subagent_name="helper", goal_prompt="look"))
    assert (result.terminate_reason, result.final_message) == (TerminateReason.TIMEOUT, "x")


async def test_errors_become_error_results_with_secrets_redacted(tmp_path: Path) -> None:
    """A failing subagent reports ERROR with a redacted message; nothing is raised."""

    def fail(_: ModelInvocation) -> ScriptedReply:
        raise AuthenticationFailedError(
            "key sk-live-abcdefghijklmnop rejected", provider="anthropic", status=401
        )

    app = subagent_app(
        PARENT, FunctionProvider(fail, name="anthropic"), workspace=tmp_path, profiles=[profile()]
    )
    _, runner = foreground_with_runner(app)
    result = await runner.run(TaskRequest(subagent_name="helper", goal_prompt="go"))
    assert result.terminate_reason is TerminateReason.ERROR
    assert result.error is not None
    assert result.error.startswith("AuthenticationFailedError: anthropic HTTP 401")
    assert "abcdefghijklmnop" not in json.dumps(result.as_json())


async def test_a_missing_key_is_an_error_naming_the_profile_variable(tmp_path: Path) -> None:
    """`api_key_env` is looked up at call time; when it is unset the run ends in ERROR."""
    sub = FunctionProvider(lambda _: ScriptedReply(text="ok"), name="anthropic")
    keyed = profile(api_key_env="HELPER_KEY")
    app = subagent_app(PARENT, sub, workspace=tmp_path, profiles=[keyed], environ={})
    _, runner = foreground_with_runner(app)
    result = await runner.run(TaskRequest(subagent_name="helper", goal_prompt="go"))
    assert result.terminate_reason is TerminateReason.ERROR
    assert "$HELPER_KEY" in (result.error or "")
    app_with_key = subagent_app(
        PARENT, sub, workspace=tmp_path, profiles=[keyed], environ={"HELPER_KEY": "k-123"}
    )
    _, runner = foreground_with_runner(app_with_key)
    ok = await runner.run(TaskRequest(subagent_name="helper", goal_prompt="go"))
    assert ok.terminate_reason is TerminateReason.GOAL
    assert sub.invocations[-1].credentials.secret() == "k-123"


async def test_cancelling_a_run_reports_cancelled_with_partial_output(tmp_path: Path) -> None:
    """`SubagentRun.cancel` stops the subagent; its result says CANCELLED and keeps the text."""
    stalling = StallingProvider(["half ", "done"])
    app = subagent_app(PARENT, stalling, workspace=tmp_path, profiles=[profile()])
    _, runner = foreground_with_runner(app)
    run = runner.start(TaskRequest(subagent_name="helper", goal_prompt="go"))
    await stalling.streaming.wait()
    run.cancel()
    result = await run.result()
    assert (result.terminate_reason, result.final_message) == (
        TerminateReason.CANCELLED,
        "half done",
    )
    assert result.runtime_id == run.runtime_id
    assert stalling.closed == 1


async def test_cancelling_the_caller_stops_the_subagent_and_propagates(tmp_path: Path) -> None:
    """When the waiting task is cancelled, the cancellation is not swallowed and the run stops."""
    stalling = StallingProvider(["x"])
    app = subagent_app(PARENT, stalling, workspace=tmp_path, profiles=[profile()])
    _, runner = foreground_with_runner(app)
    waiting = asyncio.create_task(runner.run(TaskRequest(subagent_name="helper", goal_prompt="go")))
    await stalling.streaming.wait()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert stalling.closed == 1


async def test_at_most_max_concurrent_subagents_run_at_once(tmp_path: Path) -> None:
    """Eight tasks under a cap of three: three run at a time, never more, and all finish."""
    active, peak = 0, 0

    async def slow(_: ModelInvocation) -> ScriptedReply:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        return ScriptedReply(text="ok")

    sub = FunctionProvider(slow, name="anthropic")
    app = subagent_app(
        PARENT, sub, workspace=tmp_path, profiles=[profile()], max_concurrent_subagents=3
    )
    _, runner = foreground_with_runner(app)
    request = TaskRequest(subagent_name="helper", goal_prompt="go")
    results = await asyncio.gather(*(runner.run(request) for _ in range(8)))
    assert peak == 3
    assert [r.terminate_reason for r in results] == [TerminateReason.GOAL] * 8
    assert len({r.runtime_id for r in results}) == 8


async def test_each_parent_scope_has_its_own_limit(tmp_path: Path) -> None:
    """The cap belongs to a parent scope: two parents with a cap of one run two at once."""
    stalling = StallingProvider(["x"])
    app = subagent_app(
        PARENT, stalling, workspace=tmp_path, profiles=[profile()], max_concurrent_subagents=1
    )
    runs = [
        foreground_with_runner(app)[1].start(TaskRequest(subagent_name="helper", goal_prompt="go"))
        for _ in range(2)
    ]
    for _ in range(100):
        if len(stalling.invocations) == 2:
            break
        await asyncio.sleep(0.001)
    assert len(stalling.invocations) == 2
    for run in runs:
        run.cancel()
    assert {(await run.result()).terminate_reason for run in runs} == {TerminateReason.CANCELLED}


async def test_a_subagent_may_use_another_provider_than_its_parent(tmp_path: Path) -> None:
    """A parent on `openai` runs a subagent on `anthropic`; each provider sees only its scope."""
    parent_fake = FunctionProvider(lambda _: ScriptedReply(text="parent"), name="openai")
    sub = FunctionProvider(lambda _: ScriptedReply(text="child"), name="anthropic")
    app = subagent_app(parent_fake, sub, workspace=tmp_path, profiles=[profile()])
    parent, runner = foreground_with_runner(app)
    result = await runner.run(TaskRequest(subagent_name="helper", goal_prompt="go"))
    await app.runtime.chat_session(context=parent).send("hello")
    assert (parent.state.provider, result.provider) == ("openai", "anthropic")
    assert {i.runtime_id for i in sub.invocations} == {result.runtime_id}
    assert {i.runtime_id for i in parent_fake.invocations} == {parent.runtime_id}
    assert sub.invocations[0].credentials.secret() == "test-anthropic-key"


async def test_the_task_tool_runs_inside_a_chat_and_returns_json(tmp_path: Path) -> None:
    """A parent model calling `task` gets the subagent's JSON result as its tool result."""
    arguments = {"subagent_name": "helper", "goal_prompt": "find it"}
    parent_fake = ScriptedProvider(
        [ScriptedReply(tool_calls=[("task", arguments)]), ScriptedReply(text="thanks")],
        name="openai",
    )
    sub = FunctionProvider(_emits_then_answers, name="anthropic")
    app = subagent_app(parent_fake, sub, workspace=tmp_path, profiles=[profile()])
    parent = app.runtime.scopes().foreground()
    events = [event async for event in app.runtime.chat_session(context=parent).stream("hi")]
    results = [event.result for event in events if isinstance(event, ToolResultEvent)]
    document = json.loads(results[0].content)
    assert document["terminate_reason"] == "GOAL"
    assert document["emitted_values"] == {"answer": "42"}
    assert document["parent_runtime_id"] == parent.runtime_id
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["thanks"]
    history = await parent.history.messages()
    assert all("find it" not in m.text for m in history if m.role is Role.USER)


async def test_bad_task_calls_become_error_results_for_the_model(tmp_path: Path) -> None:
    """An unknown subagent or bad arguments are reported to the model; the chat goes on."""
    calls = [("task", {"subagent_name": "nobody", "goal_prompt": "x"}), ("task", {"goal": "x"})]
    parent_fake = ScriptedProvider(
        [ScriptedReply(tool_calls=calls), ScriptedReply(text="ok")], name="openai"
    )
    app = subagent_app(parent_fake, workspace=tmp_path, profiles=[profile()])
    turn = await app.runtime.chat_session(context=app.runtime.scopes().foreground()).send("hi")
    errors = [result.error or "" for result in turn.tool_results]
    assert "unknown subagent 'nobody'; available subagents: helper" in errors[0]
    assert "invalid task arguments" in errors[1]
    assert "goal_prompt" in errors[1]
    assert turn.text == "ok"


async def test_every_event_of_a_task_run_carries_its_own_scope_ids(tmp_path: Path) -> None:
    """Parent events (its `task` tool call too) carry the parent's ids; the subagent's its own."""
    sink = RecordingSink()
    arguments = {"subagent_name": "helper", "goal_prompt": "find it"}
    parent_fake = ScriptedProvider(
        [ScriptedReply(tool_calls=[("task", arguments)]), ScriptedReply(text="thanks")],
        name="openai",
    )
    sub = FunctionProvider(_emits_then_answers, name="anthropic")
    app = subagent_app(parent_fake, sub, workspace=tmp_path, profiles=[profile()], sink=sink)
    parent = app.runtime.scopes().foreground()
    turn = await app.runtime.chat_session(context=parent).send("hi")
    child_id = json.loads(turn.tool_results[0].content)["runtime_id"]
    parent_events, child_events = events_of(sink, parent.runtime_id), events_of(sink, child_id)
    assert len(parent_events) + len(child_events) == len(sink.events)
    assert all(f["parent_runtime_id"] is None for _, f in parent_events)
    assert all(f["subagent_name"] is None for _, f in parent_events)
    assert all(f["parent_runtime_id"] == parent.runtime_id for _, f in child_events)
    assert all(f["subagent_name"] == "helper" for _, f in child_events)
    assert all(f["provider"] == "anthropic" for _, f in child_events)
    tool_calls = [(f["runtime_id"], f["tool_name"]) for n, f in sink.events if n == "tool_call"]
    assert tool_calls == [(child_id, "emit_value"), (parent.runtime_id, "task")]
    assert {n for n, _ in child_events} >= {"api_request", "api_response", "tool_call"}
