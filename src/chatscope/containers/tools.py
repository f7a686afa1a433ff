"""The tools of the application's scopes: every scope gets fresh tool objects of its own."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from dependency_injector import containers, providers

from chatscope.adapters.tools.mcp import McpServers, run_mcp_servers
from chatscope.adapters.tools.workspace import WorkspaceToolkit
from chatscope.config.settings import ToolsSettings
from chatscope.services.tools.registry import ToolPolicy
from chatscope.services.tools.toolset import ScopeToolkit


def tool_policy_of(settings: ToolsSettings) -> ToolPolicy:
    """How scopes run tool calls, from the `tools` settings section."""
    return ToolPolicy(
        max_concurrent_calls=settings.max_concurrent_calls,
        timeout=settings.timeout,
        auto_approve=frozenset(settings.auto_approve),
    )


class ToolsContainer(containers.DeclarativeContainer):
    """Per-scope factories for every tool a scope may be given.

    `scope_tools` (a `ScopeToolkit`, the application's one) is called once per scope, with its
    caller identity and request selection, and assembles a fresh registry: the workspace tools
    (fresh objects over one immutable toolkit), `application_tools` (each item a provider
    called once per scope: a class-based tool with its own dependencies is a
    `providers.Factory`), and proxies of the MCP servers' tools. The MCP servers themselves
    are the application's (`mcp_servers`, started and stopped by the `mcp_lifecycle`
    resource); their sessions carry no scope's identity.
    """

    workspace = providers.Dependency(instance_of=Path)
    # Where stdio servers' stderr goes; nowhere unless the application says.
    mcp_log_dir: providers.Dependency[Path | None] = providers.Dependency(
        default=providers.Object(None)
    )
    tools_settings = providers.Dependency(instance_of=ToolsSettings, default=ToolsSettings())
    mcp_settings = providers.Dependency(
        instance_of=Mapping,  # type: ignore[type-abstract]
        default=MappingProxyType({}),
    )

    workspace_toolkit = providers.Singleton(WorkspaceToolkit, root=workspace)
    application_tools = providers.List()

    mcp_servers = providers.Singleton(McpServers, servers=mcp_settings, stderr_dir=mcp_log_dir)
    mcp_lifecycle = providers.Resource(run_mcp_servers, mcp_servers)

    policy = providers.Singleton(tool_policy_of, tools_settings)
    # Called once per scope, with its caller identity and selection; the workspace and
    # application tools are made anew for each call, the MCP servers and policy taken once.
    scope_tools = providers.Singleton(
        ScopeToolkit,
        workspace=workspace_toolkit.provided.tools,
        application=application_tools.provider,
        sources=providers.List(mcp_servers),
        policy=policy,
    )
