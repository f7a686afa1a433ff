"""Subagent executors: the same CPU-bound subagents in this process and on a local Ray cluster.

Run: `uv run python benchmarks/subagent_executors.py [--subagents 200] [--burn-ms 50]
[--latency-runs 20]`. A mock LLM in a separate process asks each `cruncher` subagent for one
call of the `burn` tool (pure-Python CPU for `--burn-ms` of thread CPU time, a chatscope `@tool`
registered in each application's container and, on Ray, in each worker's through
`CHATSCOPE_RAY__CONTAINER`), then answers. One parent runner starts all the subagents at once,
first with the local executor, then with the Ray executor on a local cluster of this machine's
CPUs (one worker actor per CPU). It prints the wall time of each, the speed-up, and the added
latency of the Ray hop: the median of `--latency-runs` no-op subagents (one model call, no tool)
run one after another on each executor. Worker start-up is left out (a warm-up run first).
Last, the same work hand-written (`PlainWorker`: the two model calls with httpx and the tool on
a thread, no chatscope), in this process and as one bare actor call per subagent with nothing
streamed back, shows what Ray itself gains on this machine: the ceiling the executor is
measured against.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
from dependency_injector import providers

from chatscope import tool
from chatscope.config.settings import ExplicitSettings, RaySettings
from chatscope.containers.application import ApplicationContainer
from chatscope.distributed.executor import RayExecutor, WorkerPool
from chatscope.distributed.worker import standard_container
from chatscope.services.subagents.task import (
    LocalExecutor,
    SubagentExecutor,
    SubagentRunner,
    TaskRequest,
    TerminateReason,
)

HERE = Path(__file__).resolve().parent
PROFILES = {
    "cruncher": {"allowed_tools": ["burn"], "max_turns": 3},
    "noop": {"allowed_tools": [], "max_turns": 1},
}


@tool
def burn() -> str:
    """Spend the configured CPU time in pure Python and say how much was spent."""
    return spend_cpu()


def spend_cpu() -> str:
    """`burn`'s work: `BENCH_BURN_MS` of this thread's CPU time in pure Python."""
    budget = float(os.environ.get("BENCH_BURN_MS", "50")) / 1000
    start = time.thread_time()
    total = 0
    while time.thread_time() - start < budget:
        total += sum(index * index for index in range(2000))
    return f"burnt {budget * 1000:.0f} ms ({total % 997})"


def worker_container() -> ApplicationContainer:
    """A worker's container: the standard one, with `burn` among the application's tools."""
    app = standard_container()
    app.tools.application_tools.override(providers.List(providers.Object(burn)))
    return app


class PlainWorker:
    """Hand-written Ray, the ceiling of this machine: a subagent's two model calls and its
    tool call with httpx and a thread, as a bare actor method; no scope, no streaming back."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: httpx.AsyncClient | None = None

    async def run(self) -> str:
        if self._client is None:
            self._client = httpx.AsyncClient(limits=httpx.Limits(max_connections=64), timeout=60)
        prompt = {"role": "user", "content": "crunch"}
        call = await _completion(self._client, self._url, [prompt])
        result = await asyncio.to_thread(spend_cpu)
        reply = {"role": "tool", "tool_call_id": "call_1", "content": result}
        answer = await _completion(self._client, self._url, [prompt, call, reply])
        return str(answer["content"])


