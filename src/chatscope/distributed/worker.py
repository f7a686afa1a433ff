"""The worker side: a Ray actor that runs subagents in scopes of its own application container.

A `SubagentWorker` holds one `ApplicationContainer`, built in its process from its own
environment (its settings, its HTTP pool, keys resolved there for each call). Each subagent
gets a fresh scope from that container's `ScopeFactory`, under a described parent, exactly as
a local run builds one; what it streams goes back as `stream` items. One call may carry many
subagents (those a parent started together): they share the call's stream, nothing else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any, cast

import ray
from dependency_injector import containers, providers
from opentelemetry import propagate
from opentelemetry.context import Context

from chatscope.config import load_settings
from chatscope.containers.application import ApplicationContainer
from chatscope.distributed.stream import (
    Failed,
    Feed,
    Finished,
    ForwardingSink,
    Lane,
    Routed,
    Started,
)
from chatscope.errors import ConfigurationError
from chatscope.services.subagents.remote import RemoteTask, remote_scope
from chatscope.services.subagents.task import describe_error, drive_scope

__all__ = ["SubagentWorker", "build_container", "standard_container", "trace_parent_of"]

# How long a batch of streamed items waits for more before it is sent (the end of a run is
# sent at once): fewer Ray objects per run, at a cost in streaming latency nobody notices.
_LINGER_SECONDS = 0.02
# How long a cancel of a call not (yet) running here is kept for it: a call is begun within
# milliseconds of its cancel, or has already ended.
_EARLY_CANCEL_SECONDS = 60.0


def standard_container() -> ApplicationContainer:
    """The worker's default application: the standard container, from this process's settings.

    A worker runs subagents only: they keep their history in memory and start no subagents,
    so it opens no session database and runs its subagents in its own process.
    """
    settings = load_settings(history_backend="memory", subagent_executor="local")
    return ApplicationContainer(settings=settings, environ=dict(os.environ))


def build_container(path: str | None) -> ApplicationContainer:
    """The container `path` ("module:callable") builds, or the standard one."""
    if path is None:
        return standard_container()
    module_name, _, name = path.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"ray.container {path!r} cannot be imported: {exc}") from exc
    container = cast(Callable[[], Any], factory)()
    # An instantiated declarative container is a `DynamicContainer` holding its providers.
    if not isinstance(container, containers.Container) or not hasattr(container, "runtime"):
        raise ConfigurationError(f"ray.container {path!r} did not return an ApplicationContainer")
    return cast(ApplicationContainer, container)


class SubagentWorker:
    """Runs subagents in one container, at most `concurrency` at once, however many calls
    bring them (the actor takes many calls at once, so that `cancel` is never queued)."""

    def __init__(self, container: str | None = None, concurrency: int = 32) -> None:
        self._app = build_container(container)
        self._sink = ForwardingSink()
        self._app.telemetry_sink.override(providers.Object(self._sink))
        self._node_id: str = ray.get_runtime_context().get_node_id()
        self._started: asyncio.Future[None] | None = None
        self._slots = asyncio.Semaphore(concurrency)
        self._calls: dict[str, _CallRuns] = {}
        self._early: dict[str, _CallRuns] = {}  # cancels of calls not begun (or already over)
        self._jobs: set[asyncio.Task[None]] = set()

    def node_id(self) -> str:
        """The Ray node this worker runs on."""
        return self._node_id

    def running(self) -> int:
        """How many subagents this worker is running now (or holding until a slot frees)."""
        return len(self._jobs)

    async def run(
        self, call: str, tasks: tuple[RemoteTask, ...]
    ) -> AsyncIterator[tuple[Routed, ...]]:
        """Run the subagents of one call, yielding what each streams as it happens, tagged
        with its index in `tasks`; each run's `Finished` (or `Failed`) is its last item.

        `cancel(call, index)` stops one of them; cancelling this generator (the parent's
        `ray.cancel`) stops them all.
        """
        self._forget_stale_cancels()
        # Registered before any await, so that a `cancel` that follows finds it.
        runs = self._calls[call] = self._early.pop(call) if call in self._early else _CallRuns()
        feed = Feed(len(tasks))
        try:
            await self._start()
            for index, task in enumerate(tasks):
                lane = feed.lane(index)
                job = asyncio.create_task(self._run_one(task, lane))
                # Closed when the job is done, even if it was cancelled before it began.
                job.add_done_callback(partial(_close, lane))
                runs.start(index, job)
                self._jobs.add(job)
                job.add_done_callback(self._jobs.discard)
            async for batch in feed.batches(_LINGER_SECONDS):
                yield batch
        finally:
            del self._calls[call]
            runs.cancel_all()

    async def cancel(self, call: str, index: int) -> None:
        """Stop the subagent at `index` of `call` (its parent gave up on it)."""
        runs = self._calls.get(call)
        if runs is None:  # sent after the call, it may still arrive first
            runs = self._early.setdefault(call, _CallRuns())
        runs.cancel(index)

    def _forget_stale_cancels(self) -> None:
        """Drop the cancels of calls that never came: a parent cancels a run it gave up on
        even when its call has just ended here."""
        stale = time.monotonic() - _EARLY_CANCEL_SECONDS
        for call in [call for call, runs in self._early.items() if runs.since < stale]:
            del self._early[call]

    async def _run_one(self, task: RemoteTask, lane: Lane) -> None:
        try:
            async with self._slots:
                await self._drive(task, lane)
        except Exception as exc:  # the run's failure is its last item, the others go on
            lane.put(Failed(describe_error(exc)))

    async def _drive(self, task: RemoteTask, lane: Lane) -> None:
        scope = remote_scope(
            task,
            scopes=self._app.runtime.scopes(),
            profiles=self._app.subagent_profiles(),
            trace_parent=trace_parent_of(task),
        )
        state = scope.runtime_context.state
        lane.put(Started(state.runtime_id, state.provider, state.model, self._node_id))
        with self._sink.routed(state.runtime_id, lane.record, task.wanted_records):
            open_chat = self._app.runtime.chat_session
            result = await drive_scope(scope, task.request, open_chat, lane.event)
        lane.put(Finished(dataclasses.replace(result, executor="ray", node_id=self._node_id)))

    async def _start(self) -> None:
        """Start the container's resources (HTTP pool, MCP servers) once, on first use."""
        if self._started is None:
            self._started = asyncio.ensure_future(_awaited(self._app.init_resources()))
        await asyncio.shield(self._started)

    async def stop(self) -> None:
        """Shut the container's resources down (HTTP pool, MCP servers); the pool kills the
        actor next."""
        await _awaited(self._app.shutdown_resources())


class _CallRuns:
    """The runs of one call, by index; a run cancelled before it started never starts."""

    __slots__ = ("_cancelled", "_jobs", "since")

    def __init__(self) -> None:
        self._jobs: dict[int, asyncio.Task[None]] = {}
        self._cancelled: set[int] = set()
        self.since = time.monotonic()

    def start(self, index: int, job: asyncio.Task[None]) -> None:
        self._jobs[index] = job
        if index in self._cancelled:
            job.cancel()

    def cancel(self, index: int) -> None:
        job = self._jobs.get(index)
        if job is None:
            self._cancelled.add(index)
        else:
            job.cancel()

    def cancel_all(self) -> None:
        for job in self._jobs.values():
            job.cancel()


def trace_parent_of(task: RemoteTask) -> Context | None:
    """The parent's `task` span, from its W3C trace context, for the subagent's spans."""
    if not task.trace_context:
        return None
    return propagate.extract(dict(task.trace_context))


def _close(lane: Lane, _job: asyncio.Task[None]) -> None:
    lane.close()


async def _awaited(result: Awaitable[None] | None) -> None:
    if inspect.isawaitable(result):
        await result
