"""Real stdio MCP servers: a child process per server, its environment, its stderr, its death."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from chatscope.adapters.tools.mcp import McpServers
from chatscope.adapters.tools.mcp.connection import ServerConnection
from chatscope.config.mcp import McpServerSettings
from chatscope.errors import ToolError
from chatscope.services.tools.ports import Tool, ToolContext
from chatscope.services.tools.toolset import ToolSelection
from tests.support.mcp_servers import stdio_toolbox

CALLER = ToolContext("session", "runtime", "demo", "demo-model")


def tools_of(servers: McpServers) -> dict[str, Tool]:
    return {tool.declaration.name: tool for tool in servers.tools_for(CALLER, ToolSelection())}


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[McpServers]:
    """The toolbox as stdio server `box` (2 s timeout), its stderr in `tmp_path`."""
    servers = McpServers({"box": stdio_toolbox(timeout=2.0)}, stderr_dir=tmp_path)
    await servers.start()
    assert servers.unavailable() == {}
    yield servers
    await servers.aclose()


async def test_a_stdio_server_lists_its_tools_and_answers(box: McpServers) -> None:
    """The child's tools appear namespaced, and a call returns the tool's text."""
    tools = tools_of(box)
    assert {"box__echo", "box__fail", "box__sleep", "box__die"} <= set(tools)
    assert await tools["box__echo"].run({"text": "hello"}) == "hello"


async def test_an_error_result_is_a_tool_error(box: McpServers) -> None:
    """`isError` from the server raises `ToolError` with the server's message."""
    with pytest.raises(ToolError, match="bad input"):
        await tools_of(box)["box__fail"].run({"message": "bad input"})


async def test_a_call_past_the_timeout_ends_quickly(box: McpServers) -> None:
    """A 30 s call on a 2 s server ends in about 2 s, and the server answers afterwards."""
    started = time.monotonic()
    with pytest.raises(ToolError, match="did not finish 'sleep' within 2 s"):
        await tools_of(box)["box__sleep"].run({"seconds": 30})
    assert time.monotonic() - started < 4
    assert await tools_of(box)["box__echo"].run({"text": "alive"}) == "alive"


async def test_a_server_killed_mid_call_fails_the_call_and_is_restarted(box: McpServers) -> None:
    """Killing the process during a call ends that call; the next call starts a new one."""
    tools = tools_of(box)
    first_pid = int(await tools["box__pid"].run({}))
    sleeping = asyncio.create_task(tools["box__sleep"].run({"seconds": 30}))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    os.kill(first_pid, signal.SIGKILL)
    with pytest.raises(ToolError, match="MCP server 'box' closed the connection during 'sleep'"):
        await sleeping
    assert time.monotonic() - started < 1.5
    with capture_logs() as logs:
        second_pid = int(await tools["box__pid"].run({}))
    assert second_pid != first_pid
    assert [log["event"] for log in logs] == ["mcp_server_restarted"]


async def test_a_server_that_keeps_dying_is_not_restarted_in_a_loop(
    box: McpServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dead again before any call succeeded: calls fail at once until the pause is over."""
    monkeypatch.setattr(ServerConnection, "restart_pause", 1.0)
    die = tools_of(box)["box__die"]
    with pytest.raises(ToolError, match="the next call starts it again"):
        await die.run({})
    with pytest.raises(ToolError, match="it is tried again in 1 s"):
        await die.run({})  # restarted, and dead again before any call succeeded
    started = time.monotonic()
    for _ in range(3):
        with pytest.raises(ToolError, match="not connected: it stopped again after a restart"):
            await tools_of(box)["box__echo"].run({"text": "x"})
    assert time.monotonic() - started < 0.5
    await asyncio.sleep(1.1)
    assert await tools_of(box)["box__echo"].run({"text": "back"}) == "back"


async def test_no_provider_key_reaches_a_stdio_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The child's environment holds its configured env and safe variables, no secrets."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-abcdefghijklmnop")
    monkeypatch.setenv("CHATSCOPE_PROVIDERS__OPENAI__API_KEY", "sk-test-qrstuvwxyz012345")
    monkeypatch.setenv("SOME_OTHER_SETTING", "not for children")
    servers = McpServers({"box": stdio_toolbox(env={"TOOLBOX_MARK": "1"})})
    await servers.start()
    keys = json.loads(await tools_of(servers)["box__env_keys"].run({}))
    await servers.aclose()
    assert "OPENAI_API_KEY" not in keys
    assert "CHATSCOPE_PROVIDERS__OPENAI__API_KEY" not in keys
    assert "SOME_OTHER_SETTING" not in keys
    assert "TOOLBOX_MARK" in keys
    assert "PATH" in keys


async def test_stderr_goes_to_the_servers_log_file_only(
    box: McpServers, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """What a server writes to stderr lands in `<stderr_dir>/<server>.log`, not on ours."""
    assert await tools_of(box)["box__shout"].run({"text": "a-line-for-the-log"}) == "shouted"
    await box.aclose()
    captured = capfd.readouterr()
    assert "a-line-for-the-log" not in captured.out + captured.err
    assert "a-line-for-the-log" in (tmp_path / "box.log").read_text(encoding="utf-8")


async def test_without_a_stderr_dir_stderr_is_discarded(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """No `stderr_dir`: the server's stderr goes nowhere, certainly not to the chat."""
    servers = McpServers({"box": stdio_toolbox()})
    await servers.start()
    await tools_of(servers)["box__shout"].run({"text": "a-line-for-nobody"})
    await servers.aclose()
    captured = capfd.readouterr()
    assert "a-line-for-nobody" not in captured.out + captured.err


async def test_a_missing_command_leaves_the_server_out_with_a_warning() -> None:
    """A command that does not exist: `start` returns, the reason is kept and logged."""
    servers = McpServers(
        {
            "box": stdio_toolbox(),
            "ghost": McpServerSettings(command="/nonexistent/chatscope-mcp-server"),
        }
    )
    with capture_logs() as logs:
        await servers.start()
    assert "FileNotFoundError" in servers.unavailable()["ghost"]
    assert [(log["event"], log["server"]) for log in logs if log["log_level"] == "warning"] == [
        ("mcp_server_unavailable", "ghost")
    ]
    assert {listed.source for listed in servers.listing()} == {"mcp:box"}
    await servers.aclose()


async def test_a_server_that_never_answers_times_out_at_start() -> None:
    """A process that never speaks MCP is stopped after the timeout; the start returns."""
    silent = McpServerSettings(
        command=sys.executable, args=("-c", "import time; time.sleep(60)"), timeout=0.5
    )
    servers = McpServers({"silent": silent})
    started = time.monotonic()
    await servers.start()
    assert time.monotonic() - started < 10
    assert servers.unavailable() == {"silent": "did not start within 0.5 s"}
    await servers.aclose()
