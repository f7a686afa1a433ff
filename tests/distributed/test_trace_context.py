"""A remote subagent's spans join its parent's trace: the `task` span travels as W3C context."""

from __future__ import annotations

import asyncio
from pathlib import Path

from opentelemetry import trace

from chatscope.distributed.executor import trace_context_of
from chatscope.distributed.worker import trace_parent_of
from chatscope.services.subagents.remote import describe_task
from chatscope.services.subagents.task import SubagentLaunch, TaskRequest
from chatscope.testing import ScriptedProvider
from tests.support.subagents import profile, subagent_app
from tests.support.tracing import record_spans


async def test_the_task_span_reaches_the_worker_as_its_trace_parent(tmp_path: Path) -> None:
    """Inside the parent's `execute_tool task` span, the shipped task carries its W3C context,
    and the worker reads back a parent with the same trace and span ids."""
    helper = profile("helper", provider="openai")
    app = subagent_app(ScriptedProvider([], name="openai"), workspace=tmp_path, profiles=[helper])
    recorder = record_spans(app)
    parent = app.runtime.scopes().foreground()
    launch = SubagentLaunch(
        parent=parent,
        profile=helper,
        request=TaskRequest(subagent_name="helper", goal_prompt="g"),
        scopes=app.runtime.scopes(),
        open_chat=app.runtime.chat_session,
        limit=asyncio.Semaphore(1),
    )
    assert trace_context_of(launch) == {}
    with recorder.provider.get_tracer("test").start_as_current_span("execute_tool task") as span:
        task = describe_task(launch, trace_context_of(launch))
    own = span.get_span_context()
    assert task.trace_context["traceparent"].startswith(
        f"00-{own.trace_id:032x}-{own.span_id:016x}-"
    )
    remote_parent = trace_parent_of(task)
    assert remote_parent is not None
    carried = trace.get_current_span(remote_parent).get_span_context()
    assert (carried.trace_id, carried.span_id, carried.is_remote) == (
        own.trace_id,
        own.span_id,
        True,
    )
