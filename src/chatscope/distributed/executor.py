"""The parent side: `RayExecutor` runs each subagent on a worker actor of a Ray cluster.

Nothing of a subagent's scope is built here. The executor ships a `RemoteTask` to the least
busy of a pool of `SubagentWorker` actors (created on first use, killed when the application
container shuts down) and reads back what the worker's streaming generator yields, as it
comes: text and usage into the run's progress, telemetry records into this application's
sink, the `TaskResult` last. Subagents started together (a model's parallel `task` calls) go
to each worker in one call: a Ray call costs the parent, Ray and the worker far more than a
subagent's share of a batch. Cancelling a run (the parent's turn, a timeout) cancels it on
its worker; a worker that dies ends its runs in `ERROR` and is replaced for later runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import ray
from opentelemetry import propagate
from opentelemetry.context import Context
from ray.exceptions import RayActorError, RayError, RayTaskError, WorkerCrashedError

from chatscope.config.settings import RaySettings, Settings
from chatscope.distributed.stream import Event, Failed, Finished, Record, Started, StreamItem
from chatscope.distributed.worker import SubagentWorker
from chatscope.services.runtime.observability.telemetry import TELEMETRY_EVENTS
from chatscope.services.runtime.ports import TelemetrySink
from chatscope.services.runtime.state import new_id
from chatscope.services.subagents.remote import (
    RemoteProgress,
    RemoteTask,
    describe_task,
    limits_of,
)
from chatscope.services.subagents.request import TaskResult, TerminateReason
from chatscope.services.subagents.task import SubagentLaunch, SubagentRun, describe_error

__all__ = ["RayExecutor", "WorkerPool", "ray_executor", "trace_context_of"]

# How long past its own timeout a remote run may take before the parent gives up on it: the
# worker applies the timeout itself and answers within milliseconds when healthy.
_GRACE_SECONDS = 10.0
# How long the workers' containers get to shut down before the actors are killed.
_STOP_SECONDS = 5.0
# Calls a worker actor takes at once (Ray's own default for an async actor): batches of runs
# and `cancel`s. How many subagents it runs at once is `worker_concurrency`, kept by the worker.
_CALLS_AT_ONCE = 1000


@dataclass(slots=True)
class _Worker:
    handle: Any
    running: int = 0


class WorkerPool:
    """The worker actors of one application, created on first use; the least busy runs next.

    `runtime_env` is passed to every actor (tests give workers their own environment this
    way); `address` is Ray's standard `RAY_ADDRESS`, or None for a local cluster. Starting or
    joining the cluster takes seconds, so `leased` does it on a thread: the event loop (a web
    service's other requests) goes on meanwhile, and concurrent first runs start it once.
    """

    __slots__ = ("_address", "_filling", "_owns_ray", "_runtime_env", "_settings", "_workers")

    def __init__(
        self,
        settings: RaySettings,
        *,
        address: str | None = None,
        runtime_env: Mapping[str, Any] | None = None,
    ) -> None:
        self._settings = settings
        self._address = address
        self._runtime_env = dict(runtime_env) if runtime_env is not None else None
        self._workers: list[_Worker] = []
        self._owns_ray = False
        self._filling = threading.Lock()

    async def leased(self) -> _Worker:
        """The least busy worker, counted as running one more subagent; the actors are
        created on a thread the first time."""
        if not self._workers:
            await asyncio.to_thread(self._fill_once)
        worker = min(self._workers, key=lambda candidate: candidate.running)
        worker.running += 1
        return worker

    def release(self, worker: _Worker) -> None:
        """`worker` finished one subagent."""
        worker.running -= 1

    def replace(self, worker: _Worker) -> None:
        """`worker` died: later runs go to a new one."""
        if worker in self._workers:
            self._workers[self._workers.index(worker)] = _Worker(self._new_actor())

    def handles(self) -> tuple[Any, ...]:
        """The actors now in the pool."""
        return tuple(worker.handle for worker in self._workers)

    def shutdown(self) -> None:
        """Stop every actor's container (a few seconds at most), kill the actors; shut Ray
        down if this pool started it."""
        stopping = [worker.handle.stop.remote() for worker in self._workers]
        with contextlib.suppress(RayError):
            ray.get(stopping, timeout=_STOP_SECONDS)
        for worker in self._workers:
            ray.kill(worker.handle)
        self._workers.clear()
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False

    def _fill_once(self) -> None:
        with self._filling:
            if not self._workers:
                self._fill()

    def _fill(self) -> None:
        if not ray.is_initialized():
            self._init_ray()
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        count = self._settings.workers or max(1, int(resources.get("CPU", 1)))
        self._workers = [_Worker(self._new_actor()) for _ in range(count)]

    def _init_ray(self) -> None:
        if self._address:
            ray.init(address=self._address)
        else:
            ray.init(num_cpus=self._settings.num_cpus, include_dashboard=False)
        self._owns_ray = True

    def _new_actor(self) -> Any:
        options: dict[str, Any] = {
            "max_concurrency": _CALLS_AT_ONCE,
            "scheduling_strategy": "SPREAD",
            "max_restarts": 0,
        }
        if self._runtime_env is not None:
            options["runtime_env"] = self._runtime_env
        actor_class: Any = ray.remote(SubagentWorker)
        settings = self._settings
        return actor_class.options(**options).remote(
            settings.container, settings.worker_concurrency
        )


class _Run:
    """One subagent's place on the wire: what its worker streamed back for it, in order (or
    the error that ended its call), and where it was sent."""

    __slots__ = ("call", "ended", "finished", "index", "items", "task", "worker")

    def __init__(self, task: RemoteTask) -> None:
        self.task = task
        self.items: asyncio.Queue[StreamItem | Exception] = asyncio.Queue()
        self.call: _Call | None = None
        self.worker: _Worker | None = None
        self.index = 0
        self.finished = False  # its result (or failure) came back
        self.ended = False  # this side is done with it


class _Call:
    """One remote call: how many of the runs sent in it are still read, and its stream."""

    __slots__ = ("call_id", "open", "stream", "worker")

    def __init__(self, worker: _Worker, runs: int) -> None:
        self.call_id = new_id()
        self.worker = worker
        self.open = runs
        self.stream: Any = None


class RayExecutor:
    """Runs subagents on a `WorkerPool`; `telemetry_sink` gets their telemetry records."""

    __slots__ = ("_pending", "_pool", "_readers", "_sink")

    def __init__(self, pool: WorkerPool, telemetry_sink: TelemetrySink) -> None:
        self._pool = pool
        self._sink = telemetry_sink
        self._pending: list[_Run] = []
        self._readers: set[asyncio.Task[None]] = set()

    @property
    def pool(self) -> WorkerPool:
        """The worker actors."""
        return self._pool

    def start(self, launch: SubagentLaunch) -> SubagentRun:
        """Ship the subagent's `RemoteTask` to a worker and start reading what comes back."""
        wanted = frozenset(name for name in TELEMETRY_EVENTS if self._sink.wants(name))
        task = describe_task(launch, trace_context_of(launch), wanted)
        progress = RemoteProgress(launch, "ray")
        job = asyncio.get_running_loop().create_task(
            self._execute(launch, task, progress), name=f"subagent {launch.profile.name} on ray"
        )
        return SubagentRun(job, progress)

    def shutdown(self) -> None:
        """Stop reading the calls under way and kill the workers."""
        for reader in self._readers:
            reader.cancel()
        self._pool.shutdown()

    async def _execute(
        self, launch: SubagentLaunch, task: RemoteTask, progress: RemoteProgress
    ) -> TaskResult:
        try:
            async with launch.limit:
                progress.streamed.start()
                return await self._remote(_Run(task), progress, _guard(launch))
        except asyncio.CancelledError:
            return progress.ended(TerminateReason.CANCELLED)

    async def _remote(self, run: _Run, progress: RemoteProgress, guard: float | None) -> TaskResult:
        self._submit(run)
        deadline = asyncio.timeout(guard)
        try:
            async with deadline:
                return await self._read(run, progress)
        except Exception as exc:
            return progress.ended(*_failure(exc, deadline))
        finally:
            self._end(run)

    def _submit(self, run: _Run) -> None:
        """Queue `run`; what is queued by the end of this turn of the event loop is sent then,
        one call per worker."""
        self._pending.append(run)
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self._send_pending)

    def _send_pending(self) -> None:
        runs = [run for run in self._pending if not run.ended]
        self._pending = []
        if runs:
            reader = asyncio.get_running_loop().create_task(self._send(runs))
            self._readers.add(reader)
            reader.add_done_callback(self._readers.discard)

    async def _send(self, runs: list[_Run]) -> None:
        """Lease a worker for each run, the least busy each time, and make one call per worker."""
        try:
            workers = await self._lease(len(runs))
        except Exception as exc:  # Ray could not be started or reached
            for run in runs:
                run.items.put_nowait(exc)
            return
        by_worker: dict[int, tuple[_Worker, list[_Run]]] = {}
        for run, worker in zip(runs, workers, strict=True):
            if run.ended:  # given up on while the workers were being started
                self._pool.release(worker)
                continue
            run.worker = worker
            by_worker.setdefault(id(worker), (worker, []))[1].append(run)
        await asyncio.gather(*(self._call(worker, group) for worker, group in by_worker.values()))

    async def _lease(self, count: int) -> list[_Worker]:
        workers: list[_Worker] = []
        try:
            for _ in range(count):
                workers.append(await self._pool.leased())
        except BaseException:
            for worker in workers:
                self._pool.release(worker)
            raise
        return workers

    async def _call(self, worker: _Worker, runs: list[_Run]) -> None:
        """Start one call of `runs` on `worker`; hand each item to its run until it ends."""
        runs = [run for run in runs if not run.ended]
        if not runs:
            return
        call = _Call(worker, len(runs))
        for index, run in enumerate(runs):
            run.call, run.index = call, index
        try:
            finished = await _relay(call, runs)
        except Exception as exc:  # the call could not be made, or its stream failed
            if isinstance(exc, RayActorError | WorkerCrashedError):
                self._pool.replace(worker)
            _fail(runs, exc)
        except BaseException:  # this reader was cancelled: the executor shuts down
            _fail(runs, RuntimeError("the subagent executor shut down"))
            raise
        else:
            if not finished:
                _fail(runs, RuntimeError("the worker's stream ended without a result"))

    async def _read(self, run: _Run, progress: RemoteProgress) -> TaskResult:
        while True:
            item = await run.items.get()
            if isinstance(item, Exception):
                run.finished = True  # its call is over: nothing is left to stop on a worker
                raise item
            result = self._take(item, progress)
            if result is not None:
                run.finished = True
                return result

    def _take(self, item: StreamItem, progress: RemoteProgress) -> TaskResult | None:
        if isinstance(item, Event):
            progress.observe(item.event)
        elif isinstance(item, Record):
            if self._sink.wants(item.name):
                self._sink.emit(item.name, item.fields)
        elif isinstance(item, Started):
            progress.begun(
                runtime_id=item.runtime_id,
                provider=item.provider,
                model=item.model,
                node_id=item.node_id,
            )
        elif isinstance(item, Finished):
            return item.result
        elif isinstance(item, Failed):
            return progress.ended(TerminateReason.ERROR, item.error)
        return None

    def _end(self, run: _Run) -> None:
        """`run` is over on this side: free its worker's slot; if it ended early (cancelled,
        timed out), stop it on its worker, and the whole call if it was the call's last."""
        run.ended = True
        if run.worker is not None:
            self._pool.release(run.worker)
        call = run.call
        if call is None:  # never sent
            return
        call.open -= 1
        if run.finished or not ray.is_initialized():  # (Ray's calls would start a new one)
            return
        with contextlib.suppress(RayError):
            call.worker.handle.cancel.remote(call.call_id, run.index)
        if call.open == 0 and call.stream is not None:
            with contextlib.suppress(RayError):  # the call may have ended meanwhile
                ray.cancel(call.stream)


