"""Traces stay apart: concurrent chats, subagents across their own scopes, compression calls."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from dependency_injector import providers
from opentelemetry.sdk.trace import ReadableSpan

from chatscope.containers.application import ApplicationContainer
from chatscope.errors import InvalidRequestError
from chatscope.services.history.summariser import SUMMARY_SYSTEM_PROMPT
from chatscope.services.messages import ToolCallBlock, Usage
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.services.subagents.profile import SubAgentScope
from chatscope.testing import FunctionProvider, ScriptedReply, build_test_app
from tests.support.histories import reply, user
from tests.support.subagents import profile, subagent_app
from tests.support.tracing import SpanRecorder, attribute, parent_id, record_spans, span_id

CHATS = 200


async def _parent(invocation: ModelInvocation) -> ScriptedReply:
    """A foreground chat: delegates its prompt to the `helper` subagent, then answers."""
    await asyncio.sleep(0)  # let the other chats interleave
    prompt = invocation.history[0].text
    if len(invocation.history) == 1:
        goal = {"subagent_name": "helper", "goal_prompt": f"goal of {prompt}"}
        return ScriptedReply(tool_calls=[("task", goal)])
    return ScriptedReply(f"answer to {prompt}")


async def _helper(invocation: ModelInvocation) -> ScriptedReply:
    """The subagent: answers its goal."""
    await asyncio.sleep(0)
    return ScriptedReply(f"done: {invocation.history[0].text}")


def _app(tmp_path: Path) -> tuple[ApplicationContainer, SpanRecorder]:
    app = subagent_app(
        FunctionProvider(_parent, name="openai"),
        FunctionProvider(_helper, name="anthropic"),
        workspace=tmp_path,
        provider="openai",
        profiles=[profile("helper", allowed_tools=())],
        max_concurrent_subagents=2,
        telemetry={"capture_content": True},
    )
    return app, record_spans(app)


def _prompt_of(turn: ReadableSpan) -> str:
    [message] = json.loads(attribute(turn, "gen_ai.input.messages"))
    text: str = message["parts"][0]["content"]
    return text


def _check_trace(spans: list[ReadableSpan]) -> str:
    """One chat's trace: its root turn, its calls, its `task` and the subagent run under it.
    Returns the chat's prompt."""
    ids = {span_id(span) for span in spans}
    [root] = [span for span in spans if parent_id(span) is None]
    assert root.name == "invoke_agent chatscope"
    assert all(parent_id(span) in ids for span in spans if span is not root)
    runtime = attribute(root, "chatscope.runtime.id")
    [task] = [span for span in spans if span.name == "execute_tool task"]
    [sub_turn] = [span for span in spans if span.name == "invoke_agent helper"]
    assert parent_id(task) == span_id(root)
    assert parent_id(sub_turn) == span_id(task)
    sub_runtime = attribute(sub_turn, "chatscope.runtime.id")
    for span in spans:
        owner = attribute(span, "chatscope.runtime.id")
        assert owner in (runtime, sub_runtime)
        if owner == sub_runtime:
            assert attribute(span, "chatscope.parent_runtime.id") == runtime
            assert attribute(span, "chatscope.subagent.name") == "helper"
    [sub_call] = [span for span in spans if span.name == "chat helper-model"]
    assert parent_id(sub_call) == span_id(sub_turn)
    prompt = _prompt_of(root)
    assert _prompt_of(sub_turn) == f"goal of {prompt}"
    return prompt


async def test_concurrent_chats_make_separate_traces(tmp_path: Path) -> None:
    """200 chats at once, each delegating to a subagent: 200 traces, each holding exactly its
    own chat's spans and its own subagent's, nested as they ran."""
    app, recorder = _app(tmp_path)
    scopes = app.runtime.scopes()
    chats = [app.runtime.chat_session(context=scopes.foreground()) for _ in range(CHATS)]
    prompts = [f"chat-{index}" for index in range(CHATS)]
    turns = await asyncio.gather(
        *(chat.send(prompt) for chat, prompt in zip(chats, prompts, strict=True))
    )
    assert [turn.text for turn in turns] == [f"answer to {prompt}" for prompt in prompts]
    traces = recorder.by_trace()
    assert len(traces) == CHATS
    assert sorted(_check_trace(spans) for spans in traces.values()) == sorted(prompts)
    assert len(recorder.spans()) == CHATS * 6


