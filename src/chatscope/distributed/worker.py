"""The worker side: a Ray actor that runs subagents in scopes of its own application container.

A `SubagentWorker` holds one `ApplicationContainer`, built in its process from its own
environment (its settings, its HTTP pool, keys resolved there for each call). Each subagent
gets a fresh scope from that container's `ScopeFactory`, under a described parent, exactly as
a local run builds one; what it streams goes back as `stream` items.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import ray
from dependency_injector import containers, providers
from opentelemetry import propagate
from opentelemetry.context import Context

from chatscope.config import load_settings
from chatscope.containers.application import ApplicationContainer
from chatscope.distributed.stream import Feed, Finished, ForwardingSink, Started, StreamItem
from chatscope.errors import ConfigurationError
from chatscope.services.subagents.profile import SubAgentScope
from chatscope.services.subagents.remote import RemoteTask, remote_scope
from chatscope.services.subagents.task import drive_scope

__all__ = ["SubagentWorker", "build_container", "standard_container", "trace_parent_of"]

# How long a batch of streamed items waits for more before it is sent (the end of a run is
# sent at once): fewer Ray objects per run, at a cost in streaming latency nobody notices.
_LINGER_SECONDS = 0.02


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
    """Runs subagents, many at once (the actor's `max_concurrency`), in one container."""

    def __init__(self, container: str | None = None) -> None:
        self._app = build_container(container)
        self._sink = ForwardingSink()
        self._app.telemetry_sink.override(providers.Object(self._sink))
        self._node_id: str = ray.get_runtime_context().get_node_id()
        self._started: asyncio.Future[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()

    def node_id(self) -> str:
        """The Ray node this worker runs on."""
        return self._node_id

    def running(self) -> int:
        """How many subagents this worker is running now."""
        return len(self._jobs)

    async def run(self, task: RemoteTask) -> AsyncIterator[tuple[StreamItem, ...]]:
        """Run one subagent, yielding what it streams as it happens, its result last.

        Cancelling this generator (the parent's `ray.cancel`) stops the subagent.
        """
        await self._start()
        scope = remote_scope(
            task,
            scopes=self._app.runtime.scopes(),
            profiles=self._app.subagent_profiles(),
            trace_parent=trace_parent_of(task),
        )
        state = scope.runtime_context.state
        feed = Feed()
        feed.put(Started(state.runtime_id, state.provider, state.model, self._node_id))
        with self._sink.routed(state.runtime_id, feed.record, task.wanted_records):
            job = asyncio.create_task(self._drive(scope, task, feed))
            self._jobs.add(job)
            job.add_done_callback(self._jobs.discard)
            try:
                async for batch in feed.batches(_LINGER_SECONDS):
                    yield batch
                await job  # raises what the run raised, if anything
            finally:
                job.cancel()

    async def _drive(self, scope: SubAgentScope, task: RemoteTask, feed: Feed) -> None:
        try:
            open_chat = self._app.runtime.chat_session
            result = await drive_scope(scope, task.request, open_chat, feed.event)
            feed.put(Finished(dataclasses.replace(result, executor="ray", node_id=self._node_id)))
        finally:
            feed.close()

    async def _start(self) -> None:
        """Start the container's resources (HTTP pool, MCP servers) once, on first use."""
        if self._started is None:
            self._started = asyncio.ensure_future(_awaited(self._app.init_resources()))
        await asyncio.shield(self._started)

    async def stop(self) -> None:
        """Shut the container's resources down (HTTP pool, MCP servers); the pool kills the
        actor next."""
        await _awaited(self._app.shutdown_resources())


def trace_parent_of(task: RemoteTask) -> Context | None:
    """The parent's `task` span, from its W3C trace context, for the subagent's spans."""
    if not task.trace_context:
        return None
    return propagate.extract(dict(task.trace_context))


async def _awaited(result: Awaitable[None] | None) -> None:
    if inspect.isawaitable(result):
        await result
