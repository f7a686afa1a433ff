"""`McpServers` over in-memory servers: listing, per-scope proxies, sessions, failures, close."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import pytest
from mcp import ClientSession
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError as ServerToolError
from structlog.testing import capture_logs

from chatscope.adapters.tools.mcp import McpServers, McpTool, ToolListing
from chatscope.config.mcp import McpServerSettings
from chatscope.errors import ConfigurationError, ToolError
from chatscope.services.frozen import FrozenDict
from chatscope.services.tools.ports import Tool, ToolContext
from chatscope.services.tools.toolset import ToolSelection, freeze_headers
from chatscope.testing.mcp import InMemoryConnector, fake_mcp_servers

CALLER = ToolContext("session", "runtime", "demo", "demo-model")
OTHER_CALLER = ToolContext("session-2", "runtime-2", "demo", "demo-model")


def toolbox() -> MCPServer:
    """A small in-process server: echo, fail, sleep."""
    server = MCPServer("toolbox")

    @server.tool()
    def echo(text: str) -> str:
        """Return `text`."""
        return text

    @server.tool()
    def fail(message: str) -> str:
        """Fail with `message`."""
        raise ServerToolError(message)

    @server.tool()
    async def sleep(seconds: float) -> str:
        """Wait."""
        await asyncio.sleep(seconds)
        return "slept"

    return server


class RecordingConnector:
    """Opens in-memory sessions and records, per server, the headers each session sent."""

    def __init__(self, servers: Mapping[str, MCPServer]) -> None:
        self._inner = InMemoryConnector(servers)
        self.opened: list[tuple[str, dict[str, str]]] = []
        self.failing: dict[str, BaseException] = {}
        self.hanging: set[str] = set()

    @asynccontextmanager
    async def connect(
        self, name: str, settings: McpServerSettings, headers: Mapping[str, str]
    ) -> AsyncIterator[ClientSession]:
        self.opened.append((name, dict(headers)))
        if name in self.failing:
            raise self.failing[name]
        if name in self.hanging:
            await asyncio.sleep(3600)
        async with self._inner.connect(name, settings, headers) as session:
            yield session


def by_name(tools: tuple[Tool, ...]) -> dict[str, Tool]:
    return {tool.declaration.name: tool for tool in tools}


@pytest.fixture
async def servers() -> AsyncIterator[McpServers]:
    """Two fake servers, started, closed after the test."""
    started = fake_mcp_servers({"box": toolbox(), "other": toolbox()})
    await started.start()
    yield started
    await started.aclose()


async def test_tools_are_listed_under_namespaced_names(servers: McpServers) -> None:
    """Each server's tools appear as `{server}__{tool}`, with the server as their source."""
    assert set(servers.names()) == {
        f"{server}__{tool}" for server in ("box", "other") for tool in ("echo", "fail", "sleep")
    }
    assert ToolListing("box__echo", "mcp:box", "Return `text`.") in servers.listing()
    assert servers.unavailable() == {}


async def test_declarations_are_built_once_and_shared(servers: McpServers) -> None:
    """Two scopes get distinct proxies over one frozen declaration carrying the timeout."""
    first = by_name(servers.tools_for(CALLER, ToolSelection()))["box__echo"]
    second = by_name(servers.tools_for(OTHER_CALLER, ToolSelection()))["box__echo"]
    assert first is not second
    assert first.declaration is second.declaration
    assert isinstance(first.declaration.parameters, FrozenDict)
    assert first.declaration.parameters["required"] == ("text",)
    assert first.declaration.timeout == 10.0


async def test_a_call_returns_the_tools_text(servers: McpServers) -> None:
    """A proxy calls its own server's tool with the model's arguments."""
    tools = by_name(servers.tools_for(CALLER, ToolSelection()))
    assert await tools["box__echo"].run(FrozenDict({"text": "hello"}), CALLER) == "hello"


async def test_a_tool_error_is_a_tool_error_with_its_message(servers: McpServers) -> None:
    """A result flagged `isError` raises `ToolError` carrying the tool's own words."""
    tool = by_name(servers.tools_for(CALLER, ToolSelection()))["box__fail"]
    with pytest.raises(ToolError, match="bad input"):
        await tool.run({"message": "bad input"})


