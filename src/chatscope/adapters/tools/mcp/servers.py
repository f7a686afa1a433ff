"""The MCP servers of one application, and the tools they give each scope.

`McpServers` is an application singleton: `start` connects every configured server at once
and lists its tools, building each tool's declaration (namespaced name, description, frozen
input schema, the server's timeout) once; `tools_for` then only wraps those shared,
immutable declarations in fresh proxies for each scope. A server that cannot start is left
out with the reason recorded and a warning logged: the chat goes on without its tools.

A scope's own headers (`ScopeRequest.mcp_headers`) are for HTTP servers only: naming a stdio
server, or a server that is not configured, is a `ConfigurationError` when the scope is built,
rather than a call that silently runs without the identity the caller meant to send.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import SecretStr

from chatscope.adapters.tools.mcp.connection import ServerConnection, describe_failure
from chatscope.adapters.tools.mcp.connector import McpConnector, SdkConnector
from chatscope.adapters.tools.mcp.naming import namespaced_name
from chatscope.adapters.tools.mcp.proxy import McpTool
from chatscope.config.mcp import McpServerSettings, check_server_name
from chatscope.errors import ConfigurationError
from chatscope.services.frozen import deep_freeze
from chatscope.services.tools.ports import Tool, ToolContext, ToolDeclaration
from chatscope.services.tools.toolset import ToolSelection

if TYPE_CHECKING:
    import mcp_types as types

__all__ = ["McpServers", "ToolListing", "run_mcp_servers"]


@dataclass(frozen=True, slots=True)
class ToolListing:
    """One tool as `chatscope tools list` shows it: its name, where it comes from, what it does."""

    name: str
    source: str
    description: str


@dataclass(frozen=True, slots=True)
class _ServedTool:
    declaration: ToolDeclaration
    remote_name: str


@dataclass(frozen=True, slots=True)
class _StartedServer:
    connection: ServerConnection
    tools: tuple[_ServedTool, ...]


class McpServers:
    """The configured MCP servers: started with the application, stopped with it.

    Building one does no I/O. `stderr_dir` receives `<server>.log`, the stderr of each stdio
    server (discarded without it); `connector` replaces the real transports (in tests, see
    `chatscope.testing.mcp`).
    """

    __slots__ = ("_connector", "_servers", "_settings", "_state", "_unavailable")

    def __init__(
        self,
        servers: Mapping[str, McpServerSettings],
        *,
        stderr_dir: Path | None = None,
        connector: McpConnector | None = None,
    ) -> None:
        for name in servers:
            try:
                check_server_name(name)
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from None
        self._settings: Mapping[str, McpServerSettings] = MappingProxyType(dict(servers))
        self._connector = connector or SdkConnector(stderr_dir=stderr_dir)
        self._servers: dict[str, _StartedServer] = {}
        self._unavailable: dict[str, str] = {}
        self._state = "new"

    def __repr__(self) -> str:
        return f"McpServers({sorted(self._settings)}, {self._state})"

    async def start(self) -> None:
        """Connect every server at once, each within its timeout; never raises for a server."""
        if self._state != "new":
            return
        self._state = "starting"
        started = await asyncio.gather(
            *(self._start(name, settings) for name, settings in self._settings.items())
        )
        self._servers = {server.connection.name: server for server in started if server}
        if self._state == "closed":  # `aclose` came while the servers were starting
            await asyncio.gather(*(server.connection.close() for server in started if server))
        else:
            self._state = "started"

    async def aclose(self) -> None:
        """Close every session and stop every server process; calling it again does nothing."""
        if self._state == "closed":
            return
        self._state = "closed"
        await asyncio.gather(*(server.connection.close() for server in self._servers.values()))

    def listing(self) -> tuple[ToolListing, ...]:
        """Every tool of every started server."""
        return tuple(
            ToolListing(tool.declaration.name, f"mcp:{name}", tool.declaration.description)
            for name, server in self._servers.items()
            for tool in server.tools
        )

    def unavailable(self) -> Mapping[str, str]:
        """The servers that failed to start, each with the reason why."""
        return MappingProxyType(dict(self._unavailable))

    def names(self) -> tuple[str, ...]:
        """The names the model sees for every tool of every started server."""
        return tuple(listed.name for listed in self.listing())

    def tools_for(self, caller: ToolContext, selection: ToolSelection) -> tuple[Tool, ...]:
        """Fresh proxies for the scope `caller`, of the servers `selection` lets it use."""
        if not self._servers and not selection.mcp_headers:
            return ()
        headers = self._scope_headers(selection)
        if self._state == "closed":
            return ()
        return tuple(
            McpTool(
                tool.declaration,
                remote_name=tool.remote_name,
                connection=server.connection,
                headers=headers.get(name),
            )
            for name, server in self._servers.items()
            if selection.uses_server(name)
            for tool in server.tools
        )

    def _scope_headers(self, selection: ToolSelection) -> dict[str, Mapping[str, SecretStr]]:
        headers: dict[str, Mapping[str, SecretStr]] = {}
        for name, values in selection.mcp_headers.items():
            settings = self._settings.get(name)
            if settings is None:
                configured = ", ".join(self._settings) or "none"
                raise ConfigurationError(
                    f"headers were given for MCP server {name!r}, which is not configured "
                    f"(configured: {configured})"
                )
            if values and settings.transport != "http":
                raise ConfigurationError(
                    f"headers were given for MCP server {name!r}, a stdio server: "
                    "a scope's own headers go to HTTP servers only"
                )
            if values:
                headers[name] = values
        return headers

    async def _start(self, name: str, settings: McpServerSettings) -> _StartedServer | None:
        connection = ServerConnection(name, settings, self._connector)
        try:
            listed = await connection.open()
        except Exception as exc:
            await connection.close()
            reason = _start_failure(exc, settings.timeout)
            self._unavailable[name] = reason
            _logger().warning("mcp_server_unavailable", server=name, reason=reason)
            return None
        return _StartedServer(connection, _serve(name, settings, listed))


def _serve(
    server: str, settings: McpServerSettings, listed: tuple[types.Tool, ...]
) -> tuple[_ServedTool, ...]:
    """The declarations of a server's tools, built once and shared by every scope."""
    served: dict[str, _ServedTool] = {}
    for tool in listed:
        name = namespaced_name(server, tool.name)
        if name in served:
            _logger().warning("mcp_tool_name_clash", server=server, tool=tool.name, name=name)
            continue
        description = tool.description or f"Tool {tool.name!r} of MCP server {server!r}."
        declaration = ToolDeclaration(
            name=name,
            description=description,
            parameters=deep_freeze(tool.input_schema),
            requires_approval=settings.requires_approval,
            timeout=settings.timeout,
        )
        served[name] = _ServedTool(declaration, tool.name)
    return tuple(served.values())


def _start_failure(exc: Exception, timeout: float) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"did not start within {timeout:g} s"
    return describe_failure(exc)


def _logger() -> Any:
    return structlog.get_logger("chatscope.mcp")


async def run_mcp_servers(servers: McpServers) -> AsyncIterator[McpServers]:
    """The application's resource: servers started with it and stopped with it."""
    await servers.start()
    try:
        yield servers
    finally:
        await servers.aclose()
