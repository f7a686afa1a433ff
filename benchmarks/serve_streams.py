"""Many concurrent streamed turns through `chatscope serve`'s sessions API, against the same
turns run in-process.

Run: `uv run python benchmarks/serve_streams.py [--streams 500]`. A local mock LLM
(`_sse_server.py`, its own process) answers every request with a 20-chunk OpenAI stream.

- In-process: `--streams` chats at once, each a saved session (SQLite), through
  `ChatSession.stream` in this process: latency per turn (start to last event) and turns/s.
- Served: a `chatscope serve` process on the same SQLite default; `--streams` sessions made
  with `POST /v1/sessions`, then one turn each, all at once, through
  `POST /v1/sessions/{id}/messages` (SSE read to its `done` event): latency, turns/s, errors.
  The added latency is served minus in-process, at p50 and p99.
- Memory: the server's resident size with 0, 1/4, 1/2 and all of `--streams` streams held open
  (the mock holds each answer's end for a few seconds), and the bytes per open stream.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from chatscope.config.settings import ExplicitSettings
from chatscope.containers import ApplicationContainer
from chatscope.services.chat import ChatSession

MOCK = Path(__file__).with_name("_sse_server.py")


@contextmanager
def mock_llm(hold_ms: int = 0) -> Iterator[str]:
    """The base URL of a mock OpenAI server in its own process."""
    with subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, str(MOCK), str(hold_ms)], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        try:
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            process.terminate()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def served(base_url: str, data_dir: Path, streams: int) -> Iterator[tuple[str, int]]:
    """A `chatscope serve` process on the mock; its URL and process id."""
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CHATSCOPE_", "OPENAI_"))
    } | {
        "CHATSCOPE_PROVIDER": "openai",
        "CHATSCOPE_PROVIDERS__OPENAI__BASE_URL": base_url,
        "OPENAI_API_KEY": "sk-bench-not-a-real-key",
        "CHATSCOPE_DATA_DIR": str(data_dir),
        "CHATSCOPE_SERVER__MAX_TURNS_PER_TENANT": str(streams * 2),
        "CHATSCOPE_HTTP__MAX_CONNECTIONS": str(streams * 2),
        "CHATSCOPE_LOG_LEVEL": "error",
    }
    command = [sys.executable, "-m", "chatscope", "serve", "--port", str(port)]
    with subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL) as process:  # noqa: S603
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(url)
            yield url, process.pid
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("chatscope serve did not come up")


def resident_kib(pid: int) -> int:
    """The process's resident set size, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def in_process(base_url: str, data_dir: Path, streams: int) -> tuple[list[float], float]:
    """Latency of each of `streams` concurrent saved-session turns in this process, and wall."""
    settings = ExplicitSettings(
        workspace=data_dir,
        provider="openai",
        providers={"openai": {"base_url": base_url}},
        history_backend="database",
        data_dir=data_dir,
        http={"max_connections": streams * 2},
    )
    app = ApplicationContainer(settings=settings, environ={"OPENAI_API_KEY": "sk-bench-key"})
    await app.init_resources()  # type: ignore[misc]
    scopes = app.runtime.scopes()

    async def one() -> float:
        started = time.perf_counter()
        chat: ChatSession = app.runtime.chat_session(context=scopes.foreground())
        async for _ in chat.stream("hello"):
            pass
        return time.perf_counter() - started

    started = time.perf_counter()
    latencies = await asyncio.gather(*(one() for _ in range(streams)))
    wall = time.perf_counter() - started
    await app.shutdown_resources()  # type: ignore[misc]
    return list(latencies), wall


async def _turn(client: httpx.AsyncClient, session: str) -> tuple[float, bool]:
    started = time.perf_counter()
    ok = False
    async with client.stream(
        "POST", f"/v1/sessions/{session}/messages", json={"content": "hello"}
    ) as response:
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event in {"done", "error"}:
                ok = event == "done" and response.status_code == 200
    return time.perf_counter() - started, ok


async def through_server(url: str, streams: int) -> tuple[list[float], float, int]:
    """Latency of each served turn, the wall time of all, and the number of failed turns."""
    limits = httpx.Limits(max_connections=streams * 2, max_keepalive_connections=streams * 2)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        created = await asyncio.gather(
            *(client.post("/v1/sessions", json={}) for _ in range(streams))
        )
        sessions = [response.json()["id"] for response in created]
        started = time.perf_counter()
        results = await asyncio.gather(*(_turn(client, session) for session in sessions))
        wall = time.perf_counter() - started
    return [latency for latency, _ in results], wall, sum(not ok for _, ok in results)


async def memory_per_stream(url: str, pid: int, streams: int) -> list[tuple[int, int]]:
    """(open streams, server KiB) with 0, 1/4, 1/2 and all streams held open."""
    points = [(0, resident_kib(pid))]
    limits = httpx.Limits(max_connections=streams * 2, max_keepalive_connections=streams * 2)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        for count in (streams // 4, streams // 2, streams):
            created = await asyncio.gather(
                *(client.post("/v1/sessions", json={}) for _ in range(count))
            )
            turns = [
                asyncio.create_task(_turn(client, response.json()["id"])) for response in created
            ]
            await asyncio.sleep(2.0)  # every stream open, its answer's end held by the mock
            points.append((count, resident_kib(pid)))
            await asyncio.gather(*turns)
    return points


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(
    streams: int, local: tuple[list[float], float], remote: tuple[list[float], float, int]
) -> None:
    local_latency, local_wall = local
    remote_latency, remote_wall, errors = remote
    for name, latency, wall in (
        ("in-process", local_latency, local_wall),
        ("served", remote_latency, remote_wall),
    ):
        p50, p99 = statistics.median(latency) * 1000, percentile(latency, 0.99) * 1000
        print(f"{name:10s} {streams / wall:7.0f} turns/s  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms")
    added50 = (statistics.median(remote_latency) - statistics.median(local_latency)) * 1000
    added99 = (percentile(remote_latency, 0.99) - percentile(local_latency, 0.99)) * 1000
    print(f"added by the server: p50 {added50:+.1f} ms, p99 {added99:+.1f} ms; errors: {errors}")


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        with mock_llm() as base_url:
            local = asyncio.run(in_process(base_url, root / "local", args.streams))
            with served(base_url, root / "served", args.streams) as (url, _):
                remote = asyncio.run(through_server(url, args.streams))
        report(args.streams, local, remote)
        with (
            mock_llm(hold_ms=4000) as base_url,
            served(base_url, root / "held", args.streams) as (
                url,
                pid,
            ),
        ):
            points = asyncio.run(memory_per_stream(url, pid, args.streams))
    for count, kib in points:
        print(f"server resident size with {count:4d} open streams: {kib / 1024:7.1f} MiB")
    (first_count, first_kib), (last_count, last_kib) = points[0], points[-1]
    per_stream = (last_kib - first_kib) / max(1, last_count - first_count)
    print(f"memory per open stream: {per_stream:.1f} KiB")
    print(json.dumps({"points": points}))


if __name__ == "__main__":
    main()
