"""The worker's own logic, run in this process (a Ray actor's code is not measured by
coverage): what one subagent run streams, in order, and how bad container paths are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chatscope.distributed.stream import Event, Failed, Finished, Record, Started
from chatscope.distributed.worker import SubagentWorker, build_container
from chatscope.errors import ConfigurationError
from chatscope.services.events import TextDelta
from chatscope.services.subagents.remote import RemoteTask
from chatscope.services.subagents.task import TaskRequest, TerminateReason
from tests.distributed.conftest import worker_env
from tests.support.replay_server import ReplayServer

pytestmark = pytest.mark.usefixtures("ray_cluster")

WANTED = frozenset({"api_request", "api_response"})


@pytest.fixture
def worker(
    monkeypatch: pytest.MonkeyPatch, worker_home: Path, worker_llm: ReplayServer
) -> SubagentWorker:
    """A worker built here, from an environment pointing at the mock LLM."""
    for name, value in worker_env(worker_home, worker_llm).items():
        monkeypatch.setenv(name, value)
    return SubagentWorker()


async def run_alone(worker: SubagentWorker, task: RemoteTask) -> list[Any]:
    """What a call of `task` alone streams, in order, untagged (each item is run 0's)."""
    routed = [item async for batch in worker.run("call-1", (task,)) for item in batch]
    assert {index for index, _ in routed} == {0}
    return [item for _, item in routed]


def task_for(profile: str = "helper", wanted: frozenset[str] = WANTED) -> RemoteTask:
    """A task as a parent would ship it."""
    request = TaskRequest(subagent_name=profile, goal_prompt="say hello")
    return RemoteTask(
        profile_name=profile, request=request, parent_runtime_id="parent-1", wanted_records=wanted
    )


async def test_a_run_streams_its_start_events_wanted_records_and_result_in_order(
    worker: SubagentWorker,
) -> None:
    """`Started` first, the text and the parent's wanted records while it runs, `Finished`
    last, with the worker's node; nothing is left running."""
    items = await run_alone(worker, task_for())
    await worker.stop()
    started, finished = items[0], items[-1]
    assert isinstance(started, Started)
    assert started.node_id == worker.node_id()
    assert isinstance(finished, Finished)
    result = finished.result
    assert (result.executor, result.node_id) == ("ray", worker.node_id())
    assert result.terminate_reason is TerminateReason.GOAL
    assert (result.runtime_id, result.parent_runtime_id) == (started.runtime_id, "parent-1")
    middle = items[1:-1]
    text = "".join(
        i.event.text for i in middle if isinstance(i, Event) and isinstance(i.event, TextDelta)
    )
    assert text == result.final_message
    records = [item for item in middle if isinstance(item, Record)]
    assert {record.name for record in records} == WANTED
    assert {record.fields["runtime_id"] for record in records} == {started.runtime_id}
    assert worker.running() == 0


async def test_a_parent_that_wants_no_records_gets_none(worker: SubagentWorker) -> None:
    """No record is built or sent for a parent whose sink keeps nothing."""
    items = await run_alone(worker, task_for(wanted=frozenset()))
    await worker.stop()
    assert not [item for item in items if isinstance(item, Record)]
    assert isinstance(items[-1], Finished)


async def test_an_unknown_profile_fails_that_run_only_naming_it(worker: SubagentWorker) -> None:
    """A profile the worker does not have ends its run in `Failed` naming it; the run beside
    it in the same call finishes."""
    items = [
        item
        async for batch in worker.run("call-1", (task_for("nobody"), task_for()))
        for item in batch
    ]
    await worker.stop()
    failed = [item for index, item in items if index == 0]
    assert len(failed) == 1
    assert isinstance(failed[0], Failed)
    assert "'nobody'" in failed[0].error
    assert isinstance(items[-1][1], Finished)
    assert items[-1][0] == 1


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("no_such_module_anywhere:build", "cannot be imported"),
        ("tests.distributed.test_worker_in_process:task_for", "did not return"),
        ("tests.distributed.test_worker_in_process:missing", "cannot be imported"),
    ],
)
def test_a_container_path_that_builds_no_container_is_refused(path: str, problem: str) -> None:
    """`CHATSCOPE_RAY__CONTAINER` must name a callable returning an application container."""
    with pytest.raises(ConfigurationError, match=problem):
        build_container(path)


async def test_a_cancel_that_arrives_before_its_call_stops_that_run_only(
    worker: SubagentWorker,
) -> None:
    """Ray may start a `cancel` before the call it names: the run is never started, its
    neighbour in the call finishes, and the call's stream still ends."""
    await worker.cancel("call-early", 0)
    items = [
        item async for batch in worker.run("call-early", (task_for(), task_for())) for item in batch
    ]
    await worker.stop()
    assert [index for index, _ in items] == [1] * len(items)
    assert isinstance(items[-1][1], Finished)
    assert worker.running() == 0


async def test_a_worker_runs_no_more_subagents_at_once_than_its_concurrency(
    worker_home: Path, worker_llm: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a concurrency of one, the runs of one call take turns: each starts after the one
    before it has finished."""
    for name, value in worker_env(worker_home, worker_llm).items():
        monkeypatch.setenv(name, value)
    one_at_a_time = SubagentWorker(concurrency=1)
    routed = [
        item
        async for batch in one_at_a_time.run("call-1", (task_for(), task_for(), task_for()))
        for item in batch
    ]
    await one_at_a_time.stop()
    order = [(index, type(item)) for index, item in routed if isinstance(item, Started | Finished)]
    assert order == [
        (0, Started),
        (0, Finished),
        (1, Started),
        (1, Finished),
        (2, Started),
        (2, Finished),
    ]