async def test_bad_arguments_are_a_tool_error(servers: McpServers) -> None:
    """Arguments the server refuses are reported to the model, not raised as a crash."""
    tool = by_name(servers.tools_for(CALLER, ToolSelection()))["box__echo"]
    with pytest.raises(ToolError, match="echo"):
        await tool.run({})


async def test_a_scope_sees_only_the_servers_it_may_use(servers: McpServers) -> None:
    """`mcp_servers` narrows a scope to those servers' tools."""
    tools = servers.tools_for(CALLER, ToolSelection(mcp_servers=("other",)))
    assert {tool.declaration.name.split("__")[0] for tool in tools} == {"other"}
    assert servers.tools_for(CALLER, ToolSelection(mcp_servers=())) == ()


async def test_a_slow_call_times_out_with_a_clear_message() -> None:
    """A call outliving the server's timeout ends quickly as a `ToolError`."""
    servers = fake_mcp_servers({"box": toolbox()}, timeout=0.3)
    await servers.start()
    tool = by_name(servers.tools_for(CALLER, ToolSelection()))["box__sleep"]
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"MCP server 'box' did not finish 'sleep' within 0.3 s"):
        await tool.run({"seconds": 30})
    assert time.monotonic() - started < 5
    echo = by_name(servers.tools_for(CALLER, ToolSelection()))["box__echo"]
    assert await echo.run({"text": "still here"}) == "still here"
    await servers.aclose()


async def test_scopes_with_headers_get_sessions_of_their_own() -> None:
    """A scope's headers go, merged over the configured ones, in a session per call only."""
    connector = RecordingConnector({"web": toolbox()})
    settings = McpServerSettings(url="http://web.invalid/mcp", headers={"X-Team": "red"})
    servers = McpServers({"web": settings}, connector=connector)
    await servers.start()
    assert connector.opened == [("web", {"X-Team": "red"})]
    alice = ToolSelection(mcp_headers=freeze_headers({"web": {"Authorization": "Bearer A"}}))
    bob = ToolSelection(mcp_headers=freeze_headers({"web": {"authorization": "Bearer B"}}))
    alice_echo = by_name(servers.tools_for(CALLER, alice))["web__echo"]
    bob_echo = by_name(servers.tools_for(OTHER_CALLER, bob))["web__echo"]
    plain_echo = by_name(servers.tools_for(CALLER, ToolSelection()))["web__echo"]
    await asyncio.gather(
        *(alice_echo.run({"text": "a"}) for _ in range(3)),
        *(bob_echo.run({"text": "b"}) for _ in range(3)),
        *(plain_echo.run({"text": "c"}) for _ in range(3)),
    )
    opened = connector.opened[1:]
    assert opened.count(("web", {"X-Team": "red", "Authorization": "Bearer A"})) == 3
    assert opened.count(("web", {"X-Team": "red", "authorization": "Bearer B"})) == 3
    assert len(opened) == 6
    await servers.aclose()


async def test_proxies_never_show_header_values(servers: McpServers) -> None:
    """A scope's token is in no repr of its proxies or of the servers."""
    selection = ToolSelection(mcp_headers=freeze_headers({"box": {"Authorization": "Bearer s3"}}))
    tools = servers.tools_for(CALLER, selection)
    shown = repr(tools) + repr(servers) + repr(selection)
    assert "s3" not in shown
    assert all(isinstance(tool, McpTool) for tool in tools)


async def test_headers_for_a_stdio_server_are_refused() -> None:
    """A stdio server cannot carry a scope's identity: asking for it is a configuration error."""
    servers = McpServers({"local": McpServerSettings(command="unused")})
    selection = ToolSelection(mcp_headers=freeze_headers({"local": {"Authorization": "x"}}))
    with pytest.raises(ConfigurationError, match="'local', a stdio server"):
        servers.tools_for(CALLER, selection)


async def test_headers_for_an_unknown_server_are_refused(servers: McpServers) -> None:
    """Headers naming no configured server are a mistake, not something to ignore."""
    selection = ToolSelection(mcp_headers=freeze_headers({"typo": {"Authorization": "x"}}))
    with pytest.raises(ConfigurationError, match="'typo', which is not configured"):
        servers.tools_for(CALLER, selection)