async def _relay(call: _Call, runs: list[_Run]) -> bool:
    """Make `call` and hand each item of its stream to its run; whether every run got its
    result (the stream's end then adds nothing)."""
    tasks = tuple(run.task for run in runs)
    run_method = call.worker.handle.run.options(num_returns="streaming")
    call.stream = run_method.remote(call.call_id, tasks)
    unfinished = len(runs)
    async for ref in call.stream:
        for index, item in await ref:
            runs[index].items.put_nowait(item)
            unfinished -= isinstance(item, Finished | Failed)
        if not unfinished:
            return True
    return False


def _fail(runs: list[_Run], error: Exception) -> None:
    """End every run of a call with `error` (a run that has its result never reads it)."""
    for run in runs:
        run.items.put_nowait(error)


def _failure(exc: Exception, deadline: asyncio.Timeout) -> tuple[TerminateReason, str | None]:
    """How a remote run that raised `exc` ended."""
    if isinstance(exc, TimeoutError) and deadline.expired():
        return TerminateReason.TIMEOUT, None
    if isinstance(exc, RayActorError | WorkerCrashedError):
        return TerminateReason.ERROR, f"worker died: {_cause(exc)}"
    if isinstance(exc, RayError):
        return TerminateReason.ERROR, _cause(exc)
    return TerminateReason.ERROR, describe_error(exc)


