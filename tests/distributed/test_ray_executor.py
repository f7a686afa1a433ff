"""Subagents on a local Ray cluster: the same results, streaming, limits and faults as locally."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from dependency_injector import providers

from chatscope.containers.application import ApplicationContainer
from chatscope.distributed.executor import RayExecutor, WorkerPool
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.services.subagents.task import SubagentRunner, TaskRequest, TerminateReason
from chatscope.testing import ScriptedProvider
from tests.distributed.conftest import worker_pool
from tests.support.replay_server import ReplayServer
from tests.support.subagents import foreground_with_runner, profile, subagent_app

pytestmark = pytest.mark.usefixtures("ray_cluster")


@pytest.fixture(scope="module")
def pool(ray_cluster: str, worker_home: Path, worker_llm: ReplayServer) -> Iterator[WorkerPool]:
    """Two workers whose environment points at the mock LLM."""
    with worker_pool(2, worker_home, worker_llm) as workers:
        yield workers


def ray_app(tmp_path: Path, pool: WorkerPool, sink: RecordingSink) -> ApplicationContainer:
    """A parent application whose subagents run on `pool`."""
    helper = profile("helper", provider="openai", model="worker-model", max_turns=3)
    app = subagent_app(
        ScriptedProvider([], name="openai"), workspace=tmp_path, profiles=[helper], sink=sink
    )
    app.subagent_executor.override(providers.Object(RayExecutor(pool, sink)))
    return app


def runner_of(app: ApplicationContainer) -> SubagentRunner:
    """The runner of a foreground scope's `task` tool."""
    return foreground_with_runner(app)[1]


async def wait_for(condition: Any, within: float = 20.0) -> None:
    """Poll `condition` until it holds; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_task_on_ray_returns_the_same_result_with_where_it_ran(
    tmp_path: Path, pool: WorkerPool
) -> None:
    """A subagent on Ray reports GOAL, its answer, usage, and executor "ray" with a node id."""
    sink = RecordingSink()
    parent, runner = foreground_with_runner(ray_app(tmp_path, pool, sink))
    result = await runner.run(TaskRequest(subagent_name="helper", goal_prompt="say hi"))
    assert result.terminate_reason is TerminateReason.GOAL, result.error
    assert "You said: say hi" in result.final_message
    assert result.model == "worker-model"
    assert result.parent_runtime_id == parent.runtime_id
    assert result.runtime_id not in ("", parent.runtime_id)
    assert result.usage.input_tokens == 3
    assert result.executor == "ray"
    assert result.node_id == ray.get_runtime_context().get_node_id()
    document = result.as_json()
    assert (document["executor"], document["node_id"]) == ("ray", result.node_id)
    assert {"api_request", "api_response"} <= {
        name for name, fields in sink.events if fields.get("runtime_id") == result.runtime_id
    }


def running_remotely(pool: WorkerPool) -> int:
    """How many subagents the pool's workers are running now."""
    return sum(ray.get([handle.running.remote() for handle in pool.handles()]))


async def test_streamed_text_arrives_before_the_end_and_cancel_stops_the_remote_run(
    tmp_path: Path, pool: WorkerPool
) -> None:
    """Text and telemetry stream back while the subagent runs; cancelling stops it remotely."""
    sink = RecordingSink()
    runner = runner_of(ray_app(tmp_path, pool, sink))
    run = runner.start(TaskRequest(subagent_name="helper", goal_prompt="speak slowly"))
    await wait_for(lambda: run.runtime_id != "")
    await wait_for(lambda: any(f.get("runtime_id") == run.runtime_id for _, f in sink.events))
    await asyncio.sleep(0.5)
    assert running_remotely(pool) == 1
    run.cancel()
    result = await run.result()
    assert result.terminate_reason is TerminateReason.CANCELLED
    assert result.final_message.startswith("tick0 tick1 ")
    assert (result.executor, result.runtime_id) == ("ray", run.runtime_id)
    await wait_for(lambda: running_remotely(pool) == 0, within=10)


async def test_a_timeout_keeps_the_streamed_text_and_ends_the_remote_run(
    tmp_path: Path, pool: WorkerPool
) -> None:
    """A subagent past its timeout ends in TIMEOUT with what it streamed, and stops running."""
    runner = runner_of(ray_app(tmp_path, pool, RecordingSink()))
    request = TaskRequest(subagent_name="helper", goal_prompt="speak slowly", timeout_seconds=0.6)
    result = await runner.run(request)
    assert result.terminate_reason is TerminateReason.TIMEOUT
    assert result.final_message.startswith("tick0 ")
    assert 500 <= result.duration_ms < 5000
    await wait_for(lambda: running_remotely(pool) == 0, within=10)


async def test_cancelling_the_parent_turn_cancels_the_remote_run(
    tmp_path: Path, pool: WorkerPool
) -> None:
    """A parent turn cancelled while its subagent runs on Ray stops that subagent too."""
    runner = runner_of(ray_app(tmp_path, pool, RecordingSink()))
    turn = asyncio.create_task(
        runner.run(TaskRequest(subagent_name="helper", goal_prompt="speak slowly"))
    )
    await wait_for(lambda: running_remotely(pool) == 1)
    turn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await turn
    await wait_for(lambda: running_remotely(pool) == 0, within=10)


async def test_runs_started_together_share_calls_yet_end_apart(
    tmp_path: Path, pool: WorkerPool
) -> None:
    """Four subagents started at once go two to each worker; the quick ones get their own
    answers, and cancelling one slow run stops it alone: its neighbour keeps running."""
    runner = runner_of(ray_app(tmp_path, pool, RecordingSink()))
    prompts = ["speak slowly", "quick one", "speak slowly", "quick two"]
    runs = [runner.start(TaskRequest(subagent_name="helper", goal_prompt=p)) for p in prompts]
    quick = [await runs[1].result(), await runs[3].result()]
    assert [result.terminate_reason for result in quick] == [TerminateReason.GOAL] * 2
    assert "You said: quick one" in quick[0].final_message
    assert "You said: quick two" in quick[1].final_message
    await wait_for(lambda: runs[0].runtime_id != "" and runs[2].runtime_id != "")
    await wait_for(lambda: running_remotely(pool) == 2)
    runs[0].cancel()
    first = await runs[0].result()
    assert first.terminate_reason is TerminateReason.CANCELLED
    await wait_for(lambda: running_remotely(pool) == 1, within=10)
    await asyncio.sleep(0.3)
    assert running_remotely(pool) == 1
    runs[2].cancel()
    second = await runs[2].result()
    assert second.terminate_reason is TerminateReason.CANCELLED
    assert second.final_message.startswith("tick0 tick1 ")
    assert len({first.runtime_id, second.runtime_id, *(r.runtime_id for r in quick)}) == 4
    await wait_for(lambda: running_remotely(pool) == 0, within=10)
