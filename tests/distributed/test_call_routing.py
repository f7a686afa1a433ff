"""How `RayExecutor` routes runs to worker calls and back, without Ray: fake actors, scripted
streams, `ray.cancel` recorded.

Runs started in one turn of the event loop go out as one `run` call per worker; every item a
worker streams back reaches the run at its index in that call, and no other. A run given up on
is cancelled on its worker (and the call's stream with it, when it is the call's last); a
`Failed` item ends one run, a dead worker every unfinished run of its call.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from hypothesis import given, settings
from hypothesis import strategies as st
from ray.exceptions import RayActorError

from chatscope.config.settings import RaySettings
from chatscope.distributed.executor import RayExecutor, WorkerPool, _Worker
from chatscope.distributed.stream import Event, Failed, Finished, Routed, Started, StreamItem
from chatscope.services.events import TextDelta
from chatscope.services.frozen import FrozenDict
from chatscope.services.messages import Usage
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.services.subagents import task as subagents
from chatscope.services.subagents.remote import RemoteTask
from chatscope.services.subagents.task import TaskResult
from chatscope.services.subagents.task import TerminateReason as Reason
from chatscope.testing import ScriptedProvider
from tests.support.subagents import foreground_with_runner, profile, subagent_app

Batches = AsyncIterator[tuple[Routed, ...]]
Script = Callable[[int, tuple[RemoteTask, ...]], Batches]  # (worker number, tasks of a call)


async def refs(batches: Batches) -> AsyncIterator[asyncio.Future[tuple[Routed, ...]]]:
    """A streaming call's refs: each batch comes as an already-resolved future."""
    async for batch in batches:
        ref: asyncio.Future[tuple[Routed, ...]] = asyncio.get_running_loop().create_future()
        ref.set_result(batch)
        yield ref


class Method:
    """An actor method: `.remote(*args)` records the call and returns `answer(*args)`."""

    def __init__(self, answer: Callable[..., Any]) -> None:
        self.answer, self.calls, self.returned = answer, list[tuple[Any, ...]](), list[Any]()

    def options(self, **options: Any) -> Method:
        assert options == {"num_returns": "streaming"}
        return self

    def remote(self, *args: Any) -> Any:
        self.calls.append(args)
        self.returned.append(self.answer(*args))
        return self.returned[-1]


class FakeHandle:
    """Worker actor number `number`: `run` streams what `script` yields, `cancel` is recorded."""

    def __init__(self, number: int, script: Script) -> None:
        self.run = Method(lambda _call, tasks: refs(script(number, tasks)))
        self.cancel = Method(lambda _call, _index: None)

    def tasks(self) -> tuple[RemoteTask, ...]:
        """The tasks of its calls (it gets one at most)."""
        return tuple(task for _, tasks in self.run.calls for task in tasks)


class FakePool(WorkerPool):
    """`workers` fake actors running `script`; with `fail_after`, the lease after that many
    raises (0: the fill itself raises, as when Ray cannot start)."""

    def __init__(self, workers: int, script: Script, fail_after: int | None = None) -> None:
        super().__init__(RaySettings(workers=workers))
        self.script, self.fail_after, self.leases = script, fail_after, 0
        self.made: list[FakeHandle] = []
        self.replaced: list[_Worker] = []

    async def leased(self) -> _Worker:
        if self.fail_after is not None and 0 < self.fail_after <= self.leases:
            raise RuntimeError("Ray cannot be reached")
        self.leases += 1
        return await super().leased()

    def _fill(self) -> None:
        if self.fail_after == 0:
            raise RuntimeError("Ray cannot start")
        self._workers = [_Worker(self._new_actor()) for _ in range(self._settings.workers or 1)]

    def _new_actor(self) -> FakeHandle:
        self.made.append(FakeHandle(len(self.made), self.script))
        return self.made[-1]

    def replace(self, worker: _Worker) -> None:
        self.replaced.append(worker)
        super().replace(worker)

    def shutdown(self) -> None:
        self._workers.clear()

    def idle(self) -> bool:
        """Whether every worker, dead or alive, has all its leases back."""
        return all(worker.running == 0 for worker in [*self.replaced, *self._workers])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("parent")


Start = Callable[[int], subagents.SubagentRun]


