"""The built-in workspace tools as one set: what a chat's model may read, find, search and write.

The families live in their own modules (files, search, write) over the shared confinement in
`sandbox`; this module assembles them, in the order the model is told about them.
`WorkspaceToolkit` builds the set once for the application (the confined root and the frozen
declarations) and gives every scope fresh tool objects over those immutable parts.
"""

from __future__ import annotations

from pathlib import Path

from chatscope.adapters.tools.files import ListDirectoryTool, ReadFileTool
from chatscope.adapters.tools.sandbox import Workspace
from chatscope.adapters.tools.search import GlobTool, SearchFileContentTool
from chatscope.adapters.tools.write import WriteFileTool
from chatscope.services.tools.ports import Tool

__all__ = ["WorkspaceToolkit", "build_workspace_tools"]


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


class WorkspaceToolkit:
    """The workspace tools of one application, handed out as fresh objects per scope.

    Building the set resolves the root and freezes five declarations (about 70 µs); a scope's
    set is a copy of each tool's slots (about 3 µs), all of which are immutable, so two scopes
    never share a tool object and no scope pays for what cannot differ between them.
    """

    __slots__ = ("_prototypes",)

    def __init__(self, root: Path) -> None:
        self._prototypes = build_workspace_tools(root)

    def names(self) -> tuple[str, ...]:
        """The tool names, in order."""
        return tuple(tool.declaration.name for tool in self._prototypes)

    def tools(self) -> tuple[Tool, ...]:
        """A fresh set of the workspace tools for one scope."""
        return tuple(_fresh(tool) for tool in self._prototypes)


def _fresh(tool: Tool) -> Tool:
    """A new object of `tool`'s class over the same (immutable) slot values."""
    kind = type(tool)
    copy: Tool = object.__new__(kind)
    slots: tuple[str, ...] = getattr(kind, "__slots__", ())
    for slot in slots:
        object.__setattr__(copy, slot, getattr(tool, slot))
    return copy
