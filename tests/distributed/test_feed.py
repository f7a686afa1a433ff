"""A worker call's `Feed`: what each run queues through its lane comes back whole, in order,
tagged with the run, in batches that gather what arrives within the linger of their first item;
the end of the last run flushes at once."""

from __future__ import annotations

import asyncio
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from chatscope.distributed.stream import Failed, Feed, Lane, Record, Routed

LINGER = 0.05
END = Record("end", {})


def record(index: int) -> Record:
    return Record(f"event-{index}", {"index": index})


async def produce(lane: Lane, pauses: list[bool]) -> float:
    """Queue one record per pause (a pause of twice the linger before it when True), then the
    last one; close the lane. The time it closed."""
    for index, pause in enumerate(pauses):
        if pause:
            await asyncio.sleep(2 * LINGER)
        lane.put(record(index))
    lane.put(END)
    lane.close()
    return time.perf_counter()


async def read(feed: Feed) -> list[tuple[float, tuple[Routed, ...]]]:
    return [(time.perf_counter(), batch) async for batch in feed.batches(LINGER)]


@settings(max_examples=12, deadline=None)
@given(pauses=st.lists(st.booleans(), max_size=6))
async def test_every_item_comes_back_in_order_and_the_end_at_once(pauses: list[bool]) -> None:
    """Joined, the batches are what was queued, in order; a record queued after a pause longer
    than the linger starts a new batch."""
    feed = Feed()
    _, batches = await asyncio.gather(produce(feed.lane(0), pauses), read(feed))
    items = [item for _, batch in batches for item in batch]
    assert items[:-1] == [(0, record(index)) for index in range(len(pauses))]
    assert items[-1] == (0, END)
    assert all(batch for _, batch in batches)
    first_of_each = [batch[0] for _, batch in batches]
    for index, pause in enumerate(pauses):
        if pause and index > 0:
            assert (0, record(index)) in first_of_each


@settings(max_examples=12, deadline=None)
@given(runs=st.lists(st.lists(st.booleans(), max_size=4), min_size=1, max_size=4))
async def test_runs_sharing_a_feed_each_come_back_whole_in_order_and_it_ends_after_the_last(
    runs: list[list[bool]],
) -> None:
    """Runs writing at once through their lanes: each run's items come back tagged with it,
    in its order, and the feed ends only once every run has closed."""
    feed = Feed(len(runs))
    reader = asyncio.create_task(read(feed))
    closed_at = await asyncio.gather(
        *(produce(feed.lane(index), pauses) for index, pauses in enumerate(runs))
    )
    batches = await reader
    items = [item for _, batch in batches for item in batch]
    for index, pauses in enumerate(runs):
        mine = [item for run, item in items if run == index]
        assert mine == [*(record(n) for n in range(len(pauses))), END]
    assert len(items) == sum(len(pauses) + 1 for pauses in runs)
    assert batches[-1][0] >= max(closed_at)


async def test_the_end_of_a_run_is_sent_without_waiting_out_the_linger() -> None:
    """A run that ends a moment after its first item is flushed then, not a linger later."""
    feed = Feed()
    lane = feed.lane(0)

    async def run() -> float:
        lane.put(record(0))
        await asyncio.sleep(0.01)
        lane.put(END)
        lane.close()
        return time.perf_counter()

    async def reader() -> list[tuple[float, tuple[Routed, ...]]]:
        return [(time.perf_counter(), batch) async for batch in feed.batches(1.0)]

    closed_at, batches = await asyncio.gather(run(), reader())
    assert [batch for _, batch in batches] == [((0, record(0)), (0, END))]
    assert batches[-1][0] - closed_at < 0.5


async def test_items_queued_together_come_back_as_one_batch() -> None:
    """What is queued before the reader wakes is one batch, not one object per item."""
    feed = Feed(2)
    for index in range(5):
        feed.lane(index % 2).put(record(index))
    feed.lane(0).close()
    feed.lane(1).close()
    assert [batch async for batch in feed.batches(LINGER)] == [
        tuple((index % 2, record(index)) for index in range(5))
    ]


async def test_a_runs_end_is_sent_at_once_while_the_runs_beside_it_go_on() -> None:
    """A run's last item (`Finished` or `Failed`) does not wait out the linger for the other
    runs of its call: its parent learns the result now."""
    feed = Feed(2)
    batches = feed.batches(1.0)
    first = asyncio.ensure_future(anext(batches))
    feed.lane(1).put(record(1))
    feed.lane(0).put(Failed("boom"))
    assert await asyncio.wait_for(first, 0.5) == ((1, record(1)), (0, Failed("boom")))
    feed.lane(0).close()
    feed.lane(1).put(END)
    feed.lane(1).close()
    assert [batch async for batch in batches] == [((1, END),)]
