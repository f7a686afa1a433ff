"""`emit_value`: the tool a subagent hands its named results back to its parent with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chatscope.errors import ToolError
from chatscope.services.frozen import FrozenDict, deep_freeze
from chatscope.services.tools.ports import ToolContext, ToolDeclaration

__all__ = ["EMIT_VALUE", "EmitValueTool"]

EMIT_VALUE = "emit_value"

_EMIT_DECLARATION = ToolDeclaration(
    name=EMIT_VALUE,
    description=(
        "Hand a named result back to the chat that started you. Call it once per result; "
        "a later call with the same name replaces the value."
    ),
    parameters=deep_freeze(
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "what the value is, e.g. `summary`"},
                "value": {"type": "string", "description": "the value itself"},
            },
            "required": ["name", "value"],
        }
    ),
)


class EmitValueTool:
    """`emit_value`: a subagent scope's named results, kept for the run that owns the scope."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    @property
    def declaration(self) -> ToolDeclaration:
        """Name, description and parameters."""
        return _EMIT_DECLARATION

    async def run(self, arguments: Mapping[str, Any], context: ToolContext | None = None) -> str:
        """Keep one value; a missing or empty name is refused."""
        name = arguments.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ToolError("emit_value needs a non-empty string `name`")
        if "value" not in arguments:
            raise ToolError("emit_value needs a `value`")
        self._values[name] = deep_freeze(arguments["value"])
        return f"emitted {name!r}"

    def values(self) -> FrozenDict:
        """Every value emitted so far, by name."""
        return FrozenDict(self._values)