@contextlib.asynccontextmanager
async def on_fake_ray(pool: WorkerPool, home: Path) -> AsyncIterator[tuple[Start, list[Any]]]:
    """How to start run n (goal "run<n>") from a parent's `task` runner on `pool`, and the
    streams given to `ray.cancel`. Runs still going at the end (a failed test) are stopped
    while `ray.cancel` is patched."""
    helper = profile("helper", provider="openai", model="worker-model")
    fake, executor = ScriptedProvider([], name="openai"), RayExecutor(pool, RecordingSink())
    app = subagent_app(fake, workspace=home, profiles=[helper], max_concurrent_subagents=8)
    app.subagent_executor.override(providers.Object(executor))
    runner = foreground_with_runner(app)[1]
    runs: list[subagents.SubagentRun] = []
    cancelled: list[Any] = []

    def start(number: int) -> subagents.SubagentRun:
        runs.append(
            runner.start(subagents.TaskRequest(subagent_name="helper", goal_prompt=f"run{number}"))
        )
        return runs[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("chatscope.distributed.executor.ray.cancel", cancelled.append)
        patch.setattr("chatscope.distributed.executor.ray.is_initialized", lambda: True)
        try:
            async with asyncio.timeout(10):  # a run left waiting fails the test, not hangs it
                yield start, cancelled
        finally:
            for run in runs:
                run.cancel()
            await asyncio.gather(*(run.result() for run in runs))
            executor.shutdown()


def goal_of(task: RemoteTask) -> str:
    return task.request.goal_prompt


def started(task: RemoteTask) -> Started:
    return Started(f"rt-{goal_of(task)}", "openai", "worker-model", "node-1")


RESULT = TaskResult(
    "helper", "", None, "openai", "worker-model", Reason.GOAL, "", FrozenDict(), Usage(3, 2), 1, 1.0
)


def answer(task: RemoteTask) -> Finished:
    """The worker's result for `task`: its own runtime id and text."""
    goal, parent = goal_of(task), task.parent_runtime_id
    result = dataclasses.replace(RESULT, runtime_id=f"rt-{goal}", parent_runtime_id=parent)
    return Finished(dataclasses.replace(result, final_message=f"answer to {goal}", executor="ray"))


def opening(tasks: Sequence[RemoteTask]) -> tuple[Routed, ...]:
    """A first batch: each run's Started and its first text, "partial <goal>"."""
    return tuple(
        (index, item)
        for index, task in enumerate(tasks)
        for item in (started(task), Event(TextDelta(f"partial {goal_of(task)}")))
    )


def ended(result: TaskResult, number: int, reason: Reason = Reason.GOAL) -> bool:
    """Whether run `number` ended in `reason` with its own runtime id, and its own answer (GOAL)
    or the text it streamed first (cut short)."""
    text = f"answer to run{number}" if reason is Reason.GOAL else f"partial run{number}"
    mine = (reason, f"rt-run{number}", text)
    return (result.terminate_reason, result.runtime_id, result.final_message) == mine


def shuffled(rng: random.Random) -> Script:
    """Each run streams Started, two texts and its result; the runs' items are merged at
    random and cut into random batches, with other calls' batches in between."""

    async def script(_worker: int, tasks: tuple[RemoteTask, ...]) -> Batches:
        lanes: list[list[StreamItem]] = [
            [started(task), Event(TextDelta("answer ")), Event(TextDelta(f"to {goal_of(task)}"))]
            for task in tasks
        ]
        for lane, task in zip(lanes, tasks, strict=True):
            lane.append(answer(task))
        routed: list[Routed] = []
        while any(lanes):
            index = rng.choice([index for index, lane in enumerate(lanes) if lane])
            routed.append((index, lanes[index].pop(0)))
        while routed:
            size = rng.randint(1, len(routed))
            yield tuple(routed[:size])
            del routed[:size]
            if rng.random() < 0.5:
                await asyncio.sleep(0)

    return script


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8), st.integers(1, 3), st.randoms(use_true_random=True))
async def test_runs_started_together_share_one_call_per_worker_and_get_their_own_results(
    workspace: Path, runs: int, workers: int, rng: random.Random
) -> None:
    """Runs started at once make one `run` call per used worker, spread evenly; however the
    workers interleave and batch the runs' items, each run gets exactly its own result, and
    every lease is returned."""
    pool = FakePool(workers, shuffled(rng))
    async with on_fake_ray(pool, workspace) as (start, cancelled):
        results = await asyncio.gather(*(start(n).result() for n in range(runs)))
        assert all(ended(result, n) for n, result in enumerate(results)), results
        assert all(len(handle.run.calls) <= 1 for handle in pool.made)
        sizes = sorted(len(handle.tasks()) for handle in pool.made)
        assert sizes == sorted(runs // workers + (i < runs % workers) for i in range(workers))
        sent = sorted(goal_of(task) for handle in pool.made for task in handle.tasks())
        assert sent == sorted(f"run{n}" for n in range(runs))
        assert all(handle.cancel.calls == [] for handle in pool.made)
        assert (cancelled, pool.idle()) == ([], True)


def stalling(gate: asyncio.Event, abandoned: set[str]) -> Script:
    """The opening batch; once `gate` opens, the runs not `abandoned` finish (a cancelled run
    sends nothing more, as on a real worker)."""

    async def script(_worker: int, tasks: tuple[RemoteTask, ...]) -> Batches:
        yield opening(tasks)
        await gate.wait()
        yield tuple((i, answer(t)) for i, t in enumerate(tasks) if goal_of(t) not in abandoned)

    return script


@settings(max_examples=25, deadline=None)
@given(st.data(), st.integers(2, 6))
async def test_cancelled_runs_are_cancelled_on_their_worker_and_the_call_with_its_last(
    workspace: Path, data: st.DataObject, runs: int
) -> None:
    """Cancelling some runs of a shared call sends `cancel` for exactly their indexes, ends
    them CANCELLED with their streamed text, and leaves the others to finish; the call's
    stream itself is cancelled, once, only when its last run is one given up on."""
    dropped = data.draw(st.sets(st.integers(0, runs - 1), min_size=1), label="cancelled")
    gate = asyncio.Event()
    pool = FakePool(1, stalling(gate, {f"run{n}" for n in dropped}))
    async with on_fake_ray(pool, workspace) as (start, cancelled):
        going = [start(n) for n in range(runs)]
        for _ in range(5000):  # until the worker has streamed each run's Started
            if all(run.runtime_id for run in going):
                break
            await asyncio.sleep(0.001)
        for n in dropped:
            going[n].cancel()
        for n in dropped:
            assert ended(await going[n].result(), n, Reason.CANCELLED)
        (handle,) = pool.made
        ((call_id, tasks),) = handle.run.calls
        index_of = {goal_of(task): index for index, task in enumerate(tasks)}
        expected = sorted((call_id, index_of[f"run{n}"]) for n in dropped)
        assert sorted(handle.cancel.calls) == expected
        if len(dropped) < runs:
            assert cancelled == []  # the others are still read
        gate.set()
        for n in set(range(runs)) - dropped:
            assert ended(await going[n].result(), n)
        everyone_dropped = len(dropped) == runs
        assert cancelled == (handle.run.returned if everyone_dropped else [])
        assert sorted(handle.cancel.calls) == expected  # none for the runs that finished
        assert pool.idle()


def dying(finishing: int) -> Script:
    """The opening batch; worker 0 then finishes its first `finishing` runs (never all) and
    dies, the other workers finish every run."""

    async def script(worker: int, tasks: tuple[RemoteTask, ...]) -> Batches:
        yield opening(tasks)
        done = len(tasks) if worker else min(finishing, len(tasks) - 1)
        yield tuple((index, answer(task)) for index, task in enumerate(tasks[:done]))
        if not worker:
            raise RayActorError()

    return script


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 7), st.integers(0, 3))
async def test_a_dead_worker_ends_the_unfinished_runs_of_its_call_and_is_replaced(
    workspace: Path, runs: int, finishing: int
) -> None:
    """A stream that raises RayActorError ends its call's unfinished runs in ERROR "worker
    died" with the text they streamed; its finished runs and the other worker's runs keep
    their results, and the dead worker is replaced once."""
    pool = FakePool(2, dying(finishing))
    async with on_fake_ray(pool, workspace) as (start, _):
        results = await asyncio.gather(*(start(n).result() for n in range(runs)))
        dead, alive = pool.made[:2]
        died = {goal_of(task) for task in dead.tasks()[min(finishing, len(dead.tasks()) - 1) :]}
        assert died
        for n, result in enumerate(results):
            if f"run{n}" in died:
                assert ended(result, n, Reason.ERROR), result
                assert (result.error or "").startswith("worker died: "), result.error
            else:
                assert ended(result, n), result
        assert [worker.handle for worker in pool.replaced] == [dead]
        assert pool.handles() == (pool.made[2], alive)
        assert pool.idle()


