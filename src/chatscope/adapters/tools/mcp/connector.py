"""Opening one MCP session: the `McpConnector` port and the SDK's stdio and HTTP transports.

A connector yields an initialised `ClientSession` and closes it (and stops the process it
started) when the context exits. The SDK's context managers run anyio task groups, so a
session must be entered and exited in one task; `connection.py` takes care of that.

A stdio server gets a minimal environment: a safe set of variables (PATH, HOME, USER,
locale, temporary directory; the Windows system ones; the SDK adds SHELL and TERM) and its
configured `env`, nothing else of chatscope's environment, so no provider key reaches it.
Its stderr goes to `<stderr_dir>/<server>.log` (or nowhere), never to the chat's terminal.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from pydantic import SecretStr

from chatscope.config.mcp import McpServerSettings
from chatscope.errors import ConfigurationError

if TYPE_CHECKING:
    import httpx2
    from mcp import ClientSession, StdioServerParameters

__all__ = ["McpConnector", "SdkConnector", "child_environment", "merge_headers"]

_SAFE_VARIABLES = frozenset(
    {
        # POSIX: where programs are, who and where the user is, locale (and LC_*), temp, zone.
        *("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TMP", "TEMP"),
        # Windows: what a process needs to start at all, and the user's profile folders.
        *("SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC", "PATHEXT", "USERPROFILE", "APPDATA"),
    }
)
_SSE_READ_TIMEOUT = 300.0


class McpConnector(Protocol):
    """Opens initialised sessions with MCP servers (the test seam: `chatscope.testing.mcp`)."""

    def connect(
        self, name: str, settings: McpServerSettings, headers: Mapping[str, str]
    ) -> AbstractAsyncContextManager[ClientSession]:
        """An initialised session with server `name`, closed when the context exits.

        `headers` is the whole set of HTTP headers the session sends (configured and, for a
        scope's own session, the scope's); stdio servers have none. Enter and exit the context
        in the same task.
        """
        ...


class SdkConnector:
    """Connects over the `mcp` SDK: a child process for `command`, streamable HTTP for `url`."""

    __slots__ = ("_stderr_dir",)

    def __init__(self, *, stderr_dir: Path | None = None) -> None:
        self._stderr_dir = stderr_dir

    def __repr__(self) -> str:
        return f"SdkConnector(stderr_dir={self._stderr_dir!r})"

    @asynccontextmanager
    async def connect(
        self, name: str, settings: McpServerSettings, headers: Mapping[str, str]
    ) -> AsyncIterator[ClientSession]:
        """An initialised session over the server's own transport."""
        from mcp import ClientSession, stdio_client
        from mcp.client.streamable_http import streamable_http_client

        async with AsyncExitStack() as stack:
            if settings.command is not None:
                errlog = stack.enter_context(_open_stderr(self._stderr_dir, name))
                parameters = _stdio_parameters(settings.command, settings)
                read, write = await stack.enter_async_context(stdio_client(parameters, errlog))
            elif settings.url is not None:
                client = await stack.enter_async_context(_http_client(settings, headers))
                read, write = await stack.enter_async_context(
                    streamable_http_client(settings.url, http_client=client)
                )
            else:
                raise ConfigurationError(f"MCP server {name!r} has neither a command nor a url")
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            yield session


def _stdio_parameters(command: str, settings: McpServerSettings) -> StdioServerParameters:
    from mcp import StdioServerParameters

    return StdioServerParameters(
        command=command,
        args=list(settings.args),
        env=child_environment(settings.env),
        cwd=settings.cwd,
    )


def _http_client(settings: McpServerSettings, headers: Mapping[str, str]) -> httpx2.AsyncClient:
    import httpx2

    timeout = httpx2.Timeout(settings.timeout, read=max(settings.timeout, _SSE_READ_TIMEOUT))
    return httpx2.AsyncClient(headers=dict(headers), timeout=timeout)


def _open_stderr(directory: Path | None, name: str) -> TextIO:
    """The file a stdio server's stderr is appended to (the null device without a directory)."""
    if directory is None:
        return open(os.devnull, "w", encoding="utf-8")
    directory.mkdir(parents=True, exist_ok=True)
    return (directory / f"{name}.log").open("a", encoding="utf-8")


def child_environment(configured: Mapping[str, str]) -> dict[str, str]:
    """A stdio server's environment: the safe variables of ours, then its configured `env`."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if (key in _SAFE_VARIABLES or key.startswith("LC_")) and not value.startswith("()")
    }
    return inherited | dict(configured)


def merge_headers(configured: Mapping[str, SecretStr], scope: Mapping[str, str]) -> dict[str, str]:
    """The configured headers with the scope's over them; names compare case-insensitively."""
    overridden = {name.lower() for name in scope}
    merged = {
        name: value.get_secret_value()
        for name, value in configured.items()
        if name.lower() not in overridden
    }
    return merged | dict(scope)
