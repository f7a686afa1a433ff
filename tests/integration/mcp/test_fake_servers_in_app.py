"""`chatscope.testing.mcp` in a user's test: a fake MCP server plugged into a test app."""

from __future__ import annotations

from pathlib import Path

from dependency_injector import providers
from mcp.server.mcpserver import MCPServer

from chatscope.services.tools.ports import ToolContext
from chatscope.services.tools.toolset import ToolSelection
from chatscope.testing import ScriptedProvider, ScriptedReply, build_test_app
from chatscope.testing.mcp import fake_mcp_servers

ANYONE = ToolContext("session", "runtime", "demo", "demo-model")


def weather_server() -> MCPServer:
    """What a user would write: an MCP server with one tool."""
    server = MCPServer("weather")

    @server.tool()
    def forecast(city: str) -> str:
        """Tomorrow's weather in `city`."""
        return f"sunny in {city}"

    return server


async def test_a_scripted_model_calls_a_fake_mcp_tool(tmp_path: Path) -> None:
    """Overriding `mcp_servers` is enough: `init_resources` starts it, a turn calls it."""
    provider = ScriptedProvider(
        [
            ScriptedReply(tool_calls=[("weather__forecast", {"city": "Oslo"})]),
            ScriptedReply(text="It will be sunny."),
        ]
    )
    app = build_test_app(provider, workspace=tmp_path)
    fake = fake_mcp_servers({"weather": weather_server()})
    app.tools.mcp_servers.override(providers.Object(fake))
    await app.init_resources()  # type: ignore[misc]
    try:
        context = app.runtime.scopes().foreground()
        turn = await app.runtime.chat_session(context=context).send("weather in Oslo?")
    finally:
        await app.shutdown_resources()  # type: ignore[misc]
    [result] = turn.tool_results
    assert (result.name, result.result, result.error) == (
        "weather__forecast",
        "sunny in Oslo",
        None,
    )
    assert turn.text == "It will be sunny."
    declared = {tool.name for tool in provider.invocations[0].tools}
    assert "weather__forecast" in declared
    assert fake.tools_for(ANYONE, ToolSelection()) == ()  # stopped with the app
