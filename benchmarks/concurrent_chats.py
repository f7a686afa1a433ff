"""Many chats at once: chatscope's throughput against raw httpx, and the memory of an idle scope.

Run: `uv run python benchmarks/concurrent_chats.py [--chats 1000] [--rounds 5]`.
A local server in a separate process (`_sse_server.py`) streams the same 20-chunk answer to
every request. Each round runs `--chats` turns at once both ways, in turn:

- raw: one `httpx.AsyncClient` (its pool as large as the turns) and a hand-written SSE loop;
- chatscope: `ChatSession.send` on that many fresh scopes (history in memory), built before the
  clock starts, as `turn_overhead.py` builds them.

It prints the turns per second of each (medians) and the median of the paired ratios
(chatscope / raw; goal: at least 0.9x), then the memory a built but idle scope holds (its
context and chat session, measured with tracemalloc over `--chats` of them; goal: under 4 KiB).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import httpx
from turn_overhead import application, fresh_chats, raw_turn

from chatscope.containers import ApplicationContainer
from chatscope.services.chat.session import ChatSession

SERVER = Path(__file__).with_name("_sse_server.py")


async def turns_per_second(turns: list[Callable[[], Awaitable[str]]]) -> float:
    """Run every turn at once; turns completed per second of wall time."""
    started = time.perf_counter()
    await asyncio.gather(*(turn() for turn in turns))
    return len(turns) / (time.perf_counter() - started)


def raw_turns(
    client: httpx.AsyncClient, url: str, count: int
) -> list[Callable[[], Awaitable[str]]]:
    async def turn() -> str:
        return await raw_turn(client, url)

    return [turn] * count


def chatscope_turns(app: ApplicationContainer, count: int) -> list[Callable[[], Awaitable[str]]]:
    return [partial(_send, chat) for chat in fresh_chats(app, count)]


async def _send(chat: ChatSession) -> str:
    completed = await chat.send("Say twenty tokens.")
    return completed.text


async def measure(url: str, chats: int, rounds: int) -> dict[str, float]:
    """Paired rounds of both ways; medians of turns/s and of the per-round ratio."""
    with tempfile.TemporaryDirectory() as root:
        app = application(Path(root), url)
        await app.init_resources()  # type: ignore[misc]
        limits = httpx.Limits(max_connections=chats, max_keepalive_connections=chats)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            await turns_per_second(raw_turns(client, url, chats))  # warm both pools
            await turns_per_second(chatscope_turns(app, chats))
            raw, ours = [], []
            for _ in range(rounds):
                raw.append(await turns_per_second(raw_turns(client, url, chats)))
                ours.append(await turns_per_second(chatscope_turns(app, chats)))
        idle = idle_scope_bytes(app, chats)
        await app.shutdown_resources()  # type: ignore[misc]
    ratios = [mine / base for mine, base in zip(ours, raw, strict=True)]
    return {
        "raw": statistics.median(raw),
        "chatscope": statistics.median(ours),
        "ratio": statistics.median(ratios),
        "idle_scope_bytes": idle,
    }


def idle_scope_bytes(app: ApplicationContainer, count: int) -> float:
    """Bytes held per built, unused scope and chat session."""
    fresh_chats(app, 10)  # anything built once per application is built by now
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held = fresh_chats(app, count)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(held) == count
    return (after - before) / count


def main() -> None:
    """Start the server, measure, print, stop the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    server = subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, str(SERVER)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        results = asyncio.run(measure(f"http://127.0.0.1:{port}/v1", args.chats, args.rounds))
    finally:
        server.kill()
        server.wait()
    print(f"{args.chats} turns at once, medians of {args.rounds} paired rounds")
    print(f"raw httpx   {results['raw']:8.0f} turns/s")
    ratio = results["ratio"]
    print(f"chatscope   {results['chatscope']:8.0f} turns/s  ({ratio:.2f}x raw; goal >= 0.9x)")
    print(f"idle scope  {results['idle_scope_bytes'] / 1024:8.2f} KiB (goal < 4 KiB)")


if __name__ == "__main__":
    main()
