"""Many concurrent streamed turns through `chatscope serve`'s sessions API, against the same
turns run in-process.

Run: `uv run python benchmarks/serve_streams.py [--streams 500] [--chunk-ms 200] [--rounds 3]`.
A local mock LLM (`_sse_server.py`, its own process) answers every request with a 20-chunk
OpenAI stream. The load generator is a plain socket client in this process (see `_post`).

- Paced (the goal figure): the mock streams each answer a chunk every `--chunk-ms` (22 events,
  4.4 s at the default), as a model does; `--streams` turns start evenly over one answer's
  length, so about `--streams` streams are open at once. Each round runs them in-process
  (`ChatSession.stream` on saved sessions, SQLite) and then through a `chatscope serve` process
  (sessions made with `POST /v1/sessions` first, then `POST /v1/sessions/{id}/messages`, the SSE
  read to its `done` event). The added latency is served minus in-process, at p50 and p99;
  printed per round and as the median of the rounds (the machine is shared and noisy).
- Burst (throughput): all turns at once against an unpaced mock; turns/s of each way.
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
def mock_llm(hold_ms: int = 0, chunk_ms: int = 0) -> Iterator[str]:
    """The base URL of a mock OpenAI server in its own process."""
    command = [sys.executable, str(MOCK), str(hold_ms), str(chunk_ms)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:  # noqa: S603
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


async def in_process(
    base_url: str, data_dir: Path, streams: int, ramp: float
) -> tuple[list[float], float]:
    """Latency of each of `streams` saved-session turns in this process, started `ramp`
    seconds apart in all, and the wall time of all."""
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

    async def one(index: int) -> float:
        await asyncio.sleep(index * ramp / streams)
        started = time.perf_counter()
        chat: ChatSession = app.runtime.chat_session(context=scopes.foreground())
        async for _ in chat.stream("hello"):
            pass
        return time.perf_counter() - started

    started = time.perf_counter()
    latencies = await asyncio.gather(*(one(index) for index in range(streams)))
    wall = time.perf_counter() - started
    await app.shutdown_resources()  # type: ignore[misc]
    return list(latencies), wall


async def _post(url: str, path: str, body: object, *, until: bytes = b"") -> tuple[float, bytes]:
    """One HTTP/1.1 POST on a connection of its own: the seconds until `until` was read (the
    whole answer if empty) and the answer's bytes.

    The load generator is a plain socket client, not httpx: it shares the machine's two cores
    with the server it measures, and httpx's pool costs more per stream with 1,000 connections
    open than the server's own work (26 ms of client CPU per turn, measured).
    """
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    data = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
    writer.write(f"{head}content-length: {len(data)}\r\nconnection: close\r\n\r\n".encode())
    writer.write(data)
    started, answer, elapsed = time.perf_counter(), b"", 0.0
    while chunk := await reader.read(65536):
        answer += chunk
        if not elapsed and until and until in answer[-len(chunk) - len(until) :]:
            elapsed = time.perf_counter() - started
    writer.close()
    return elapsed or time.perf_counter() - started, answer


async def _new_session(url: str) -> str:
    _, answer = await _post(url, "/v1/sessions", {})
    session: str = json.loads(answer.split(b"\r\n\r\n", 1)[1])["id"]
    return session


async def _turn(url: str, session: str, delay: float = 0.0) -> tuple[float, bool]:
    await asyncio.sleep(delay)
    path = f"/v1/sessions/{session}/messages"
    latency, answer = await _post(url, path, {"content": "hello"}, until=b"event: done")
    return latency, answer.startswith(b"HTTP/1.1 200") and b"event: done" in answer


async def through_server(url: str, streams: int, ramp: float) -> tuple[list[float], float, int]:
    """Latency of each served turn (started as `in_process` starts them), the wall time of
    all, and the number of failed turns."""
    sessions = await asyncio.gather(*(_new_session(url) for _ in range(streams)))
    started = time.perf_counter()
    results = await asyncio.gather(
        *(_turn(url, session, index * ramp / streams) for index, session in enumerate(sessions))
    )
    wall = time.perf_counter() - started
    return [latency for latency, _ in results], wall, sum(not ok for _, ok in results)


async def memory_per_stream(url: str, pid: int, streams: int) -> list[tuple[int, int]]:
    """(open streams, server KiB) with 0, 1/4, 1/2 and all streams held open."""
    points = [(0, resident_kib(pid))]
    for count in (streams // 4, streams // 2, streams):
        sessions = await asyncio.gather(*(_new_session(url) for _ in range(count)))
        turns = [asyncio.create_task(_turn(url, session)) for session in sessions]
        await asyncio.sleep(2.0)  # every stream open, its answer's end held by the mock
        points.append((count, resident_kib(pid)))
        await asyncio.gather(*turns)
    return points


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(
    title: str,
    streams: int,
    local: tuple[list[float], float],
    remote: tuple[list[float], float, int],
) -> tuple[float, float]:
    local_latency, local_wall = local
    remote_latency, remote_wall, errors = remote
    print(title)
    for name, latency, wall in (
        ("in-process", local_latency, local_wall),
        ("served", remote_latency, remote_wall),
    ):
        p50, p99 = statistics.median(latency) * 1000, percentile(latency, 0.99) * 1000
        print(f"  {name:10s} {streams / wall:7.0f} turns/s  p50 {p50:8.1f} ms  p99 {p99:8.1f} ms")
    added50 = (statistics.median(remote_latency) - statistics.median(local_latency)) * 1000
    added99 = (percentile(remote_latency, 0.99) - percentile(local_latency, 0.99)) * 1000
    print(f"  added by the server: p50 {added50:+.1f} ms, p99 {added99:+.1f} ms; errors: {errors}")
    return added50, added99


def compare(root: Path, streams: int, *, chunk_ms: int, ramp: float) -> tuple[float, float]:
    """The same turns in-process and served, on one mock; print both and the difference, and
    return the added p50 and p99 in milliseconds."""
    with mock_llm(chunk_ms=chunk_ms) as base_url:
        local = asyncio.run(in_process(base_url, root / f"local-{chunk_ms}", streams, ramp))
        with served(base_url, root / f"served-{chunk_ms}", streams) as (url, _):
            remote = asyncio.run(through_server(url, streams, ramp))
    if chunk_ms:
        title = (
            f"paced: {streams} turns started over {ramp:.1f} s, each answer streamed "
            f"{chunk_ms} ms per chunk"
        )
    else:
        title = f"burst: {streams} turns at once, each answer sent whole (throughput)"
    return report(title, streams, local, remote)


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--chunk-ms", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    answer_seconds = args.chunk_ms * 22 / 1000  # 20 chunks, usage and [DONE]
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        added = [
            compare(root / str(round_), args.streams, chunk_ms=args.chunk_ms, ramp=answer_seconds)
            for round_ in range(args.rounds)
        ]
        p50 = statistics.median(first for first, _ in added)
        p99 = statistics.median(second for _, second in added)
        print(f"paced, median of {args.rounds} rounds: added p50 {p50:+.1f} ms, p99 {p99:+.1f} ms")
        compare(root, args.streams, chunk_ms=0, ramp=0.0)
        with (
            mock_llm(hold_ms=4000) as base_url,
            served(base_url, root / "held", args.streams) as (url, pid),
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
