"""The "write" family: the one tool that changes the workspace.

It is kept apart so the single tool with side effects, and its size and encoding checks, can
be read and reviewed on its own. Blocking file IO runs in a worker thread so a large write
never stalls the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from chatscope.adapters.tools.arguments import (
    check_names,
    declare,
    positive,
    string_argument,
    string_schema,
)
from chatscope.adapters.tools.sandbox import Workspace
from chatscope.errors import ToolError
from chatscope.services.tools.ports import ToolContext, ToolDeclaration

__all__ = ["WriteFileTool"]


class WriteFileTool:
    """`write_file`: create or replace a text file, the one tool that changes the workspace."""

    __slots__ = ("_declaration", "_max_bytes", "_workspace")

    def __init__(
        self, workspace: Workspace, *, max_bytes: int = 1024 * 1024, needs_approval: bool = True
    ) -> None:
        self._workspace = workspace
        self._max_bytes = positive("max_bytes", max_bytes)
        self._declaration = declare(
            "write_file",
            "Write UTF-8 text to a file in the workspace, replacing it if it exists and "
            f"creating parent directories as needed. Content over {max_bytes} bytes is "
            "refused.",
            {
                "path": string_schema("File path relative to the workspace root."),
                "content": string_schema("The complete new content of the file."),
            },
            required=("path", "content"),
            requires_approval=needs_approval,
        )

    @property
    def declaration(self) -> ToolDeclaration:
        """What the model is told about `write_file`."""
        return self._declaration

    async def run(self, arguments: Mapping[str, Any], context: ToolContext | None = None) -> str:
        """Write the file in a worker thread."""
        check_names(arguments, self._declaration)
        path = string_argument(arguments, "path")
        data = _encoded(string_argument(arguments, "content"), self._max_bytes)
        return await asyncio.to_thread(self._write, path, data)

    def _write(self, raw_path: str, data: bytes) -> str:
        path = self._workspace.resolve(raw_path)
        if path.is_dir():
            raise ToolError(f"{raw_path!r} is a directory; write_file writes files only")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except OSError as exc:
            raise ToolError(f"cannot write {raw_path!r}: {exc.strerror or exc}") from exc
        return f"Wrote {len(data)} bytes to {self._workspace.display(path)}."


def _encoded(content: str, max_bytes: int) -> bytes:
    try:
        data = content.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ToolError(f"content cannot be encoded as UTF-8: {exc.reason}") from exc
    if len(data) > max_bytes:
        raise ToolError(f"content is {len(data)} bytes; write_file accepts at most {max_bytes}")
    return data
