"""One MCP server's connection: its application session, owned by a task of its own.

The SDK's context managers run anyio task groups and must be entered and exited in one task,
while calls come from every scope's tasks. So each server's application session is entered by
an owner task that signals when the session is ready, waits to be told to stop, then exits
the contexts itself; other tasks only send requests over the session, which is safe.

A call whose server has gone away (the process died, the connection closed, the HTTP server
forgot the session) fails with a `ToolError`, and the next call starts the server (or
reconnects) again. If that new session fails before any call has succeeded, the server is
down: calls fail at once, and only a call after `restart_pause` seconds tries again, so a
server that dies on every start is neither started in a loop nor given up for good.

A scope that carries headers of its own for this (HTTP) server never uses the application
session: each of its calls opens a session with the configured headers and the scope's, calls
the tool and closes the session, all in the calling task. This costs a connection and an
`initialize` per call, but a session never outlives the call, so no scope's token can be seen
by another scope's call, and there is nothing per scope to clean up when a scope ends.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
import structlog

from chatscope.adapters.tools.mcp.connector import McpConnector, merge_headers
from chatscope.config.mcp import McpServerSettings
from chatscope.errors import ToolError, redact_secrets

if TYPE_CHECKING:
    import mcp_types as types
    from mcp import ClientSession
    from mcp.shared.exceptions import MCPError

__all__ = ["ServerConnection", "describe_failure"]

_CLOSE_GRACE = 10.0
_MAX_TOOL_PAGES = 100
# What the SDK's client and server say when an HTTP server no longer knows the session (HTTP
# 404, "start a new session"); the status itself does not reach the client session.
_SESSION_GONE = frozenset({"session terminated", "session not found"})
_DISCONNECTS = (
    ConnectionError,
    EOFError,
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
    anyio.EndOfStream,
)


class ServerConnection:
    """The application's session with MCP server `name`: started, called, restarted, closed."""

    restart_pause = 30.0
    """Seconds between two restarts of a server that failed again before any call succeeded."""

    __slots__ = (
        "_closed",
        "_connector",
        "_lock",
        "_next_restart",
        "_owner",
        "_session",
        "_settings",
        "_stop",
        "name",
    )

    def __init__(self, name: str, settings: McpServerSettings, connector: McpConnector) -> None:
        self.name = name
        self._settings = settings
        self._connector = connector
        self._session: ClientSession | None = None
        self._owner: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._next_restart = 0.0
        self._closed = False

    def __repr__(self) -> str:
        return f"ServerConnection({self.name!r}, {self._settings.transport})"

    async def open(self) -> tuple[types.Tool, ...]:
        """Start the session and list the server's tools, within the server's timeout."""
        async with asyncio.timeout(self._settings.timeout):
            session = await self._connect()
            return await _list_tools(session)

    async def close(self) -> None:
        """End the session and stop the server; later calls fail with a `ToolError`."""
        self._closed = True
        async with self._lock:
            await self._disconnect()

    async def call(self, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Call `tool` over the application session."""
        session = await self._live_session()
        timer = asyncio.timeout(self._settings.timeout)
        try:
            async with timer:
                result = await session.call_tool(tool, arguments)
        except Exception as exc:
            if not timer.expired() and _is_disconnect(exc) and self._session is session:
                self._session = None
            raise self._failure(tool, exc, timed_out=timer.expired()) from None
        self._next_restart = 0.0
        return result

    async def call_with_headers(
        self, tool: str, arguments: dict[str, Any], headers: Mapping[str, str]
    ) -> types.CallToolResult:
        """Call `tool` in a session of its own, sending the configured headers and `headers`."""
        if self._closed:
            raise ToolError(f"MCP server {self.name!r} is not connected: chatscope stopped it")
        merged = merge_headers(self._settings.headers, headers)
        timer = asyncio.timeout(self._settings.timeout)
        try:
            async with timer, self._connector.connect(self.name, self._settings, merged) as session:
                return await session.call_tool(tool, arguments)
        except Exception as exc:
            raise self._failure(tool, exc, timed_out=timer.expired(), own_session=True) from None

    async def _live_session(self) -> ClientSession:
        if self._closed:
            raise ToolError(f"MCP server {self.name!r} is not connected: chatscope stopped it")
        if (session := self._current()) is not None:
            return session
        async with self._lock:
            return self._current() or await self._restart()

    def _current(self) -> ClientSession | None:
        owner = self._owner
        return self._session if owner is not None and not owner.done() else None

    async def _restart(self) -> ClientSession:
        if self._next_restart > time.monotonic():
            raise ToolError(
                f"MCP server {self.name!r} is not connected: it stopped again after a restart; "
                f"{self._restart_note()}"
            )
        self._next_restart = time.monotonic() + self.restart_pause
        await self._disconnect()
        try:
            async with asyncio.timeout(self._settings.timeout):
                session = await self._connect()
        except Exception as exc:
            reason = describe_failure(exc)
            _logger().warning("mcp_server_restart_failed", server=self.name, reason=reason)
            raise ToolError(
                f"MCP server {self.name!r} is not connected: restarting it failed ({reason})"
            ) from None
        _logger().info("mcp_server_restarted", server=self.name)
        return session

    async def _connect(self) -> ClientSession:
        ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        owner = asyncio.create_task(self._own(ready, self._stop), name=f"mcp-server:{self.name}")
        try:
            session = await asyncio.shield(ready)
        except BaseException:
            await _cancel(owner)
            raise
        self._session, self._owner = session, owner
        return session

    async def _own(self, ready: asyncio.Future[ClientSession], stop: asyncio.Event) -> None:
        """The owner task: enter the session, hand it over, wait for `stop`, exit it here."""
        headers = merge_headers(self._settings.headers, {})
        try:
            async with self._connector.connect(self.name, self._settings, headers) as session:
                ready.set_result(session)
                await stop.wait()
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                _logger().debug(
                    "mcp_server_closed_with_error", server=self.name, reason=describe_failure(exc)
                )
        finally:
            if not ready.done():
                ready.cancel()

    async def _disconnect(self) -> None:
        owner, self._owner, self._session = self._owner, None, None
        if owner is None:
            return
        self._stop.set()
        done, _ = await asyncio.wait({owner}, timeout=_CLOSE_GRACE)
        if not done:
            await _cancel(owner)

    def _failure(
        self, tool: str, exc: Exception, *, timed_out: bool, own_session: bool = False
    ) -> ToolError:
        if timed_out:
            timeout = self._settings.timeout
            what = f"did not finish {tool!r} within {timeout:g} s; the call was cancelled"
        elif self._closed:
            what = f"was stopped by chatscope during {tool!r}"
        elif _is_disconnect(exc):
            what = f"closed the connection during {tool!r} (the server may have stopped)"
            what += "" if own_session else f"; {self._restart_note()}"
        elif isinstance(leaf := _leaf(exc), _mcp_error()):
            what = f"refused {tool!r}: {leaf.message}"
        else:
            what = f"failed to run {tool!r}: {describe_failure(exc)}"
        return ToolError(redact_secrets(f"MCP server {self.name!r} {what}"))

    def _restart_note(self) -> str:
        wait = self._next_restart - time.monotonic()
        if wait > 0:
            return f"it is tried again in {math.ceil(wait)} s"
        return "the next call starts it again"


async def _list_tools(session: ClientSession) -> tuple[types.Tool, ...]:
    import mcp_types as types

    tools: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(_MAX_TOOL_PAGES):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tuple(tools)


async def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait until it has unwound, without raising its outcome here."""
    task.cancel()
    await asyncio.wait({task})


def _leaf(exc: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups, which anyio task groups add."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _mcp_error() -> type[MCPError]:
    from mcp.shared.exceptions import MCPError

    return MCPError


def _is_disconnect(exc: BaseException) -> bool:
    leaf = _leaf(exc)
    if isinstance(leaf, _mcp_error()):
        from mcp_types import CONNECTION_CLOSED

        return leaf.code == CONNECTION_CLOSED or leaf.message.strip().lower() in _SESSION_GONE
    return isinstance(leaf, _DISCONNECTS)


def describe_failure(exc: BaseException) -> str:
    """A one-line reason for `exc`, with secrets redacted."""
    leaf = _leaf(exc)
    text = str(leaf).strip()
    name = type(leaf).__name__
    return redact_secrets(f"{name}: {text}" if text else name)


def _logger() -> Any:
    return structlog.get_logger("chatscope.mcp")
