"""MCP servers as tool sources: stdio and streamable-HTTP servers over the official `mcp` SDK.

`McpServers` is the application's set of servers (started and stopped by the tools
container's `mcp_lifecycle` resource); each scope gets fresh proxies of their tools from
`McpServers.tools_for`. `McpConnector` is the seam that opens a session: `SdkConnector` talks
to real servers, `chatscope.testing.mcp` to servers living in the test's own process.
"""

from chatscope.adapters.tools.mcp.connector import (
    McpConnector,
    SdkConnector,
    child_environment,
    merge_headers,
)
from chatscope.adapters.tools.mcp.naming import namespaced_name
from chatscope.adapters.tools.mcp.proxy import McpTool, render_result
from chatscope.adapters.tools.mcp.servers import McpServers, ToolListing, run_mcp_servers

__all__ = [
    "McpConnector",
    "McpServers",
    "McpTool",
    "SdkConnector",
    "ToolListing",
    "child_environment",
    "merge_headers",
    "namespaced_name",
    "render_result",
    "run_mcp_servers",
]
