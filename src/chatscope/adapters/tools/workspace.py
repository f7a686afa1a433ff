"""The built-in workspace tools as one set: what a chat's model may read, find, search and write.

The families live in their own modules (files, search, write) over the shared confinement in
`sandbox`; this module only assembles them, in the order the model is told about them, so the
containers have one place to build the whole set from.
"""

from __future__ import annotations

from pathlib import Path

from chatscope.adapters.tools.files import ListDirectoryTool, ReadFileTool
from chatscope.adapters.tools.sandbox import Workspace
from chatscope.adapters.tools.search import GlobTool, SearchFileContentTool
from chatscope.adapters.tools.write import WriteFileTool
from chatscope.services.tools.ports import Tool

__all__ = ["build_workspace_tools"]


def build_workspace_tools(root: Path) -> tuple[Tool, ...]:
    """The five workspace tools over `root`, in the order the model is told about them."""
    workspace = Workspace(root)
    return (
        ReadFileTool(workspace),
        ListDirectoryTool(workspace),
        GlobTool(workspace),
        SearchFileContentTool(workspace),
        WriteFileTool(workspace),
    )
