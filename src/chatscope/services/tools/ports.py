"""The `Tool` port and the declaration a model sees of a tool."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from chatscope.services.frozen import FrozenDict

__all__ = ["Tool", "ToolDeclaration"]


@dataclass(frozen=True, slots=True)
class ToolDeclaration:
    """A tool as a model sees it: name, description and JSON-schema parameters."""

    name: str
    description: str
    parameters: FrozenDict


@runtime_checkable
class Tool(Protocol):
    """A tool the model may call."""

    @property
    def declaration(self) -> ToolDeclaration:
        """Name, description and JSON-schema parameters."""
        ...

    async def run(self, arguments: Mapping[str, Any]) -> str:
        """Run with the model's arguments; raise `ToolError` to report a failure to the model."""
        ...