def ray_executor(
    settings: Settings, environ: Mapping[str, str], telemetry_sink: TelemetrySink
) -> Iterator[RayExecutor]:
    """The application's `RayExecutor`, its workers killed when the container shuts down."""
    pool = WorkerPool(settings.ray, address=environ.get("RAY_ADDRESS") or None)
    executor = RayExecutor(pool, telemetry_sink)
    try:
        yield executor
    finally:
        executor.shutdown()


def _guard(launch: SubagentLaunch) -> float | None:
    _, timeout = limits_of(launch)
    return None if timeout is None else timeout + _GRACE_SECONDS


def trace_context_of(launch: SubagentLaunch) -> dict[str, str]:
    """The W3C trace context of the parent's `task` call, when it is traced."""
    here = launch.parent.telemetry.tracer.here()
    carrier: dict[str, str] = {}
    if isinstance(here, Context):
        propagate.inject(carrier, context=here)
    return carrier


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _cause(exc: RayError) -> str:
    """What went wrong on the worker: the original error of a failed task, else Ray's, in
    one line (a remote traceback's first and last lines)."""
    if isinstance(exc, RayTaskError) and isinstance(exc.cause, BaseException):
        return describe_error(exc.cause)
    lines = [line.strip() for line in _ANSI.sub("", describe_error(exc)).splitlines()]
    lines = [line for line in lines if line]
    return lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}"
