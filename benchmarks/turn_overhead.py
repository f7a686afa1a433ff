"""Client CPU per streamed 20-chunk turn: chatscope against raw httpx with a hand-written SSE loop.

Run: `uv run python benchmarks/turn_overhead.py [--turns 300] [--repeats 7]`.
A local server in a separate process streams the same 20-chunk Chat Completions answer to both
clients over keep-alive connections; only the client process's CPU time is measured. Prints the
median CPU microseconds per turn of each and their ratio (target: chatscope <= 1.25x raw).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from chatscope.config.settings import ExplicitSettings
from chatscope.containers import ApplicationContainer
from chatscope.services.chat import ChatSession
from chatscope.services.scopes import ScopeRequest

PROMPT = "Say twenty tokens."


async def raw_turn(client: httpx.AsyncClient, url: str) -> str:
    """The baseline: one POST, the SSE read line by line, deltas joined by hand."""
    body = {
        "model": "bench-model",
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    pieces = []
    async with client.stream("POST", f"{url}/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                continue  # read on to the end so the connection goes back to the pool
            chunk = json.loads(data)
            for choice in chunk["choices"]:
                content = choice["delta"].get("content")
                if content:
                    pieces.append(content)
    return "".join(pieces)


def chatscope_turn(app: ApplicationContainer) -> Callable[[], Awaitable[str]]:
    """A turn as a user runs it: a fresh scope, a chat session, `send`, the completed turn."""
    scopes = app.runtime.scopes()
    request = ScopeRequest(model="bench-model", allowed_tools=())

    async def turn() -> str:
        chat: ChatSession = app.runtime.chat_session(context=scopes.foreground(request))
        completed = await chat.send(PROMPT)
        return completed.text

    return turn


async def cpu_us_per_turn(turn: Callable[[], Awaitable[str]], turns: int) -> float:
    """Mean client CPU microseconds per turn over `turns` sequential turns."""
    started = time.process_time()
    for _ in range(turns):
        await turn()
    return (time.process_time() - started) / turns * 1e6


async def measure(url: str, turns: int, repeats: int) -> dict[str, float]:
    """Alternate the two clients `repeats` times; return the median of each."""
    with tempfile.TemporaryDirectory() as root:
        settings = ExplicitSettings(
            workspace=Path(root),
            provider="openai",
            providers={"openai": {"base_url": url, "auth_required": False}},
        )
        app = ApplicationContainer(settings=settings, environ={})
        await app.init_resources()  # type: ignore[misc]
        async with httpx.AsyncClient() as client:
            ways: dict[str, Callable[[], Awaitable[str]]] = {
                "raw httpx + hand-written SSE": lambda: raw_turn(client, url),
                "chatscope ChatSession.send": chatscope_turn(app),
            }
            assert (
                await ways["raw httpx + hand-written SSE"]()
                == await ways["chatscope ChatSession.send"]()
            )
            for turn in ways.values():
                await cpu_us_per_turn(turn, 50)
            samples: dict[str, list[float]] = {name: [] for name in ways}
            for _ in range(repeats):
                for name, turn in ways.items():
                    samples[name].append(await cpu_us_per_turn(turn, turns))
        await app.shutdown_resources()  # type: ignore[misc]
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    """Start the server, measure, print, stop the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    server_script = Path(__file__).with_name("_sse_server.py")
    server = subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, str(server_script)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        results = asyncio.run(measure(f"http://127.0.0.1:{port}/v1", args.turns, args.repeats))
    finally:
        server.kill()
        server.wait()
    for name, micros in results.items():
        print(f"{name:32s} {micros:8.1f} us CPU per turn")
    ratio = results["chatscope ChatSession.send"] / results["raw httpx + hand-written SSE"]
    print(f"ratio chatscope / raw: {ratio:.2f}x (target <= 1.25x)")


if __name__ == "__main__":
    main()
