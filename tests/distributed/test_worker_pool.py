"""The worker pool's first fill: started on a thread, once, with the event loop going on.

Starting or joining a Ray cluster takes seconds. These tests stand in a slow fill for Ray's
(no cluster is started): however many subagents start at once, the actors are created once,
and a web service's event loop keeps serving its other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatscope.config.settings import RaySettings
from chatscope.distributed import executor
from chatscope.distributed.executor import WorkerPool

FILL_SECONDS = 0.6


class SlowPool(WorkerPool):
    """A pool whose fill is `FILL_SECONDS` of blocking work making two workers; `fills` holds
    the thread each fill ran on."""

    def __init__(self) -> None:
        super().__init__(RaySettings())
        self.fills: list[int] = []

    def _fill(self) -> None:
        self.fills.append(threading.get_ident())
        time.sleep(FILL_SECONDS)
        self._workers = [executor._Worker(handle=object()) for _ in range(2)]


async def longest_stall(work: Any) -> tuple[Any, float]:
    """`work`'s result, and the longest the event loop went without running a 10 ms ticker."""
    stalls: list[float] = []

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            stalls.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        result = await work
    finally:
        ticker.cancel()
    return result, max(stalls, default=0.0)


@settings(max_examples=5, deadline=None)
@given(runs=st.integers(min_value=1, max_value=12))
async def test_concurrent_first_runs_fill_the_pool_once_off_the_loop(runs: int) -> None:
    """However many runs lease at once, one fill runs, on another thread, while the loop
    keeps ticking; the runs are spread over the workers it made."""
    pool = SlowPool()
    leases = asyncio.gather(*(pool.leased() for _ in range(runs)))
    workers, stall = await longest_stall(leases)
    assert len(pool.fills) == 1
    assert pool.fills[0] != threading.get_ident()
    assert stall < FILL_SECONDS / 2
    assert all(any(worker is made for made in pool._workers) for worker in workers)
    assert sorted(worker.running for worker in pool._workers) == [runs // 2, runs - runs // 2]


async def test_a_filled_pool_leases_without_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the workers exist, a lease is the least busy one, right away."""
    pool = SlowPool()
    first = await pool.leased()

    async def no_thread(*_: Any) -> None:
        raise AssertionError("a filled pool started a thread")

    monkeypatch.setattr(asyncio, "to_thread", no_thread)
    second = await pool.leased()
    assert second is not first
    pool.release(first)
    assert await pool.leased() is first
