"""Real MCP servers for the tests: the `toolbox` script over stdio or over streamable HTTP."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from chatscope.config.mcp import McpServerSettings

__all__ = ["TOOLBOX", "http_toolbox", "stdio_toolbox"]

TOOLBOX = Path(__file__).with_name("toolbox.py")


def stdio_toolbox(
    *, timeout: float = 20.0, env: Mapping[str, str] | None = None
) -> McpServerSettings:
    """Settings that start the toolbox as a child process of this interpreter."""
    return McpServerSettings(
        command=sys.executable, args=(str(TOOLBOX),), env=dict(env or {}), timeout=timeout
    )


@contextmanager
def http_toolbox(port: int = 0, startup: float = 30.0) -> Iterator[str]:
    """The URL of a toolbox serving streamable HTTP on 127.0.0.1 (on `port`, or a free one),
    stopped on exit."""
    with subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(TOOLBOX), "--http", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            port = int(process.stdout.readline())
            url = f"http://127.0.0.1:{port}/mcp"
            _wait_until_it_answers(url, startup)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_it_answers(url: str, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            httpx.get(url, timeout=1.0)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        else:
            return
