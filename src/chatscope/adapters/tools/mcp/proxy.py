"""A scope's proxy of one MCP tool, and what a tool's result reads like to the model.

A proxy is made for one scope (`McpServers.tools_for`) and holds that scope's headers for its
server, if any; the declaration it shows the model was built once when the server started
and is shared, immutable, by every scope's proxy of that tool.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, assert_never

from pydantic import SecretStr

from chatscope.errors import ToolError
from chatscope.services.frozen import thaw
from chatscope.services.tools.ports import ToolContext, ToolDeclaration

if TYPE_CHECKING:
    import mcp_types as types

    from chatscope.adapters.tools.mcp.connection import ServerConnection

__all__ = ["McpTool", "render_result"]


class McpTool:
    """One tool of one MCP server, as one scope calls it.

    Without `headers` a call goes through the server's application session; with them (the
    scope's own, for an HTTP server) it opens a session of its own for that call.
    """

    __slots__ = ("_connection", "_declaration", "_headers", "_remote_name")

    def __init__(
        self,
        declaration: ToolDeclaration,
        *,
        remote_name: str,
        connection: ServerConnection,
        headers: Mapping[str, SecretStr] | None = None,
    ) -> None:
        self._declaration = declaration
        self._remote_name = remote_name
        self._connection = connection
        self._headers = headers or None

    def __repr__(self) -> str:
        session = "own session per call" if self._headers else "application session"
        return f"McpTool({self._declaration.name!r}, {session})"

    @property
    def declaration(self) -> ToolDeclaration:
        """The tool as the server listed it, under its namespaced name."""
        return self._declaration

    async def run(self, arguments: Mapping[str, Any], context: ToolContext | None = None) -> str:
        """Call the tool on its server; a failure of the tool or the server is a `ToolError`."""
        plain = thaw(arguments)
        if self._headers is None:
            result = await self._connection.call(self._remote_name, plain)
        else:
            scope_headers = {
                name: value.get_secret_value() for name, value in self._headers.items()
            }
            result = await self._connection.call_with_headers(
                self._remote_name, plain, scope_headers
            )
        text = render_result(result)
        if result.is_error:
            raise ToolError(
                f"MCP tool {self._remote_name!r} of server {self._connection.name!r} failed: "
                f"{text or 'no message'}"
            )
        return text


def render_result(result: types.CallToolResult) -> str:
    """The result as text: text content joined, other content summarised, else the JSON."""
    import mcp_types as types

    parts = [_render_block(block) for block in result.content]
    has_text = any(isinstance(block, types.TextContent) for block in result.content)
    if not has_text and result.structured_content is not None:
        parts.insert(0, json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(part for part in parts if part)


def _render_block(block: types.ContentBlock) -> str:
    import mcp_types as types

    if isinstance(block, types.TextContent):
        return block.text
    if isinstance(block, types.ImageContent):
        return f"[image: {block.mime_type}, {len(block.data) * 3 // 4} bytes, not shown]"
    if isinstance(block, types.AudioContent):
        return f"[audio: {block.mime_type}, {len(block.data) * 3 // 4} bytes, not shown]"
    if isinstance(block, types.ResourceLink):
        return f"[resource link: {block.uri}]"
    if isinstance(block, types.EmbeddedResource):
        return _render_resource(block.resource)
    assert_never(block)


def _render_resource(resource: types.TextResourceContents | types.BlobResourceContents) -> str:
    import mcp_types as types

    if isinstance(resource, types.TextResourceContents):
        return resource.text
    mime = f", {resource.mime_type}" if resource.mime_type else ""
    return f"[resource: {resource.uri}{mime}, binary, not shown]"
