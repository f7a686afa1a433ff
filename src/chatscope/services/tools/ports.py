"""The `Tool` port, the declaration a model sees of a tool, what a tool is told of its caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from chatscope.services.frozen import FrozenDict, deep_freeze

__all__ = ["ApprovalRequest", "Approver", "Tool", "ToolContext", "ToolDeclaration"]


@dataclass(frozen=True, slots=True)
class ToolDeclaration:
    """A tool as a model sees it: name, description and JSON-schema parameters.

    The model is told `name`, `description` and `parameters`. The scope reads the rest:
    `requires_approval` (the scope's approver must say yes before each call) and `timeout`
    (seconds; `None` means the scope's default, setting `tools.timeout`).
    """

    name: str
    description: str
    parameters: FrozenDict
    requires_approval: bool = False
    timeout: float | None = None

    @classmethod
    def create(
        cls,
        name: str,
        description: str,
        parameters: Mapping[str, Any],
        *,
        requires_approval: bool = False,
        timeout: float | None = None,
    ) -> ToolDeclaration:
        """A declaration whose JSON-schema `parameters` are deeply frozen."""
        return cls(name, description, deep_freeze(parameters), requires_approval, timeout)


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who is calling a tool: the calling scope's identity, never a credential."""

    session_id: str
    runtime_id: str
    provider: str
    model: str
    parent_runtime_id: str | None = None
    subagent_name: str | None = None


@runtime_checkable
class Tool(Protocol):
    """A tool the model may call."""

    @property
    def declaration(self) -> ToolDeclaration:
        """Name, description and JSON-schema parameters."""
        ...

    async def run(self, arguments: Mapping[str, Any], context: ToolContext | None = None) -> str:
        """Run with the model's arguments; raise `ToolError` to report a failure to the model.

        A scope's registry always passes the calling scope's `context`; it is `None` only when
        a tool is called outside any scope (a test calling it directly).
        """
        ...


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A call that waits for approval: which tool, with which arguments, from which scope."""

    tool: str
    arguments: FrozenDict
    context: ToolContext


Approver = Callable[[ApprovalRequest], Awaitable[bool]]
"""Says whether a call may run. Given with a scope; the CLI asks y/N on a terminal."""
