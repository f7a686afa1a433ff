"""A scope's tool registry: what the model may call, and running a call without ever crashing."""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

from chatscope.errors import ConfigurationError, ToolError, redact_secrets
from chatscope.services.messages import ToolCallBlock, ToolResultBlock
from chatscope.services.tools.ports import Tool, ToolDeclaration

__all__ = ["ToolRegistry"]


class ToolRegistry:
    """The tools of one scope, fixed when the scope is built (the scope's tools view)."""

    __slots__ = ("_declarations", "_tools")

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        by_name: dict[str, Tool] = {}
        for tool in tools:
            name = tool.declaration.name
            if name in by_name:
                raise ConfigurationError(f"two tools are named {name!r}")
            by_name[name] = tool
        self._tools = MappingProxyType(by_name)
        self._declarations = tuple(tool.declaration for tool in by_name.values())

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
        return ToolRegistry(tool for name, tool in self._tools.items() if name in wanted)

    async def run(self, call: ToolCallBlock) -> ToolResultBlock:
        """Run one call; any failure becomes an error result for the model, never an exception."""
        tool = self._tools.get(call.name)
        if tool is None:
            known = ", ".join(self._tools) or "none"
            return _error(call, f"unknown tool {call.name!r}; available tools: {known}")
        try:
            return ToolResultBlock(call.id, call.name, result=await tool.run(call.arguments))
        except ToolError as exc:
            return _error(call, str(exc))
        except Exception as exc:
            return _error(call, f"tool failed: {type(exc).__name__}: {exc}")


def _error(call: ToolCallBlock, message: str) -> ToolResultBlock:
    return ToolResultBlock(call.id, call.name, error=redact_secrets(message))
