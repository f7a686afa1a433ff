"""A stdio MCP server the settings name, through the application's containers: started with the
application, its tools in every scope, its stderr in `<data_dir>/mcp-logs/<server>.log`."""

from __future__ import annotations

from pathlib import Path

from chatscope.config.settings import ExplicitSettings
from chatscope.containers import ApplicationContainer
from tests.support.mcp_servers import stdio_toolbox


async def test_the_applications_stdio_server_serves_scopes_and_logs_in_the_data_dir(
    tmp_path: Path,
) -> None:
    """A scope's `box__shout` reaches the child process; what the child writes to stderr is in
    the data directory's MCP log of that server once the application has shut down."""
    settings = ExplicitSettings(
        workspace=tmp_path,
        data_dir=tmp_path / "data",
        mcp_servers={"box": stdio_toolbox(timeout=10.0)},
    )
    app = ApplicationContainer(settings=settings, environ={})
    await app.init_resources()  # type: ignore[misc]
    try:
        tools = app.runtime.scopes().foreground().tools
        shout = tools.get("box__shout")
        assert shout is not None
        assert await shout.run({"text": "a-line-for-the-app-log"}) == "shouted"
    finally:
        await app.shutdown_resources()  # type: ignore[misc]
    log = tmp_path / "data" / "mcp-logs" / "box.log"
    assert "a-line-for-the-app-log" in log.read_text(encoding="utf-8")
