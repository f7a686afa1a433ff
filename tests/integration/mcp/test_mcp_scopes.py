"""Tools across scopes: the MCP servers a subagent may use, subagents started by one reply,
and MCP settings from a .env file."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from dependency_injector import providers
from mcp.server.mcpserver import MCPServer

from chatscope.config.loading import load_settings
from chatscope.services.messages import Role
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.testing import FunctionProvider, ScriptedReply
from chatscope.testing.mcp import fake_mcp_servers
from tests.support.subagents import profile, subagent_app


def _server(name: str) -> MCPServer:
    server = MCPServer(name)

    @server.tool()
    def ping() -> str:
        """Answer with the server's name."""
        return name

    return server


async def test_a_profile_limits_the_mcp_servers_of_its_subagents(tmp_path: Path) -> None:
    """A foreground scope sees every server; a subagent only those its profile lists."""
    app = subagent_app(
        workspace=tmp_path,
        profiles=[profile("scout", provider="demo", mcp_servers=("weather",))],
    )
    fake = fake_mcp_servers({"weather": _server("weather"), "crm": _server("crm")})
    app.tools.mcp_servers.override(providers.Object(fake))
    await app.init_resources()  # type: ignore[misc]
    try:
        scopes = app.runtime.scopes()
        parent = scopes.foreground()
        assert {"weather__ping", "crm__ping"} <= set(parent.tools.names())
        scout = app.subagent_profiles()["scout"]
        child = scopes.subagent(scout.scope_request("scout"), parent)
        mcp_tools = [name for name in child.tools.names() if "__" in name]
        assert mcp_tools == ["weather__ping"]
        only_crm = scopes.foreground(ScopeRequest.create(mcp_servers=["crm"]))
        assert [name for name in only_crm.tools.names() if "__" in name] == ["crm__ping"]
    finally:
        await app.shutdown_resources()  # type: ignore[misc]


async def test_two_task_calls_of_one_reply_run_their_subagents_at_once(tmp_path: Path) -> None:
    """Each subagent's model answers after 0.3 s; two in one reply finish in about 0.3 s."""

    async def answer(invocation: ModelInvocation) -> ScriptedReply:
        last = invocation.history[-1]
        if invocation.runtime_id != parent_id:  # a subagent
            await asyncio.sleep(0.3)
            goal = next(word for word in last.text.split() if word.startswith("goal-"))
            return ScriptedReply(text=f"done: {goal}")
        if last.role is Role.TOOL:
            return ScriptedReply(text="both done")
        goals = [{"subagent_name": "worker", "goal_prompt": f"goal-{n}"} for n in range(2)]
        return ScriptedReply(tool_calls=[("task", goal) for goal in goals])

    app = subagent_app(
        FunctionProvider(answer), workspace=tmp_path, profiles=[profile("worker", provider="demo")]
    )
    parent = app.runtime.scopes().foreground()
    parent_id = parent.runtime_id
    started = time.perf_counter()
    turn = await app.runtime.chat_session(context=parent).send("fan out")
    elapsed = time.perf_counter() - started
    results = [json.loads(result.result or "{}") for result in turn.tool_results]
    assert [result["terminate_reason"] for result in results] == ["GOAL", "GOAL"]
    messages = [result["final_message"] for result in results]
    assert all(message.startswith("done: ") for message in messages)
    assert "goal-0" in messages[0]
    assert "goal-1" in messages[1]
    assert elapsed < 0.55, elapsed


def test_mcp_servers_come_from_a_dotenv_file(tmp_path: Path) -> None:
    """The `CHATSCOPE_MCP_SERVERS__<name>__...` variables work in a .env file as well."""
    env_file = tmp_path / "app.env"
    env_file.write_text(
        "CHATSCOPE_MCP_SERVERS__files__COMMAND=npx\n"
        'CHATSCOPE_MCP_SERVERS__files__ARGS=["-y", "server-filesystem", "."]\n'
        'CHATSCOPE_MCP_SERVERS__files__ENV={"ROOT": "/srv"}\n'
        "CHATSCOPE_MCP_SERVERS__files__TIMEOUT=12.5\n"
        "CHATSCOPE_MCP_SERVERS__crm__URL=https://mcp.example.com/mcp\n"
        'CHATSCOPE_MCP_SERVERS__crm__HEADERS={"Authorization": "Bearer tok-123"}\n'
    )
    settings = load_settings(env_file)
    files, crm = settings.mcp_servers["files"], settings.mcp_servers["crm"]
    assert (files.command, files.args, files.env, files.timeout) == (
        "npx",
        ("-y", "server-filesystem", "."),
        {"ROOT": "/srv"},
        12.5,
    )
    assert crm.url == "https://mcp.example.com/mcp"
    assert crm.headers["Authorization"].get_secret_value() == "Bearer tok-123"
    assert "tok-123" not in repr(settings)
