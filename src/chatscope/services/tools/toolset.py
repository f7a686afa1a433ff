"""Assembling the tools of one scope: the application's, the scope's own, and those of sources.

A scope's tools are built when the scope is: the workspace and application tools come from
their container factories (fresh objects for every scope), `ToolSelection` carries what the
scope's request adds, and each `ToolSource` (the MCP servers) makes proxies for that scope
alone. Nothing here is shared between two scopes but immutable declarations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import SecretStr

from chatscope.services.frozen import FrozenDict
from chatscope.services.tools.ports import Approver, Tool, ToolContext
from chatscope.services.tools.registry import ToolPolicy, ToolRegistry

__all__ = ["ScopeToolkit", "ToolSelection", "ToolSource", "assemble_tools", "freeze_headers"]


@dataclass(frozen=True, slots=True)
class ToolSelection:
    """What one scope's request adds to the application's tools.

    `extra` are tools for this scope only; `mcp_headers` maps an MCP server name to the
    headers this scope's calls carry (tokens: secrets, never printed); `mcp_servers` limits
    the MCP servers this scope may use (`None`: all); `approver` approves its calls.
    """

    extra: tuple[Tool, ...] = ()
    mcp_headers: FrozenDict = field(default_factory=FrozenDict)
    mcp_servers: tuple[str, ...] | None = None
    approver: Approver | None = None

    def headers_for(self, server: str) -> dict[str, str]:
        """The plain headers this scope sends to `server` (empty if none)."""
        headers: Mapping[str, SecretStr] = self.mcp_headers.get(server, FrozenDict())
        return {name: value.get_secret_value() for name, value in headers.items()}

    def uses_server(self, server: str) -> bool:
        """Whether this scope may use MCP server `server`."""
        return self.mcp_servers is None or server in self.mcp_servers


class ToolSource(Protocol):
    """Tools made for one scope from something outside the process (an MCP server)."""

    def tools_for(self, caller: ToolContext, selection: ToolSelection) -> Iterable[Tool]:
        """Fresh tool objects for the scope `caller`, as `selection` asks."""
        ...


def freeze_headers(headers: Mapping[str, Mapping[str, str | SecretStr]] | None) -> FrozenDict:
    """Per-server headers, frozen, every value wrapped as a secret."""
    return FrozenDict(
        {
            server: FrozenDict(
                {
                    name: value if isinstance(value, SecretStr) else SecretStr(value)
                    for name, value in values.items()
                }
            )
            for server, values in (headers or {}).items()
        }
    )


def assemble_tools(
    *,
    caller: ToolContext,
    selection: ToolSelection,
    workspace: Iterable[Tool] = (),
    application: Iterable[Tool] = (),
    sources: Iterable[ToolSource] = (),
    policy: ToolPolicy | None = None,
) -> ToolRegistry:
    """The registry of one scope: its caller, approver and policy, and all of its tools."""
    return _registry(caller, selection, workspace, application, sources, policy)


def _registry(
    caller: ToolContext,
    selection: ToolSelection,
    workspace: Iterable[Tool],
    application: Iterable[Tool],
    sources: Iterable[ToolSource],
    policy: ToolPolicy | None,
) -> ToolRegistry:
    tools: list[Tool] = [*workspace, *application, *selection.extra]
    for source in sources:
        tools.extend(source.tools_for(caller, selection))
    return ToolRegistry(tools, caller=caller, approver=selection.approver, policy=policy)


class ScopeToolkit:
    """Makes each scope's tool registry from the application's tool parts.

    `workspace` and `application` are called for every scope (container providers: fresh tool
    objects each time, and an override of either takes effect at the next scope); `sources`
    (the MCP servers) and `policy` are the application's, taken once.
    """

    __slots__ = ("_application", "_policy", "_sources", "_workspace")

    def __init__(
        self,
        *,
        workspace: Callable[[], Iterable[Tool]],
        application: Callable[[], Iterable[Tool]],
        sources: Iterable[ToolSource] = (),
        policy: ToolPolicy | None = None,
    ) -> None:
        self._workspace = workspace
        self._application = application
        self._sources = tuple(sources)
        self._policy = policy

    def __call__(self, *, caller: ToolContext, selection: ToolSelection) -> ToolRegistry:
        """The registry of the scope `caller`, with what `selection` adds."""
        workspace, application = self._workspace(), self._application()
        return _registry(caller, selection, workspace, application, self._sources, self._policy)
