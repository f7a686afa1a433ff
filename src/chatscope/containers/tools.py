"""The tools every scope of the application can be given."""

from __future__ import annotations

from pathlib import Path

from dependency_injector import containers, providers

from chatscope.adapters.tools.workspace import build_workspace_tools


class ToolsContainer(containers.DeclarativeContainer):
    """The workspace tools, rooted at the configured workspace; they keep no state."""

    workspace = providers.Dependency(instance_of=Path)

    workspace_tools = providers.Singleton(build_workspace_tools, root=workspace)
