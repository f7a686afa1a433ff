"""Serving `chatscope.web` in tests: in process over ASGI, or on a real uvicorn socket.

`serving(container)` runs the app's lifespan (which owns the container's resources) and hands
back an `httpx.AsyncClient` talking to it through `ASGITransport`; `on_socket(app)` serves the
app with uvicorn on a free port of 127.0.0.1; `serve(workdir, env)` runs `chatscope serve` as a
process of its own. `parse_sse` reads an event stream back.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from chatscope.containers.application import ApplicationContainer
from chatscope.web import create_app, hash_key

__all__ = [
    "BASE_URL",
    "Served",
    "ServedEvent",
    "api_keys",
    "bearer",
    "free_port",
    "on_socket",
    "parse_sse",
    "serve",
    "serving",
]

BASE_URL = "http://chatscope.test"
ServedEvent = tuple[str, Any]


@asynccontextmanager
async def serving(
    container: ApplicationContainer, *, client: tuple[str, int] = ("127.0.0.1", 50000)
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `create_app(container)`, its lifespan running; `client` is the caller's
    address the app sees."""
    app = create_app(container)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            yield http


@asynccontextmanager
async def on_socket(app: FastAPI) -> AsyncIterator[str]:
    """`app` served by uvicorn on 127.0.0.1 (lifespan included); yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def api_keys(**keys: str) -> dict[str, Any]:
    """The `server` settings section giving each tenant (keyword) its key (value)."""
    return {"api_keys": {tenant: hash_key(key) for tenant, key in keys.items()}}


def bearer(key: str, provider_key: str | None = None) -> dict[str, str]:
    """Headers authenticating with `key` (and bringing `provider_key`)."""
    headers = {"Authorization": f"Bearer {key}"}
    if provider_key is not None:
        headers["X-Provider-Key"] = provider_key
    return headers


def parse_sse(text: str) -> list[ServedEvent]:
    """The (event name, parsed data) pairs of an event stream; unnamed events are `message`,
    and a `[DONE]` data line is kept as the string."""
    events: list[ServedEvent] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: Mapping[str, list[str]] = _fields(block)
        if "data" not in fields:
            continue
        data = "\n".join(fields["data"])
        name = fields.get("event", ["message"])[-1]
        events.append((name, data if data == "[DONE]" else json.loads(data)))
    return events


def _fields(block: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for line in block.split("\n"):
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name, []).append(value.removeprefix(" "))
    return fields


@dataclass(frozen=True)
class Served:
    """A running `chatscope serve` process and where it answers."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> int:
        """SIGTERM, then its exit code (30 s at most)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@contextmanager
def serve(workdir: Path, env: dict[str, str], *args: str) -> Iterator[Served]:
    """`chatscope serve --port <free> ARGS` in `workdir`, ready; killed if still running."""
    port = free_port()
    log = workdir.parent / f"serve-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "chatscope", "serve", "--port", str(port), *args],
            cwd=workdir,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_until_healthy(served)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def wait_until_healthy(served: Served) -> None:
    """Poll /healthz until it answers (60 s at most)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            pytest.fail(f"serve exited early:\n{served.log.read_text()}")
        try:
            if httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"serve never became healthy:\n{served.log.read_text()}")
