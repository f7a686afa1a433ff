"""A scope's tool registry: what the model may call, and running a call without ever crashing.

The registry of a scope knows who calls (`ToolContext`), who approves (`Approver`) and the
scope's `ToolPolicy`; it hands each tool the caller, asks the approver before a tool that needs
approval, and ends a call that outlives its timeout. Every failure becomes an error result the
model can read: nothing a tool does ends the turn, except the turn itself being cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from chatscope.errors import ConfigurationError, ToolError, redact_secrets
from chatscope.services.messages import ToolCallBlock, ToolResultBlock
from chatscope.services.tools.ports import (
    ApprovalRequest,
    Approver,
    Tool,
    ToolContext,
    ToolDeclaration,
)

__all__ = ["ToolPolicy", "ToolRegistry"]

ANY_TOOL = "*"


@dataclass(frozen=True, slots=True)
class ToolPolicy:
    """How a scope runs tool calls (settings section `tools`).

    `max_concurrent_calls` calls of one reply run at once; `timeout` (seconds) ends a call
    whose tool names no timeout of its own; the tools in `auto_approve` (or every tool, with
    `"*"`) run without asking even when they declare that they need approval.
    """

    max_concurrent_calls: int = 8
    timeout: float = 120.0
    auto_approve: frozenset[str] = frozenset()

    def approves(self, name: str) -> bool:
        """Whether `name` runs without asking the approver."""
        return name in self.auto_approve or ANY_TOOL in self.auto_approve


class ToolRegistry:
    """The tools of one scope, fixed when the scope is built (the scope's tools view)."""

    __slots__ = ("_approver", "_caller", "_declarations", "_tools", "policy")

    def __init__(
        self,
        tools: Iterable[Tool] = (),
        *,
        caller: ToolContext | None = None,
        approver: Approver | None = None,
        policy: ToolPolicy | None = None,
    ) -> None:
        by_name: dict[str, Tool] = {}
        for tool in tools:
            name = tool.declaration.name
            if name in by_name:
                raise ConfigurationError(f"two tools are named {name!r}")
            by_name[name] = tool
        self._tools: Mapping[str, Tool] = MappingProxyType(by_name)
        self._declarations = tuple(tool.declaration for tool in by_name.values())
        self._caller = caller
        self._approver = approver
        self.policy = policy or ToolPolicy()

    @property
    def approver(self) -> Approver | None:
        """Who approves this scope's calls (a subagent asks the same person as its parent)."""
        return self._approver

    def names(self) -> tuple[str, ...]:
        """The tool names, in registration order."""
        return tuple(self._tools)

    def declarations(self) -> tuple[ToolDeclaration, ...]:
        """What the model is told about each tool."""
        return self._declarations

    def get(self, name: str) -> Tool | None:
        """The tool called `name`, if this scope has it."""
        return self._tools.get(name)

    def restricted_to(self, allowed: Iterable[str] | None) -> ToolRegistry:
        """A registry with only the `allowed` tools (all of them when `allowed` is None)."""
        if allowed is None:
            return self
        wanted = set(allowed)
        unknown = wanted - set(self._tools)
        if unknown:
            raise ConfigurationError(
                f"unknown tools {sorted(unknown)}; available: {', '.join(self._tools)}"
            )
        return self._with(tool for name, tool in self._tools.items() if name in wanted)

    def with_tools(self, *tools: Tool) -> ToolRegistry:
        """A registry with `tools` added, for the same caller, approver and policy."""
        return self._with((*self._tools.values(), *tools))

    def _with(self, tools: Iterable[Tool]) -> ToolRegistry:
        return ToolRegistry(tools, caller=self._caller, approver=self._approver, policy=self.policy)

    async def run(self, call: ToolCallBlock) -> ToolResultBlock:
        """Run one call; any failure becomes an error result for the model, never an exception."""
        tool = self._tools.get(call.name)
        if tool is None:
            known = ", ".join(self._tools) or "none"
            return _error(call, f"unknown tool {call.name!r}; available tools: {known}")
        if call.arguments_error is not None:
            return _error(
                call,
                f"the arguments of {call.name} could not be read: {call.arguments_error}; "
                "it was not run. Call it again with its arguments as one JSON object",
            )
        try:
            return ToolResultBlock(call.id, call.name, result=await self._call(tool, call))
        except ToolError as exc:
            return _error(call, str(exc))
        except Exception as exc:
            return _error(call, f"tool failed: {type(exc).__name__}: {exc}")

    async def _call(self, tool: Tool, call: ToolCallBlock) -> str:
        """The tool's answer, once approved and within its timeout; raises `ToolError`."""
        declaration = tool.declaration
        refusal = await self._refusal(declaration, call)
        if refusal is not None:
            raise ToolError(refusal)
        timeout = declaration.timeout or self.policy.timeout
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                return await tool.run(call.arguments, self._caller)
        except TimeoutError:
            if deadline.expired():
                raise ToolError(
                    f"{call.name} timed out after {timeout:g} s; it was stopped"
                ) from None
            raise

    async def _refusal(self, declaration: ToolDeclaration, call: ToolCallBlock) -> str | None:
        """Why the call may not run (`None` when it may)."""
        if not declaration.requires_approval or self.policy.approves(call.name):
            return None
        if self._approver is None or self._caller is None:
            return (
                f"{call.name} needs approval and no one can approve it here; "
                "it was not run (settings: tools.auto_approve)"
            )
        approved = await self._approver(ApprovalRequest(call.name, call.arguments, self._caller))
        return None if approved else f"the user declined to run {call.name}; it was not run"


def _error(call: ToolCallBlock, message: str) -> ToolResultBlock:
    return ToolResultBlock(call.id, call.name, error=redact_secrets(message))