def test_building_servers_connects_nothing() -> None:
    """The constructor is cheap: nothing is opened before `start`."""
    connector = RecordingConnector({"box": toolbox()})
    servers = McpServers({"box": McpServerSettings(url="http://b.invalid/")}, connector=connector)
    assert connector.opened == []
    assert servers.listing() == ()
    assert servers.tools_for(CALLER, ToolSelection()) == ()


def test_an_invalid_server_name_is_a_configuration_error() -> None:
    """A name that cannot prefix tool names is refused when the servers are built."""
    with pytest.raises(ConfigurationError, match="MCP server name"):
        McpServers({"bad.name": McpServerSettings(command="x")})


async def test_a_server_that_fails_to_start_is_left_out_with_a_warning() -> None:
    """`start` does not raise: the failure is recorded and logged, and the others serve."""
    connector = RecordingConnector({"good": toolbox(), "bad": toolbox()})
    connector.failing["bad"] = ConnectionRefusedError("nobody home, token=abc123secret")
    settings = McpServerSettings(url="http://x.invalid/mcp", timeout=5)
    servers = McpServers({"good": settings, "bad": settings}, connector=connector)
    with capture_logs() as logs:
        await servers.start()
    assert set(servers.unavailable()) == {"bad"}
    assert "ConnectionRefusedError: nobody home" in servers.unavailable()["bad"]
    assert "abc123secret" not in servers.unavailable()["bad"]
    [event] = [log for log in logs if log["event"] == "mcp_server_unavailable"]
    assert event["server"] == "bad"
    assert event["log_level"] == "warning"
    assert "abc123secret" not in event["reason"]
    assert {listed.source for listed in servers.listing()} == {"mcp:good"}
    await servers.aclose()


async def test_servers_start_at_once_and_a_hanging_one_times_out() -> None:
    """A server that never answers costs its own timeout, once, not one per server."""
    connector = RecordingConnector({"a": toolbox(), "b": toolbox(), "c": toolbox()})
    connector.hanging = {"a", "b"}
    settings = McpServerSettings(url="http://x.invalid/mcp", timeout=0.5)
    servers = McpServers({"a": settings, "b": settings, "c": settings}, connector=connector)
    started = time.monotonic()
    await servers.start()
    assert time.monotonic() - started < 0.9
    assert servers.unavailable() == {
        "a": "did not start within 0.5 s",
        "b": "did not start within 0.5 s",
    }
    assert {listed.source for listed in servers.listing()} == {"mcp:c"}
    await servers.aclose()


async def test_after_close_calls_fail_and_scopes_get_no_tools() -> None:
    """A proxy kept past `aclose` fails clearly; `aclose` may be called again."""
    servers = fake_mcp_servers({"box": toolbox()})
    await servers.start()
    [echo] = [t for t in servers.tools_for(CALLER, ToolSelection()) if "echo" in repr(t)]
    await servers.aclose()
    await servers.aclose()
    with pytest.raises(ToolError, match="MCP server 'box' is not connected"):
        await echo.run({"text": "late"})
    assert servers.tools_for(CALLER, ToolSelection()) == ()


async def test_start_twice_connects_once() -> None:
    """A second `start` is a no-op."""
    connector = RecordingConnector({"box": toolbox()})
    servers = McpServers({"box": McpServerSettings(url="http://b.invalid/")}, connector=connector)
    await servers.start()
    await servers.start()
    assert len(connector.opened) == 1
    await servers.aclose()


async def test_approval_follows_the_server_setting() -> None:
    """`requires_approval` marks every tool of that server."""
    connector = RecordingConnector({"box": toolbox()})
    settings = McpServerSettings(url="http://b.invalid/", requires_approval=True)
    servers = McpServers({"box": settings}, connector=connector)
    await servers.start()
    assert all(t.declaration.requires_approval for t in servers.tools_for(CALLER, ToolSelection()))
    await servers.aclose()


async def test_a_call_in_flight_when_the_servers_stop_fails_clearly() -> None:
    """`aclose` during a call ends that call with a `ToolError`, not a hang or a crash."""
    servers = fake_mcp_servers({"box": toolbox()})
    await servers.start()
    sleep = by_name(servers.tools_for(CALLER, ToolSelection()))["box__sleep"]
    call = asyncio.create_task(sleep.run({"seconds": 30}))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await servers.aclose()
    with pytest.raises(ToolError, match="MCP server 'box' was stopped by chatscope during 'sleep'"):
        await call
    assert time.monotonic() - started < 5
