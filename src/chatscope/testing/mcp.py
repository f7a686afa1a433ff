"""MCP servers that live in the test's own process, for chatscope users' tests.

Write the server with the `mcp` SDK, as in production, and let chatscope talk to it over the
SDK's in-memory transport: no process, no port.

    from dependency_injector import providers
    from mcp.server.mcpserver import MCPServer

    weather = MCPServer("weather")

    @weather.tool()
    def forecast(city: str) -> str:
        return f"sunny in {city}"

    app = build_test_app(provider, workspace=tmp_path)
    app.tools.mcp_servers.override(providers.Object(fake_mcp_servers({"weather": weather})))
    await app.init_resources()      # starts them (the `mcp_lifecycle` resource)
    ...                             # the model may now call `weather__forecast`
    await app.shutdown_resources()

A fake server behaves as an HTTP server does: a scope with headers of its own for it calls it
through a session of its own (the headers themselves cannot travel in memory).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Any

from mcp import Client, ClientSession
from mcp.server import Server
from mcp.server.mcpserver import MCPServer

from chatscope.adapters.tools.mcp import McpServers
from chatscope.config.mcp import McpServerSettings

__all__ = ["InMemoryConnector", "fake_mcp_servers"]

FakeServer = MCPServer | Server[Any]


class InMemoryConnector:
    """Opens sessions with in-process servers, by server name, over in-memory streams."""

    __slots__ = ("_servers",)

    def __init__(self, servers: Mapping[str, FakeServer]) -> None:
        self._servers = MappingProxyType(dict(servers))

    def __repr__(self) -> str:
        return f"InMemoryConnector({sorted(self._servers)})"

    @asynccontextmanager
    async def connect(
        self, name: str, settings: McpServerSettings, headers: Mapping[str, str]
    ) -> AsyncIterator[ClientSession]:
        """An initialised session with the in-process server `name`."""
        async with Client(self._servers[name], mode="legacy", cache=None) as client:
            yield client.session


def fake_mcp_servers(servers: Mapping[str, FakeServer], *, timeout: float = 10.0) -> McpServers:
    """`McpServers` for the given in-process servers, each called under its mapping key."""
    settings = {
        name: McpServerSettings(url=f"http://{name}.mcp.invalid/mcp", timeout=timeout)
        for name in servers
    }
    return McpServers(settings, connector=InMemoryConnector(servers))
