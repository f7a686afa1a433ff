"""The worker's own logic, run in this process (a Ray actor's code is not measured by
coverage): what one subagent run streams, in order, and how bad container paths are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chatscope.distributed.stream import Event, Finished, Record, Started
from chatscope.distributed.worker import SubagentWorker, build_container
from chatscope.errors import ConfigurationError, ToolError
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
    items: list[Any] = []
    async for batch in worker.run(task_for()):
        items.extend(batch)
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
    items: list[Any] = []
    async for batch in worker.run(task_for(wanted=frozenset())):
        items.extend(batch)
    await worker.stop()
    assert not [item for item in items if isinstance(item, Record)]
    assert isinstance(items[-1], Finished)


async def test_an_unknown_profile_is_refused_by_name(worker: SubagentWorker) -> None:
    """A profile the worker does not have is a `ToolError` naming it."""
    with pytest.raises(ToolError, match="'nobody'"):
        async for _ in worker.run(task_for("nobody")):
            pass
    await worker.stop()


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
