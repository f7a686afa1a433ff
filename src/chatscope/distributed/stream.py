"""What flows back from a worker while it runs subagents, and the sink that feeds it.

A worker's generator runs the subagents of one call and yields batches (tuples) of items, each
tagged with the index of its run in the call: `Started` once the run's scope is built, then
`Event`s (the text deltas and usage the parent keeps) and `Record`s (telemetry, with the same
fields a local run logs) as they happen, and `Finished` with the `TaskResult` (or `Failed`,
what the run raised) last. All plain, picklable data.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from chatscope.services.events import ChatEvent, TextDelta, UsageEvent
from chatscope.services.subagents.request import TaskResult

__all__ = [
    "Event",
    "Failed",
    "Feed",
    "Finished",
    "ForwardingSink",
    "Lane",
    "Record",
    "Routed",
    "Started",
    "StreamItem",
]


@dataclass(frozen=True, slots=True)
class Started:
    """The worker built the subagent's scope."""

    runtime_id: str
    provider: str
    model: str
    node_id: str


@dataclass(frozen=True, slots=True)
class Event:
    """A chat event the parent keeps (streamed text, usage)."""

    event: ChatEvent


@dataclass(frozen=True, slots=True)
class Record:
    """A telemetry record of the subagent's scope, as its sink received it."""

    name: str
    fields: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Finished:
    """The run's result."""

    result: TaskResult


@dataclass(frozen=True, slots=True)
class Failed:
    """The run raised: what went wrong, in one line."""

    error: str


StreamItem = Started | Event | Record | Finished | Failed
Routed = tuple[int, StreamItem]
"""An item and the index of its run in the call."""

RecordRoute = Callable[[str, Mapping[str, Any]], None]


class ForwardingSink:
    """A worker container's telemetry sink: each record goes to the run of its scope.

    Records are routed by their `runtime_id`, and only those the run's parent wants (its
    `wanted_records`): an event no running subagent's parent wants is never built, as a local
    sink that would drop it is never handed one. A record of no running subagent is dropped
    (the worker runs nothing else). The parent re-emits them into its own sink. `wants` costs
    the same however many subagents run: it counts the runs that want each event.
    """

    __slots__ = ("_routes", "_wanted")

    def __init__(self) -> None:
        self._routes: dict[str, tuple[RecordRoute, frozenset[str]]] = {}
        self._wanted: Counter[str] = Counter()

    def wants(self, event: str) -> bool:
        """Whether the parent of any running subagent wants `event`."""
        return event in self._wanted

    def emit(self, event: str, fields: Mapping[str, Any]) -> None:
        """Hand the record to the run of its scope, if one is running and its parent wants it."""
        route = self._routes.get(str(fields.get("runtime_id")))
        if route is not None and event in route[1]:
            route[0](event, fields)

    @contextlib.contextmanager
    def routed(self, runtime_id: str, route: RecordRoute, wanted: frozenset[str]) -> Iterator[None]:
        """Send the records of `runtime_id` that are `wanted` to `route` while the block runs."""
        self._routes[runtime_id] = (route, wanted)
        self._wanted.update(wanted)
        try:
            yield
        finally:
            del self._routes[runtime_id]
            self._wanted -= Counter(wanted)  # keeps only the events still wanted


class Feed:
    """The items of one call's runs, queued as they happen and read as batches by the worker's
    generator; each run writes through its own `Lane`.

    A batch gathers what arrives within `linger` seconds of its first item (fewer, larger
    stream items: each costs the worker and the parent a round of Ray's object transfer), from
    any of the runs; a run's last item (`Finished`, `Failed`) flushes it at once, so that no
    result waits for the runs beside it.
    """

    __slots__ = ("_open", "_queue")

    def __init__(self, runs: int = 1) -> None:
        self._queue: asyncio.Queue[Routed | None] = asyncio.Queue()
        self._open = runs

    def lane(self, index: int) -> Lane:
        """The way into this feed of the run at `index`."""
        return Lane(self, index)

    def put(self, index: int, item: StreamItem) -> None:
        """Queue one item of the run at `index`."""
        self._queue.put_nowait((index, item))

    def close(self) -> None:
        """One run has ended; after the last, no more items will come."""
        self._open -= 1
        if self._open == 0:
            self._queue.put_nowait(None)

    async def batches(self, linger: float) -> AsyncIterator[tuple[Routed, ...]]:
        """The queued items, batch by batch, until every run has ended."""
        done = False
        while not done:
            batch, done = await self._next_batch(linger)
            if batch:
                yield batch

    async def _next_batch(self, linger: float) -> tuple[tuple[Routed, ...], bool]:
        """One batch, and whether the feed is now closed."""
        loop = asyncio.get_running_loop()
        item = await self._queue.get()
        deadline = loop.time() + linger
        batch: list[Routed] = []
        while item is not None:
            batch.append(item)
            if not self._queue.empty():
                item = self._queue.get_nowait()
                continue
            remaining = deadline - loop.time()
            if remaining <= 0 or isinstance(item[1], Finished | Failed):  # a run's end: now
                return tuple(batch), False
            try:
                async with asyncio.timeout(remaining):  # no task per wait, as `wait_for` makes
                    item = await self._queue.get()
            except TimeoutError:
                return tuple(batch), False
        return tuple(batch), True


class Lane:
    """One run's way into its call's `Feed`: what it queues is tagged with its index."""

    __slots__ = ("_feed", "_index")

    def __init__(self, feed: Feed, index: int) -> None:
        self._feed = feed
        self._index = index

    def put(self, item: StreamItem) -> None:
        """Queue one item."""
        self._feed.put(self._index, item)

    def event(self, event: ChatEvent) -> None:
        """Queue a chat event the parent keeps; the others stay on the worker."""
        if isinstance(event, TextDelta | UsageEvent):
            self._feed.put(self._index, Event(event))

    def record(self, name: str, fields: Mapping[str, Any]) -> None:
        """Queue a telemetry record."""
        self._feed.put(self._index, Record(name, dict(fields)))

    def close(self) -> None:
        """This run has ended."""
        self._feed.close()