async def test_a_subagent_started_by_the_task_cli_path_is_a_root(tmp_path: Path) -> None:
    """A subagent run outside any tool call (as `chatscope task` runs one) starts its own
    trace instead of joining whatever span happened to be ambient before."""
    app, recorder = _app(tmp_path)
    context = app.runtime.scopes().foreground()
    task = context.tools.get("task")
    assert task is not None
    await task.run({"subagent_name": "helper", "goal_prompt": "alone"})
    turn = recorder.one("invoke_agent helper")
    assert parent_id(turn) is None
    assert attribute(turn, "chatscope.parent_runtime.id") == context.runtime_id


async def test_a_subagent_scope_keeps_the_span_it_was_built_in(tmp_path: Path) -> None:
    """A subagent scope built inside a tool call traces its turns under that call, even when
    it runs after the call ended: the span travels with the scope, not with the task."""
    app, recorder = _app(tmp_path)
    parent = app.runtime.scopes().foreground()
    helper = app.subagent_profiles()["helper"]
    call = ToolCallBlock.create("c1", "task", {})
    with parent.telemetry.tracer.turn(user("go")) as turn, turn.tool_call(call):
        scope = SubAgentScope.create("helper", helper, parent, scopes=app.runtime.scopes())
    chat = app.runtime.chat_session(context=scope.runtime_context)
    await chat.send("later")
    assert parent_id(recorder.one("invoke_agent helper")) == span_id(recorder.one("execute_tool"))


def _summarising(invocation: ModelInvocation) -> ScriptedReply:
    if invocation.system_prompt == SUMMARY_SYSTEM_PROMPT:
        return ScriptedReply("SUMMARY of it all", usage=Usage(40, 6))
    return ScriptedReply("answered", usage=Usage(30, 2))


async def test_the_compression_summary_call_is_traced_under_its_turn(tmp_path: Path) -> None:
    """The summary call is a `chat` span of the turn it compresses for, marked with its
    purpose; it reports `api_request` and `api_response` like any call."""
    sink = RecordingSink()
    app = build_test_app(
        FunctionProvider(_summarising, name="openai"),
        workspace=tmp_path,
        ephemeral={"context-limit": 1000, "compression-threshold": 0.2, "compression-min-age": 2},
        compression={"model": "summary-model"},
    )
    app.telemetry_sink.override(providers.Object(sink))
    recorder = record_spans(app)
    context = app.runtime.scopes().foreground()
    for index in range(6):
        await context.history.append_turn([user(f"q{index} " + "x" * 150), reply("y" * 150)])
    await app.runtime.chat_session(context=context).send("next")
    turn = recorder.one("invoke_agent")
    summary, answer = recorder.named("chat ")
    assert summary.name == "chat summary-model"
    assert attribute(summary, "chatscope.call.purpose") == "compression_summary"
    assert attribute(summary, "gen_ai.usage.input_tokens") == 40
    assert parent_id(summary) == parent_id(answer) == span_id(turn)
    assert attribute(answer, "chatscope.call.purpose") is None
    requests = sink.named("api_request")
    assert [event.get("purpose") for event in requests] == ["compression_summary", None]
    assert requests[0]["model"] == "summary-model"
    [response, _] = sink.named("api_response")
    assert response["purpose"] == "compression_summary"
    assert response["input_tokens"] == 40


async def test_a_failed_summary_call_reports_its_error(tmp_path: Path) -> None:
    """A summary call that fails is an `api_error` with its purpose, and a failed span."""
    sink = RecordingSink()

    def failing(invocation: ModelInvocation) -> Any:
        if invocation.system_prompt == SUMMARY_SYSTEM_PROMPT:
            raise InvalidRequestError("summary refused", provider="openai", status=400)
        return ScriptedReply("answered")

    app = build_test_app(
        FunctionProvider(failing, name="openai"),
        workspace=tmp_path,
        ephemeral={"context-limit": 1000, "compression-threshold": 0.2, "compression-min-age": 2},
    )
    app.telemetry_sink.override(providers.Object(sink))
    recorder = record_spans(app)
    context = app.runtime.scopes().foreground()
    for index in range(6):
        await context.history.append_turn([user(f"q{index} " + "x" * 150), reply("y" * 150)])
    await app.runtime.chat_session(context=context).send("next")
    [error] = sink.named("api_error")
    assert error["purpose"] == "compression_summary"
    summary = recorder.named("chat ")[0]
    assert attribute(summary, "error.type") == "InvalidRequestError"
    assert attribute(summary, "chatscope.call.purpose") == "compression_summary"
