"""An MCP server for chatscope's tests, built with the `mcp` SDK: stdio, or HTTP with `--http`.

    python tests/support/mcp_servers/toolbox.py           # serves on stdin/stdout
    python tests/support/mcp_servers/toolbox.py --http    # prints its port, then serves
                                                          # streamable HTTP on 127.0.0.1
    python tests/support/mcp_servers/toolbox.py --http 8123   # the same, on port 8123

It imports nothing of chatscope or of the test suite, so it runs as a plain script.
"""

from __future__ import annotations

import json
import os
import socket
import sys

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("toolbox")


@server.tool()
def echo(text: str) -> str:
    """Return `text` unchanged."""
    return text


@server.tool()
def fail(message: str) -> str:
    """Report `message` as the tool's error."""
    raise ToolError(message)


@server.tool()
async def sleep(seconds: float) -> str:
    """Wait `seconds`, then say so."""
    await anyio.sleep(seconds)
    return f"slept {seconds:g} s"


@server.tool()
def die() -> str:
    """End this server's process at once, in the middle of the call."""
    os._exit(3)


@server.tool()
def pid() -> str:
    """This server's process id."""
    return str(os.getpid())


@server.tool()
def env_keys() -> str:
    """The names of this server's environment variables, as a JSON list."""
    return json.dumps(sorted(os.environ))


@server.tool()
def shout(text: str) -> str:
    """Write `text` to this server's stderr."""
    sys.stderr.write(f"{text}\n")
    sys.stderr.flush()
    return "shouted"


@server.tool()
def whoami(context: Context) -> str:
    """The identity headers this request reached the server with, as JSON."""
    headers = context.headers or {}
    return json.dumps({name: headers.get(name) for name in ("authorization", "x-team")})


def serve_http(port: int = 0) -> None:
    """Bind `port` (a free one if 0) on 127.0.0.1, print it, then serve streamable HTTP on it."""
    import uvicorn

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    sys.stdout.write(f"{listener.getsockname()[1]}\n")
    sys.stdout.flush()
    app = server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[listener])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--http"]:
        serve_http(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    else:
        server.run()
