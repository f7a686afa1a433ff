"""A worker run's `Feed`: what the run queues comes back whole, in order, in batches that gather
what arrives within the linger of their first item; the end of the run flushes at once."""

from __future__ import annotations

import asyncio
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from chatscope.distributed.stream import Feed, Record, StreamItem

LINGER = 0.05
END = Record("end", {})


def record(index: int) -> Record:
    return Record(f"event-{index}", {"index": index})


async def produce(feed: Feed, pauses: list[bool]) -> float:
    """Queue one record per pause (a pause of twice the linger before it when True), then the
    last one; close the feed. The time it closed."""
    for index, pause in enumerate(pauses):
        if pause:
            await asyncio.sleep(2 * LINGER)
        feed.put(record(index))
    feed.put(END)
    feed.close()
    return time.perf_counter()


async def read(feed: Feed) -> list[tuple[float, tuple[StreamItem, ...]]]:
    return [(time.perf_counter(), batch) async for batch in feed.batches(LINGER)]


@settings(max_examples=12, deadline=None)
@given(pauses=st.lists(st.booleans(), max_size=6))
async def test_every_item_comes_back_in_order_and_the_end_at_once(pauses: list[bool]) -> None:
    """Joined, the batches are what was queued, in order; a record queued after a pause longer
    than the linger starts a new batch."""
    feed = Feed()
    _, batches = await asyncio.gather(produce(feed, pauses), read(feed))
    items = [item for _, batch in batches for item in batch]
    assert items[:-1] == [record(index) for index in range(len(pauses))]
    assert items[-1] == END
    assert all(batch for _, batch in batches)
    first_of_each = [batch[0] for _, batch in batches]
    for index, pause in enumerate(pauses):
        if pause and index > 0:
            assert record(index) in first_of_each


async def test_the_end_of_a_run_is_sent_without_waiting_out_the_linger() -> None:
    """A run that ends a moment after its first item is flushed then, not a linger later."""
    feed = Feed()

    async def run() -> float:
        feed.put(record(0))
        await asyncio.sleep(0.01)
        feed.put(END)
        feed.close()
        return time.perf_counter()

    async def reader() -> list[tuple[float, tuple[StreamItem, ...]]]:
        return [(time.perf_counter(), batch) async for batch in feed.batches(1.0)]

    closed_at, batches = await asyncio.gather(run(), reader())
    assert [batch for _, batch in batches] == [(record(0), END)]
    assert batches[-1][0] - closed_at < 0.5


async def test_items_queued_together_come_back_as_one_batch() -> None:
    """What is queued before the reader wakes is one batch, not one object per item."""
    feed = Feed()
    for index in range(5):
        feed.put(record(index))
    feed.close()
    assert [batch async for batch in feed.batches(LINGER)] == [
        tuple(record(index) for index in range(5))
    ]
