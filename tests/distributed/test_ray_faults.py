"""Subagents on Ray: a dead worker ends the run in ERROR and the parent chat goes on; parents'
keys and histories never reach a worker, and concurrent parents' subagents stay apart."""

from __future__ import annotations

import asyncio
import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from dependency_injector import providers

from chatscope.containers.application import ApplicationContainer
from chatscope.distributed import executor as executor_module
from chatscope.distributed.executor import RayExecutor, WorkerPool
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.messages import Message
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.services.subagents.remote import RemoteTask, describe_task
from chatscope.services.subagents.task import TaskRequest, TerminateReason
from chatscope.testing import build_test_app
from tests.distributed.conftest import WORKER_KEY, worker_pool
from tests.distributed.test_ray_executor import ray_app, running_remotely, wait_for
from tests.support.cli import openai_text_stream, openai_tool_call_stream
from tests.support.replay_server import ReplayServer, ScriptedResponse, replay_server
from tests.support.subagents import foreground_with_runner, profile

pytestmark = pytest.mark.usefixtures("ray_cluster")


@pytest.fixture
def lone_worker(
    ray_cluster: str, worker_home: Path, worker_llm: ReplayServer
) -> Iterator[WorkerPool]:
    """A pool of one worker, for a test that kills it."""
    with worker_pool(1, worker_home, worker_llm) as workers:
        yield workers


def parent_app(tmp_path: Path, server: ReplayServer, pool: WorkerPool) -> ApplicationContainer:
    """A parent chat on a mock LLM of its own, whose subagents run on `pool`."""
    helper = profile("helper", provider="openai", model="worker-model")
    app = build_test_app(
        workspace=tmp_path,
        provider="openai",
        providers={"openai": {"base_url": f"{server.url}/v1"}},
    )
    app.subagent_profiles.override(providers.Object({"helper": helper}))
    app.subagent_executor.override(providers.Object(RayExecutor(pool, RecordingSink())))
    return app


def _sse(body: bytes) -> ScriptedResponse:
    return ScriptedResponse.sse(body)


async def test_a_dead_worker_ends_the_run_in_error_and_the_parent_chat_goes_on(
    tmp_path: Path, lone_worker: WorkerPool
) -> None:
    """Killing the worker mid-run gives the parent an ERROR result naming the cause; the
    parent's turn completes, its next turn too, and a later subagent runs on a new worker."""
    call = {"subagent_name": "helper", "goal_prompt": "speak slowly"}
    with replay_server(
        _sse(openai_tool_call_stream("call_1", "task", call)),
        _sse(openai_text_stream("the helper failed")),
        _sse(openai_text_stream("second turn")),
    ) as server:
        app = parent_app(tmp_path, server, lone_worker)
        await app.init_resources()  # type: ignore[misc]
        try:
            chat = app.runtime.chat_session(context=app.runtime.scopes().foreground())
            turn = asyncio.create_task(chat.send("delegate"))
            await wait_for(lambda: running_remotely(lone_worker) == 1)
            await asyncio.sleep(0.5)  # a few words (one every 50 ms) stream back first
            (victim,) = lone_worker.handles()
            ray.kill(victim)
            first = await asyncio.wait_for(turn, 30)
            second = await chat.send("and now?")
        finally:
            await app.shutdown_resources()  # type: ignore[misc]
        tool_result = _tool_result(server.requests[1].json())
    assert (first.text, second.text) == ("the helper failed", "second turn")
    assert tool_result["terminate_reason"] == "ERROR"
    assert tool_result["error"].startswith("worker died: ")
    assert (tool_result["executor"], tool_result["final_message"][:6]) == ("ray", "tick0 ")
    assert lone_worker.handles() != (victim,)
    runner = foreground_with_runner(ray_app(tmp_path, lone_worker, RecordingSink()))[1]
    later = await runner.run(TaskRequest(subagent_name="helper", goal_prompt="still there?"))
    assert later.terminate_reason is TerminateReason.GOAL, later.error


async def test_a_dead_worker_ends_every_run_of_its_calls_in_error(
    tmp_path: Path, lone_worker: WorkerPool
) -> None:
    """Two subagents sent to one worker in one call both end in ERROR naming the death, each
    with its own streamed text; the worker is replaced once."""
    runner = foreground_with_runner(ray_app(tmp_path, lone_worker, RecordingSink()))[1]
    runs = [
        runner.start(TaskRequest(subagent_name="helper", goal_prompt="speak slowly"))
        for _ in range(2)
    ]
    await wait_for(lambda: running_remotely(lone_worker) == 2)
    await asyncio.sleep(0.3)
    (victim,) = lone_worker.handles()
    ray.kill(victim)
    results = [await asyncio.wait_for(run.result(), 30) for run in runs]
    for result in results:
        assert result.terminate_reason is TerminateReason.ERROR
        assert result.error is not None
        assert result.error.startswith("worker died: ")
        assert result.final_message.startswith("tick0 ")
    assert results[0].runtime_id != results[1].runtime_id
    assert len(lone_worker.handles()) == 1
    assert lone_worker.handles() != (victim,)


def _tool_result(body: dict[str, Any]) -> dict[str, Any]:
    content = next(m["content"] for m in body["messages"] if m["role"] == "tool")
    parsed: dict[str, Any] = json.loads(content)
    return parsed


@pytest.fixture(scope="module")
def shared_pool(
    ray_cluster: str, worker_home: Path, worker_llm: ReplayServer
) -> Iterator[WorkerPool]:
    with worker_pool(2, worker_home, worker_llm) as workers:
        yield workers


async def test_concurrent_parents_subagents_on_ray_stay_apart_and_get_no_parent_secret(
    tmp_path: Path,
    shared_pool: WorkerPool,
    worker_llm: ReplayServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Subagents of concurrent parents get distinct runtime ids and their own parent's id; no
    parent key or history is in what is shipped or in what the worker's LLM receives."""
    shipped: list[RemoteTask] = []
    describe = describe_task

    def spy(*args: Any) -> RemoteTask:
        shipped.append(describe(*args))
        return shipped[-1]

    monkeypatch.setattr(executor_module, "describe_task", spy)
    app = ray_app(tmp_path, shared_pool, RecordingSink())
    parents = [
        foreground_with_runner(
            app,
            ScopeRequest.create(
                api_key=f"sk-parent-{index}-secret",
                history=InMemoryHistory([Message.user(f"parent history {index}")]),
            ),
        )
        for index in range(4)
    ]
    results = await asyncio.gather(
        *(
            runner.run(TaskRequest(subagent_name="helper", goal_prompt=f"isolate {index}"))
            for index, (_, runner) in enumerate(parents)
        )
    )
    assert len({result.runtime_id for result in results}) == 4
    for (parent, _), result, index in zip(parents, results, range(4), strict=True):
        assert result.terminate_reason is TerminateReason.GOAL, result.error
        assert result.parent_runtime_id == parent.runtime_id
        assert f"You said: isolate {index}" in result.final_message
    payload = pickle.dumps(shipped)
    assert len(shipped) == 4
    assert b"sk-parent" not in payload
    assert b"parent history" not in payload
    received = [r for r in worker_llm.requests if b"isolate" in r.body]
    assert len(received) == 4
    for request in received:
        assert request.headers["authorization"] == f"Bearer {WORKER_KEY}"
        assert b"sk-parent" not in request.body
        assert b"parent history" not in request.body
        assert "sk-parent" not in str(request.headers)
