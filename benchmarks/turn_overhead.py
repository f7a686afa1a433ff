"""Client CPU per streamed 20-chunk turn: chatscope against raw httpx with a hand-written SSE loop.

Run: `uv run python benchmarks/turn_overhead.py [--turns 50] [--rounds 40]`.
A local server in a separate process streams the same 20-chunk Chat Completions answer to both
clients over keep-alive connections; only the client process's CPU time is measured. Prints the
median CPU microseconds per turn of each and their ratio (target: chatscope <= 1.25x raw), for
`ChatSession.send` (the turn's result) and for `ChatSession.stream` read event by event.
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
from chatscope.services.chat.session import ChatSession
from chatscope.services.events import TextDelta
from chatscope.services.runtime.scopes import ScopeRequest

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


def fresh_chats(app: ApplicationContainer, count: int) -> list[ChatSession]:
    """`count` chat sessions, each on its own fresh scope, built before the clock starts.

    Every turn thus sends the same one-message request as the raw client. Building the scope is
    measured on its own by `scope_creation.py`.
    """
    scopes = app.runtime.scopes()
    request = ScopeRequest(model="bench-model", allowed_tools=())
    return [app.runtime.chat_session(context=scopes.foreground(request)) for _ in range(count)]


def chatscope_turns(app: ApplicationContainer, count: int) -> Callable[[], Awaitable[str]]:
    """`count` turns, each `send` on its own fresh chat scope."""
    chats = fresh_chats(app, count)

    async def turn() -> str:
        completed = await chats.pop().send(PROMPT)
        return completed.text

    return turn


def chatscope_streamed_turns(app: ApplicationContainer, count: int) -> Callable[[], Awaitable[str]]:
    """`count` turns, each `stream` on its own fresh chat scope, text joined from its deltas."""
    chats = fresh_chats(app, count)

    async def turn() -> str:
        pieces = [
            event.text async for event in chats.pop().stream(PROMPT) if type(event) is TextDelta
        ]
        return "".join(pieces)

    return turn


async def cpu_us_per_turn(turn: Callable[[], Awaitable[str]], turns: int) -> float:
    """Mean client CPU microseconds per turn over `turns` sequential turns."""
    started = time.process_time()
    for _ in range(turns):
        await turn()
    return (time.process_time() - started) / turns * 1e6


async def measure(url: str, turns: int, rounds: int) -> dict[str, float]:
    """Alternate the two clients in short rounds; medians of each and of the paired ratios.

    Adjacent rounds see the same machine state, so the per-round ratio cancels most of the
    drift of a shared virtual machine; its median is the figure to quote.
    """
    with tempfile.TemporaryDirectory() as root:
        settings = ExplicitSettings(
            workspace=Path(root),
            provider="openai",
            providers={"openai": {"base_url": url, "auth_required": False}},
        )
        app = ApplicationContainer(settings=settings, environ={})
        await app.init_resources()  # type: ignore[misc]
        async with httpx.AsyncClient() as http:

            async def raw() -> str:
                return await raw_turn(http, url)

            clients = {
                "raw": raw,
                "send": chatscope_turns(app, 51 + turns * rounds),
                "stream": chatscope_streamed_turns(app, 51 + turns * rounds),
            }
            answers = {name: await client() for name, client in clients.items()}
            assert len(set(answers.values())) == 1, answers
            samples: dict[str, list[float]] = {name: [] for name in clients}
            for client in clients.values():
                await cpu_us_per_turn(client, 50)
            for _ in range(rounds):
                for name, client in clients.items():
                    samples[name].append(await cpu_us_per_turn(client, turns))
        await app.shutdown_resources()  # type: ignore[misc]
    results = {name: statistics.median(values) for name, values in samples.items()}
    for name in ("send", "stream"):
        paired = zip(samples[name], samples["raw"], strict=True)
        results[f"{name}_ratio"] = statistics.median(mine / base for mine, base in paired)
    return results


def main() -> None:
    """Start the server, measure, print, stop the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=50, help="turns per round")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    server_script = Path(__file__).with_name("_sse_server.py")
    server = subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, str(server_script)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        results = asyncio.run(measure(f"http://127.0.0.1:{port}/v1", args.turns, args.rounds))
    finally:
        server.kill()
        server.wait()
    print(f"raw httpx + hand-written SSE  {results['raw']:8.1f} us CPU per turn (median)")
    print(f"chatscope ChatSession.send    {results['send']:8.1f} us CPU per turn (median)")
    print(f"chatscope ChatSession.stream  {results['stream']:8.1f} us CPU per turn (median)")
    print(
        f"ratio send / raw: {results['send_ratio']:.2f}x, stream / raw: "
        f"{results['stream_ratio']:.2f}x (medians of paired rounds; target <= 1.25x)"
    )


if __name__ == "__main__":
    main()
