"""Client CPU per streamed 20-chunk turn: chatscope against raw httpx with a hand-written SSE loop.

Run: `uv run python benchmarks/turn_overhead.py [--turns 50] [--rounds 40]
[--database-url postgresql://...] [--tracing memory]`.
A local server in a separate process streams the same 20-chunk Chat Completions answer to both
clients over keep-alive connections; only the client process's CPU time is measured. Prints the
median CPU microseconds per turn of each and their ratio (target: chatscope <= 1.25x raw), for
`ChatSession.send` (the turn's result), for `ChatSession.stream` read event by event, and for
`send` on a saved session (each turn a new session in SQLite, committed before `send` returns;
and in PostgreSQL with `--database-url`). Beside the saved turn it measures its floor: raw httpx
whose turn then writes the same rows with bare `sqlite3` calls, what SQLite itself costs a turn
(see `SqliteFloor`). Tracing is off as it is without configuration (the
global tracer provider is OpenTelemetry's proxy to nothing); `--tracing memory` records every
span with the SDK into an in-memory exporter instead (a dev dependency, or the `otel` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
from dependency_injector import providers

from chatscope.adapters.storage.codec import encode_message, encode_usage
from chatscope.adapters.storage.database import CHECKPOINT_EVERY
from chatscope.adapters.storage.engine import ON_LOOP_PRAGMAS, SQLITE_PRAGMAS, open_database
from chatscope.adapters.storage.schema import prepare_database
from chatscope.config.settings import ExplicitSettings
from chatscope.containers import ApplicationContainer
from chatscope.services.chat.session import ChatSession
from chatscope.services.events import TextDelta
from chatscope.services.messages import Message, Role, TextBlock, Usage
from chatscope.services.runtime.scopes import ScopeRequest

PROMPT = "Say twenty tokens."
_INSERT_SESSION = (
    "INSERT INTO sessions (id, created_at, updated_at, provider, model, title, message_count, "
    "turn_count, owner, system_prompt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_MESSAGE = (
    "INSERT INTO messages (session_id, position, turn, role, payload, usage) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


async def raw_turn(client: httpx.AsyncClient, url: str) -> str:
    """The baseline: one POST, the SSE read line by line, deltas joined by hand."""
    return await raw_completion(client, url, [{"role": "user", "content": PROMPT}])


async def raw_completion(
    client: httpx.AsyncClient, url: str, messages: list[dict[str, Any]], model: str = "bench-model"
) -> str:
    """One streamed Chat Completions request of `messages`, read by hand; the answer's text."""
    body = {
        "model": model,
        "messages": messages,
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


class SqliteFloor:
    """A saved turn's rows written by hand: what SQLite itself costs each turn.

    chatscope's schema (made by its migrations) and its on-loop connection's pragmas; per turn
    one `BEGIN IMMEDIATE` ... `COMMIT` inserting a new session and its two messages, as
    chatscope's store does; a passive checkpoint on a worker thread every `CHECKPOINT_EVERY`
    commits. The messages and usage are encoded once, beforehand: encoding is chatscope's work.
    """

    def __init__(self, path: Path, answer: str) -> None:
        self._path = path
        self._connection = self._connect(SQLITE_PRAGMAS + ON_LOOP_PRAGMAS)
        self._checkpointer = self._connect(SQLITE_PRAGMAS)
        self._thread = ThreadPoolExecutor(1)
        self._checkpoint: Future[Any] | None = None
        self._commits = 0
        reply = Message(Role.ASSISTANT, (TextBlock(answer),))
        self._payloads = (encode_message(Message.user(PROMPT)), encode_message(reply))
        self._usage = encode_usage(Usage(input_tokens=12, output_tokens=20))

    @classmethod
    async def create(cls, directory: Path, answer: str) -> SqliteFloor:
        """A floor on a new database in `directory`, migrated by chatscope."""
        database = open_database(data_dir=directory, database_url=None)
        await prepare_database(database)
        await database.dispose()
        return cls(Path(str(database.url.database)), answer)

    def save(self) -> None:
        """Write one turn: a new session and its prompt and answer, committed."""
        session_id, now = uuid.uuid4().hex, str(dt.datetime.now(dt.UTC).replace(tzinfo=None))
        prompt, answer = self._payloads
        self._connection.execute("BEGIN IMMEDIATE")
        session = (session_id, now, now, "openai", "bench-model", PROMPT, 2, 1, "local", None)
        self._connection.execute(_INSERT_SESSION, session)
        messages = [
            (session_id, 0, 1, "user", prompt, None),
            (session_id, 1, 1, "assistant", answer, self._usage),
        ]
        self._connection.executemany(_INSERT_MESSAGE, messages)
        self._connection.execute("COMMIT")
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY and (
            self._checkpoint is None or self._checkpoint.done()
        ):
            self._commits = 0
            sql = "PRAGMA wal_checkpoint(PASSIVE)"
            self._checkpoint = self._thread.submit(self._checkpointer.execute, sql)

    def close(self) -> None:
        self._thread.shutdown()
        self._connection.close()
        self._checkpointer.close()

    def _connect(self, pragmas: tuple[str, ...]) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        for pragma in pragmas:
            connection.execute(pragma)
        return connection


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


def application(
    root: Path, url: str, database_url: str | None = None, tracer_provider: Any = None
) -> ApplicationContainer:
    """chatscope on the local server, its workspace `root`; with `database_url` ("sqlite" for
    the default file in `root/data`) every chat is a saved session; with `tracer_provider`
    every turn is traced with it."""
    saved: dict[str, Any] = {}
    if database_url is not None:
        saved = {"history_backend": "database", "data_dir": root / "data"}
        if database_url != "sqlite":
            saved["database_url"] = database_url
    settings = ExplicitSettings(
        workspace=root,
        provider="openai",
        providers={"openai": {"base_url": url, "auth_required": False}},
        **saved,
    )
    app = ApplicationContainer(settings=settings, environ={})
    if tracer_provider is not None:
        app.tracer_provider.override(providers.Object(tracer_provider))
    return app


def in_memory_tracer_provider() -> tuple[Any, Callable[[], int]]:
    """An SDK tracer provider exporting every span, as it ends, into memory; and a function
    that empties the memory, returning how many spans it held."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    def drain() -> int:
        count = len(exporter.get_finished_spans())
        exporter.clear()
        return count

    return provider, drain


async def paired_rounds(
    clients: dict[str, Callable[[], Awaitable[str]]],
    turns: int,
    rounds: int,
    drain: Callable[[], int],
) -> dict[str, list[float]]:
    """Each client's CPU per turn in each of `rounds` rounds of `turns` turns, in turn."""
    samples: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(rounds):
        for name, client in clients.items():
            samples[name].append(await cpu_us_per_turn(client, turns))
        drain()  # spans kept in memory are not what is measured
    return samples


async def measure(
    url: str, turns: int, rounds: int, database_url: str | None = None, tracing: str = "off"
) -> dict[str, float]:
    """Alternate the clients in short rounds; medians of each and of the paired ratios.

    Adjacent rounds see the same machine state, so the per-round ratio cancels most of the
    drift of a shared virtual machine; its median is the figure to quote.
    """
    tracer_provider, drain = (
        in_memory_tracer_provider() if tracing == "memory" else (None, lambda: 0)
    )
    with tempfile.TemporaryDirectory() as root:
        apps = {"memory": application(Path(root), url, None, tracer_provider)}
        apps["sqlite"] = application(Path(root), url, "sqlite", tracer_provider)
        if database_url:
            apps["postgresql"] = application(Path(root), url, database_url, tracer_provider)
        for app in apps.values():
            await app.init_resources()  # type: ignore[misc]
        count = 51 + turns * rounds
        async with httpx.AsyncClient() as http:
            floor = await SqliteFloor.create(Path(root) / "floor", await raw_turn(http, url))
            with closing(floor):

                async def raw() -> str:
                    return await raw_turn(http, url)

                async def raw_saved() -> str:
                    answer = await raw_turn(http, url)
                    floor.save()
                    return answer

                clients = {
                    "raw": raw,
                    "sqlite floor": raw_saved,
                    "send": chatscope_turns(apps["memory"], count),
                    "stream": chatscope_streamed_turns(apps["memory"], count),
                }
                for name, app in apps.items():
                    if name != "memory":
                        clients[f"saved {name}"] = chatscope_turns(app, count)
                answers = {name: await client() for name, client in clients.items()}
                assert len(set(answers.values())) == 1, answers
                for client in clients.values():
                    await cpu_us_per_turn(client, 50)
                assert tracing == "off" or drain() > 0, "no span was recorded"
                samples = await paired_rounds(clients, turns, rounds, drain)
        for app in apps.values():
            await app.shutdown_resources()  # type: ignore[misc]
    results = {name: statistics.median(values) for name, values in samples.items()}
    for name in clients:
        if name == "raw":
            continue
        paired = zip(samples[name], samples["raw"], strict=True)
        results[f"{name}_ratio"] = statistics.median(mine / base for mine, base in paired)
    return results


def main() -> None:
    """Start the server, measure, print, stop the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=50, help="turns per round")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--database-url", help="also measure saved turns in this database")
    parser.add_argument(
        "--tracing",
        choices=("off", "memory"),
        default="off",
        help="off (no tracer provider configured) or memory (every span recorded in memory)",
    )
    args = parser.parse_args()
    server_script = Path(__file__).with_name("_sse_server.py")
    server = subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, str(server_script)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        base_url = f"http://127.0.0.1:{port}/v1"
        results = asyncio.run(
            measure(base_url, args.turns, args.rounds, args.database_url, args.tracing)
        )
    finally:
        server.kill()
        server.wait()
    print(f"tracing: {args.tracing}")
    print(f"raw httpx + hand-written SSE  {results['raw']:8.1f} us CPU per turn (median)")
    for name in ("send", "stream", "sqlite floor", "saved sqlite", "saved postgresql"):
        if name in results:
            who = "raw httpx + bare sqlite3" if name == "sqlite floor" else f"chatscope {name}"
            print(
                f"{who:29s} {results[name]:8.1f} us CPU per turn (median), "
                f"{results[f'{name}_ratio']:.2f}x raw (median of paired rounds)"
            )
    print("targets: send and stream <= 1.25x raw, saved <= 1.5x raw")


if __name__ == "__main__":
    main()
