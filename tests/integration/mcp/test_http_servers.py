"""A real streamable-HTTP MCP server on 127.0.0.1: calls, and each scope's identity kept apart."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from chatscope.adapters.tools.mcp import McpServers
from chatscope.config.mcp import McpServerSettings
from chatscope.errors import ToolError
from chatscope.services.messages import ToolCallBlock
from chatscope.services.tools.ports import Tool, ToolContext
from chatscope.services.tools.registry import ToolRegistry
from chatscope.services.tools.toolset import ToolSelection, freeze_headers
from tests.support.mcp_servers import http_toolbox

ALICE = ToolContext("session-a", "runtime-a", "demo", "demo-model")
BOB = ToolContext("session-b", "runtime-b", "demo", "demo-model")
CAROL = ToolContext("session-c", "runtime-c", "demo", "demo-model")
CALLS_PER_SCOPE = 12


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """One toolbox serving streamable HTTP for this module's tests."""
    with http_toolbox() as served:
        yield served


@pytest.fixture
async def web(url: str) -> AsyncIterator[McpServers]:
    """The toolbox as HTTP server `web`, with a configured team header and a 2 s timeout."""
    settings = McpServerSettings(url=url, headers={"X-Team": "red"}, timeout=2.0)
    servers = McpServers({"web": settings})
    await servers.start()
    assert servers.unavailable() == {}
    yield servers
    await servers.aclose()


def tool(servers: McpServers, caller: ToolContext, selection: ToolSelection, name: str) -> Tool:
    [found] = [t for t in servers.tools_for(caller, selection) if t.declaration.name == name]
    return found


def bearer(token: str) -> ToolSelection:
    return ToolSelection(mcp_headers=freeze_headers({"web": {"Authorization": f"Bearer {token}"}}))


async def test_an_http_server_lists_its_tools_and_answers(web: McpServers) -> None:
    """Tools are namespaced by the server; a call returns the tool's text."""
    assert {"web__echo", "web__whoami", "web__sleep"} <= set(web.names())
    echo = tool(web, ALICE, ToolSelection(), "web__echo")
    assert await echo.run({"text": "over http"}) == "over http"


async def test_an_error_result_over_http_is_a_tool_error(web: McpServers) -> None:
    """`isError` arrives as a `ToolError` with the server's message."""
    with pytest.raises(ToolError, match="refused by the tool"):
        await tool(web, ALICE, ToolSelection(), "web__fail").run({"message": "refused by the tool"})


async def test_a_slow_call_over_http_times_out(web: McpServers) -> None:
    """Application session or a scope's own, a slow call ends at the server's timeout."""
    for selection in (ToolSelection(), bearer("T1234567890")):
        started = time.monotonic()
        with pytest.raises(ToolError, match="did not finish 'sleep' within 2 s"):
            await tool(web, ALICE, selection, "web__sleep").run({"seconds": 30})
        assert time.monotonic() - started < 4


async def test_each_scope_reaches_the_server_with_its_own_token_only(web: McpServers) -> None:
    """Concurrent scopes: every call carries its scope's token; a scope without one, none."""
    alice = tool(web, ALICE, bearer("alice-token-AAAA"), "web__whoami")
    bob = tool(web, BOB, bearer("bob-token-BBBB"), "web__whoami")
    carol = tool(web, CAROL, ToolSelection(), "web__whoami")
    assert alice is not bob

    async def calls(proxy: Tool) -> list[dict[str, str | None]]:
        answers = await asyncio.gather(*(proxy.run({}) for _ in range(CALLS_PER_SCOPE)))
        return [json.loads(answer) for answer in answers]

    seen_by_alice, seen_by_bob, seen_by_carol = await asyncio.gather(
        calls(alice), calls(bob), calls(carol)
    )
    assert seen_by_alice == [{"authorization": "Bearer alice-token-AAAA", "x-team": "red"}] * (
        CALLS_PER_SCOPE
    )
    assert seen_by_bob == [{"authorization": "Bearer bob-token-BBBB", "x-team": "red"}] * (
        CALLS_PER_SCOPE
    )
    assert seen_by_carol == [{"authorization": None, "x-team": "red"}] * CALLS_PER_SCOPE


async def test_a_scope_header_overrides_the_configured_one(web: McpServers) -> None:
    """The scope's `x-team` replaces the configured `X-Team` for that scope's calls only."""
    selection = ToolSelection(mcp_headers=freeze_headers({"web": {"x-team": "blue"}}))
    own = tool(web, ALICE, selection, "web__whoami")
    shared = tool(web, BOB, ToolSelection(), "web__whoami")
    assert json.loads(await own.run({}))["x-team"] == "blue"
    assert json.loads(await shared.run({}))["x-team"] == "red"


async def test_an_unreachable_url_is_left_out() -> None:
    """Nothing listening on the port: `start` returns, the server is unavailable."""
    servers = McpServers({"nowhere": McpServerSettings(url="http://127.0.0.1:9/mcp", timeout=3)})
    await servers.start()
    assert set(servers.unavailable()) == {"nowhere"}
    assert servers.listing() == ()
    await servers.aclose()


async def test_a_restarted_http_server_is_reconnected_to() -> None:
    """A server that forgot the session (it restarted) fails one call; the next reconnects."""
    with http_toolbox() as first_url:
        servers = McpServers({"web": McpServerSettings(url=first_url, timeout=5)})
        await servers.start()
        pid = tool(servers, ALICE, ToolSelection(), "web__pid")
        first_pid = await pid.run({})
    port = int(first_url.rsplit(":", 1)[1].split("/")[0])
    with http_toolbox(port) as second_url:
        assert second_url == first_url
        with pytest.raises(ToolError, match="the next call starts it again"):
            await pid.run({})
        second_pid = await pid.run({})
        await servers.aclose()
    assert second_pid != first_pid


async def test_the_registry_stops_a_slow_call_of_a_scopes_own_session(web: McpServers) -> None:
    """Run by a scope's registry, a slow call becomes an error result, and the scope goes on."""
    registry = ToolRegistry(web.tools_for(ALICE, bearer("alice-token-AAAA")), caller=ALICE)
    started = time.monotonic()
    slow = await registry.run(ToolCallBlock.create("1", "web__sleep", {"seconds": 30}))
    assert slow.error is not None
    assert "2 s" in slow.error
    assert time.monotonic() - started < 4
    fine = await registry.run(ToolCallBlock.create("2", "web__echo", {"text": "next"}))
    assert (fine.result, fine.error) == ("next", None)
