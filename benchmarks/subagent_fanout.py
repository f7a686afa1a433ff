"""Subagent fan-out: N concurrent subagents through the `task` tool against a local mock server.

Run: `uv run python benchmarks/subagent_fanout.py [--fanout 1 4 16] [--rounds 30]
[--latency-ms 0]`. A local server in a separate process (`_sse_server.py`) streams the same
20-chunk Chat Completions answer to every request; `--latency-ms` makes it wait that long before
each answer, like a model thinking, so that the fan-out has something to overlap. Subagents run
on the real OpenAI adapter, each in a fresh scope built by the containers from a profile file.
For each N it prints the median wall time of

- N subagents started at once through one parent's `task` tool (arguments in, JSON out),
- the same N subagent runs one after another (what the concurrency buys),
- N plain foreground chats sent at once (the same turns without any subagent machinery),

and, separately, the median cost of building one subagent scope (`SubAgentScope.create`) next to
a foreground scope. The ways alternate within each round so they see the same machine state.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from chatscope.config.settings import ExplicitSettings
from chatscope.containers import ApplicationContainer
from chatscope.services.runtime.scopes import ScopeFactory, ScopeRequest
from chatscope.services.subagents.profile import SubAgentScope
from chatscope.services.subagents.task_tools import TaskTool

PROFILE = """\
name = "bench"
description = "answers with twenty tokens"
provider = "openai"
model = "bench-model"
allowed_tools = []
max_turns = 2
timeout_seconds = 60
"""
ARGUMENTS = {"subagent_name": "bench", "goal_prompt": "Say twenty tokens."}
EXPECTED = "".join(f"token{index} " for index in range(1, 20))


def task_tool(scopes: ScopeFactory) -> TaskTool:
    """The `task` tool of a fresh foreground scope."""
    tool = scopes.foreground().tools.get("task")
    assert isinstance(tool, TaskTool)
    return tool


async def fan_out(app: ApplicationContainer, scopes: ScopeFactory, count: int) -> None:
    """`count` subagents started at once from one parent; every one must reach its goal."""
    tool = task_tool(scopes)
    results = await asyncio.gather(*(tool.run(ARGUMENTS) for _ in range(count)))
    assert all('"terminate_reason": "GOAL"' in result for result in results)


async def one_by_one(app: ApplicationContainer, scopes: ScopeFactory, count: int) -> None:
    """The same `count` subagent runs, each awaited before the next starts."""
    tool = task_tool(scopes)
    for _ in range(count):
        assert '"terminate_reason": "GOAL"' in await tool.run(ARGUMENTS)


async def foreground_chats(app: ApplicationContainer, scopes: ScopeFactory, count: int) -> None:
    """`count` plain foreground chats sent at once: the floor without subagent machinery."""
    request = ScopeRequest(model="bench-model", allowed_tools=())
    chats = [app.runtime.chat_session(context=scopes.foreground(request)) for _ in range(count)]
    turns = await asyncio.gather(*(chat.send(ARGUMENTS["goal_prompt"]) for chat in chats))
    assert all(turn.text == EXPECTED for turn in turns)


Way = Callable[[ApplicationContainer, ScopeFactory, int], Awaitable[None]]


async def wall_ms(way: Way, app: ApplicationContainer, scopes: ScopeFactory, count: int) -> float:
    """Wall-clock milliseconds of one call of `way`, after collecting the previous garbage."""
    gc.collect()
    started = time.perf_counter()
    await way(app, scopes, count)
    return (time.perf_counter() - started) * 1000


def scope_creation_us(
    scopes: ScopeFactory, app: ApplicationContainer, builds: int
) -> dict[str, float]:
    """Mean microseconds to build one subagent scope, and one foreground scope, over `builds`."""
    parent = scopes.foreground()
    profile = app.subagent_profiles()["bench"]
    started = time.perf_counter()
    for _ in range(builds):
        SubAgentScope.create("bench", profile, parent, scopes=scopes)
    subagent = (time.perf_counter() - started) / builds * 1e6
    started = time.perf_counter()
    for _ in range(builds):
        scopes.foreground()
    foreground = (time.perf_counter() - started) / builds * 1e6
    return {"subagent": subagent, "foreground": foreground}


WAYS: dict[str, Way] = {
    "fan-out": fan_out,
    "one by one": one_by_one,
    "foreground chats": foreground_chats,
}


async def measure(app: ApplicationContainer, fanout: list[int], rounds: int) -> dict[str, object]:
    """Alternate the ways per N in each round; medians of wall times and scope costs."""
    scopes = app.runtime.scopes()
    for _ in range(3):  # warm-up: connections opened, code paths hot
        for count in fanout:
            for way in WAYS.values():
                await wall_ms(way, app, scopes, count)
    samples: dict[tuple[str, int], list[float]] = {(n, c): [] for n in WAYS for c in fanout}
    scope_samples: dict[str, list[float]] = {"subagent": [], "foreground": []}
    for _ in range(rounds):
        for count in fanout:
            for name, way in WAYS.items():
                samples[(name, count)].append(await wall_ms(way, app, scopes, count))
        for name, cost in scope_creation_us(scopes, app, 300).items():
            scope_samples[name].append(cost)
    walls = {key: statistics.median(values) for key, values in samples.items()}
    costs = {name: statistics.median(values) for name, values in scope_samples.items()}
    return {"walls": walls, "scopes": costs}


async def run(url: str, fanout: list[int], rounds: int) -> dict[str, object]:
    """Build the application over a temporary workspace with one profile file, and measure."""
    with tempfile.TemporaryDirectory() as root:
        profiles = Path(root) / "profiles"
        profiles.mkdir()
        (profiles / "bench.toml").write_text(PROFILE, encoding="utf-8")
        settings = ExplicitSettings(
            workspace=Path(root),
            provider="openai",
            model="bench-model",
            providers={"openai": {"base_url": url, "auth_required": False}},
            profiles_dir=profiles,
            max_concurrent_subagents=max(fanout),
        )
        app = ApplicationContainer(settings=settings, environ={})
        await app.init_resources()  # type: ignore[misc]
        try:
            return await measure(app, fanout, rounds)
        finally:
            await app.shutdown_resources()  # type: ignore[misc]


def report(results: dict[str, object], fanout: list[int]) -> None:
    """Print one line per N and the scope creation costs."""
    walls = results["walls"]
    costs = results["scopes"]
    assert isinstance(walls, dict)
    assert isinstance(costs, dict)
    print(
        f"{'N':>3}  {'fan-out ms':>10}  {'one by one ms':>13}  {'speed-up':>8}  "
        f"{'foreground ms':>13}  {'fan-out / foreground':>20}"
    )
    for count in fanout:
        fan, seq, fg = (walls[(name, count)] for name in WAYS)
        print(
            f"{count:>3}  {fan:>10.2f}  {seq:>13.2f}  {seq / fan:>7.2f}x  {fg:>13.2f}  "
            f"{fan / fg:>19.2f}x"
        )
    print(
        f"scope creation: subagent {costs['subagent']:.1f} us, "
        f"foreground {costs['foreground']:.1f} us (median of rounds, 300 builds each)"
    )


SSE_SERVER = Path(__file__).with_name("_sse_server.py")


async def serve_with_latency(latency_ms: float) -> None:
    """`_sse_server.py`'s answer, each sent `latency_ms` after its request arrived."""
    spec = importlib.util.spec_from_file_location("_sse_server", SSE_SERVER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    body: bytes = module._body()
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    head += f"content-length: {len(body)}\r\n\r\n".encode()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (int(line.split(b":", 1)[1]) for line in header.split(b"\r\n")
                     if line.lower().startswith(b"content-length:")),
                    0,
                )  # fmt: skip
                await reader.readexactly(length)
                await asyncio.sleep(latency_ms / 1000)
                writer.write(head + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Start the server, measure, print, stop the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fanout", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_with_latency(args.latency_ms))
        return
    command = [sys.executable, str(SSE_SERVER)]
    if args.latency_ms:
        command = [sys.executable, __file__, "--serve", "--latency-ms", str(args.latency_ms)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        results = asyncio.run(run(f"http://127.0.0.1:{port}/v1", args.fanout, args.rounds))
    finally:
        server.kill()
        server.wait()
    print(f"server latency {args.latency_ms:g} ms per answer, {args.rounds} rounds")
    report(results, args.fanout)


if __name__ == "__main__":
    main()