async def test_a_failed_run_ends_in_error_and_its_neighbours_finish(workspace: Path) -> None:
    """A `Failed` item ends only its own run, in ERROR with that text and what it streamed;
    the runs beside it in the same call and batch finish, and nothing is cancelled."""

    async def script(_worker: int, tasks: Sequence[RemoteTask]) -> Batches:
        yield opening(tasks)
        yield ((1, Failed("ValueError: boom")), (0, answer(tasks[0])))
        yield ((2, answer(tasks[2])),)

    pool = FakePool(1, script)
    async with on_fake_ray(pool, workspace) as (start, cancelled):
        first, failed, last = await asyncio.gather(*(start(n).result() for n in range(3)))
        assert ended(first, 0)
        assert ended(last, 2)
        assert ended(failed, 1, Reason.ERROR)
        assert (failed.error, failed.executor) == ("ValueError: boom", "ray")
        assert len(pool.made[0].run.calls) == 1
        assert pool.made[0].cancel.calls == []
        assert (cancelled, pool.idle()) == ([], True)


@pytest.mark.parametrize(("fail_after", "cause"), [(0, "cannot start"), (2, "cannot be reached")])
async def test_runs_end_in_error_when_no_worker_can_be_leased(
    workspace: Path, fail_after: int, cause: str
) -> None:
    """When the pool cannot be filled (or a lease fails midway), every run of the batch ends
    in ERROR naming the cause, no call is made, and the leases taken are given back."""
    pool = FakePool(2, stalling(asyncio.Event(), set()), fail_after=fail_after)
    async with on_fake_ray(pool, workspace) as (start, cancelled):
        results = await asyncio.gather(*(start(n).result() for n in range(3)))
        for result in results:
            assert result.terminate_reason is Reason.ERROR
            assert result.error == f"RuntimeError: Ray {cause}"
        assert all(handle.run.calls == [] for handle in pool.made)
        assert len(pool.made) == (0 if fail_after == 0 else 2)
        assert (cancelled, pool.idle()) == ([], True)