async def _completion(
    client: httpx.AsyncClient, url: str, messages: list[dict[str, Any]]
) -> dict[str, Any]:
    """One streamed Chat Completions request, its deltas read by hand into a message."""
    body = {"model": "bench", "messages": messages, "stream": True}
    message: dict[str, Any] = {"role": "assistant", "content": ""}
    async with client.stream("POST", f"{url}/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for choice in json.loads(line[6:])["choices"]:
                delta = choice["delta"]
                message["content"] += delta.get("content") or ""
                if "tool_calls" in delta:
                    message["tool_calls"] = delta["tool_calls"]
    return message


class _NullSink:
    """Keeps no telemetry, on both executors alike."""

    def wants(self, event: str) -> bool:
        return False

    def emit(self, event: str, fields: Mapping[str, Any]) -> None:
        return None


# --- the mock LLM (its own process) -------------------------------------------------------------


def _sse(chunks: list[dict[str, Any]]) -> bytes:
    events = b"".join(f"data: {json.dumps(chunk)}\n\n".encode() for chunk in chunks)
    return events + b"data: [DONE]\n\n"


def _answer(body: dict[str, Any]) -> bytes:
    messages = body["messages"]
    wants_tool = messages[-1]["role"] == "user" and "crunch" in str(messages[-1]["content"])
    if wants_tool:
        call: dict[str, Any] = {"index": 0, "id": "call_1", "type": "function"}
        call["function"] = {"name": "burn", "arguments": "{}"}
        delta: dict[str, Any] = {"tool_calls": [call]}
        finish = "tool_calls"
    else:
        delta, finish = {"content": "done"}, "stop"
    usage = {"prompt_tokens": 9, "completion_tokens": 1}
    return _sse(
        [
            {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
            {"choices": [], "usage": usage},
        ]
    )


_HEAD = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            header = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in header.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            body = _answer(json.loads(await reader.readexactly(length)))
            head = f"{_HEAD}content-length: {len(body)}\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def _serve_forever() -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    sys.stdout.close()
    async with server:
        await server.serve_forever()


# --- the measurements ----------------------------------------------------------------------------


def _write_profiles(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, options in PROFILES.items():
        tools = json.dumps(options["allowed_tools"])
        (directory / f"{name}.toml").write_text(
            f'name = "{name}"\nprovider = "openai"\nmodel = "bench"\n'
            f"allowed_tools = {tools}\nmax_turns = {options['max_turns']}\n",
            encoding="utf-8",
        )


def _env(port: int, home: Path, burn_ms: float) -> dict[str, str]:
    return {
        "CHATSCOPE_PROVIDER": "openai",
        "CHATSCOPE_PROVIDERS__OPENAI__BASE_URL": f"http://127.0.0.1:{port}/v1",
        "CHATSCOPE_PROFILES_DIR": str(home / "profiles"),
        "CHATSCOPE_WORKSPACE": str(home),
        "CHATSCOPE_LOG_LEVEL": "error",
        "OPENAI_API_KEY": "sk-bench",
        "BENCH_BURN_MS": str(burn_ms),
        "PYTHONPATH": str(HERE),
    }


def _parent_app(port: int, home: Path) -> ApplicationContainer:
    settings = ExplicitSettings(
        workspace=home,
        provider="openai",
        providers={"openai": {"base_url": f"http://127.0.0.1:{port}/v1"}},
        profiles_dir=home / "profiles",
        log_level="error",
    )
    app = ApplicationContainer(settings=settings, environ={"OPENAI_API_KEY": "sk-bench"})
    app.tools.application_tools.override(providers.List(providers.Object(burn)))
    app.telemetry_sink.override(providers.Object(_NullSink()))
    return app


def _runner(app: ApplicationContainer, executor: SubagentExecutor, limit: int) -> SubagentRunner:
    return SubagentRunner(
        app.runtime.scopes().foreground(),
        scopes=app.runtime.scopes(),
        profiles=app.subagent_profiles(),
        open_chat=app.runtime.chat_session,
        max_concurrent=limit,
        executor=executor,
    )


async def _fan_out(runner: SubagentRunner, count: int) -> float:
    request = TaskRequest(subagent_name="cruncher", goal_prompt="crunch")
    started = time.perf_counter()
    results = await asyncio.gather(*(runner.run(request) for _ in range(count)))
    elapsed = time.perf_counter() - started
    failed = [r for r in results if r.terminate_reason is not TerminateReason.GOAL]
    assert not failed, failed[0]
    assert all(r.model_calls == 2 for r in results)
    return elapsed


async def _latency(runner: SubagentRunner, runs: int) -> float:
    request = TaskRequest(subagent_name="noop", goal_prompt="hello")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await runner.run(request)
        times.append(time.perf_counter() - started)
        assert result.terminate_reason is TerminateReason.GOAL, result
    return statistics.median(times) * 1000


async def _measure(runner: SubagentRunner, count: int, latency_runs: int) -> tuple[float, float]:
    await _fan_out(runner, 4)  # warm-up: worker start-up, connections, first imports
    return await _fan_out(runner, count), await _latency(runner, latency_runs)


async def _run(args: argparse.Namespace, port: int, home: Path) -> None:
    import ray
    from ray._private import ray_constants

    # Workers run this interpreter as it is, not a `uv run` of a copy of the working directory.
    ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV = False

    os.environ.update(_env(port, home, args.burn_ms))
    app = _parent_app(port, home)
    await app.init_resources()  # type: ignore[misc]
    local = await _measure(
        _runner(app, LocalExecutor(), args.subagents), args.subagents, args.latency_runs
    )
    plain_local = await _plain_local(port, args.subagents)
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    cpus = int(ray.cluster_resources()["CPU"])  # type: ignore[no-untyped-call]
    pool = WorkerPool(
        RaySettings(workers=cpus, container="subagent_executors:worker_container"),
        runtime_env={"env_vars": _env(port, home, args.burn_ms)},
    )
    try:
        ray_runner = _runner(app, RayExecutor(pool, _NullSink()), args.subagents)
        remote = await _measure(ray_runner, args.subagents, args.latency_runs)
        pool.shutdown()
        plain = (plain_local, await _plain_ray(port, home, args, cpus))
    finally:
        pool.shutdown()  # again, if the measurement failed: shutting down twice is harmless
        ray.shutdown()
        await app.shutdown_resources()  # type: ignore[misc]
    _report(args, cpus, local, remote, plain)


async def _warmed_gather(start: Callable[[], Awaitable[Any]], count: int) -> float:
    """Seconds for `count` of `start()` at once, after a warm-up of four."""
    await asyncio.gather(*(start() for _ in range(4)))
    started = time.perf_counter()
    await asyncio.gather(*(start() for _ in range(count)))
    return time.perf_counter() - started


async def _plain_local(port: int, count: int) -> float:
    """The same work hand-written in this process, for the speed-up Ray itself gives it."""
    return await _warmed_gather(PlainWorker(f"http://127.0.0.1:{port}/v1").run, count)


async def _plain_ray(port: int, home: Path, args: argparse.Namespace, cpus: int) -> float:
    """The same work on `cpus` hand-written actors, spread evenly: Ray's own ceiling here."""
    import ray

    options = {"max_concurrency": RaySettings().worker_concurrency, "scheduling_strategy": "SPREAD"}
    options["runtime_env"] = {"env_vars": _env(port, home, args.burn_ms)}
    actor_class: Any = ray.remote(PlainWorker)
    url = f"http://127.0.0.1:{port}/v1"
    workers = [actor_class.options(**options).remote(url) for _ in range(cpus)]
    turns = itertools.cycle(workers)  # spread evenly, as the pool spreads runs started together
    try:
        return await _warmed_gather(lambda: next(turns).run.remote(), args.subagents)
    finally:
        for worker in workers:
            ray.kill(worker)


def _report(
    args: argparse.Namespace,
    cpus: int,
    local: tuple[float, float],
    remote: tuple[float, float],
    plain: tuple[float, float],
) -> None:
    print(f"{args.subagents} subagents, one {args.burn_ms:.0f} ms CPU tool call each, {cpus} CPUs")
    print(f"  local executor: {local[0]:7.2f} s")
    print(f"  ray executor:   {remote[0]:7.2f} s   ({cpus} workers)")
    print(f"  speed-up:       {local[0] / remote[0]:7.2f}x")
    print("the same calls and tool hand-written (httpx and a thread, no chatscope)")
    print(f"  in this process: {plain[0]:6.2f} s")
    print(f"  on Ray:          {plain[1]:6.2f} s   (one bare actor call each)")
    print(f"  speed-up:        {plain[0] / plain[1]:6.2f}x   (Ray's own, on this machine)")
    print(f"  ray executor / hand-written Ray: {remote[0] / plain[1]:.2f}x")
    print(f"no-op subagent, median of {args.latency_runs} one after another")
    print(
        f"  local: {local[1]:7.2f} ms   ray: {remote[1]:7.2f} ms   "
        f"added by the Ray hop: {remote[1] - local[1]:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subagents", type=int, default=200)
    parser.add_argument("--burn-ms", type=float, default=50.0)
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve_forever())
        return
    server = subprocess.Popen(  # noqa: S603 - this very script
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with tempfile.TemporaryDirectory() as directory:
            home = Path(directory)
            _write_profiles(home / "profiles")
            started = time.perf_counter()
            asyncio.run(_run(args, port, home))
            print(f"benchmark run time: {time.perf_counter() - started:.1f} s")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
