"""The declaration and argument helpers the workspace tool families have in common.

Every family declares its tools and checks a model's arguments the same way, so a misspelt or
mistyped argument is refused with the same message whichever tool received it; the few path
and output helpers more than one family needs live here too, so the families never import
one another.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chatscope.errors import ConfigurationError, ToolError
from chatscope.services.frozen import deep_freeze
from chatscope.services.tools.ports import ToolDeclaration

__all__ = [
    "SNIFF_BYTES",
    "capped_lines",
    "check_names",
    "declare",
    "integer_argument",
    "integer_schema",
    "positive",
    "require_directory",
    "string_argument",
    "string_schema",
]

SNIFF_BYTES = 8 * 1024


def declare(
    name: str,
    description: str,
    properties: dict[str, Any],
    *,
    required: tuple[str, ...],
    requires_approval: bool = False,
) -> ToolDeclaration:
    parameters = {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }
    return ToolDeclaration(
        name, description, deep_freeze(parameters), requires_approval=requires_approval
    )


def string_schema(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def integer_schema(description: str, minimum: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "description": description}


def positive(name: str, value: int) -> int:
    """Caps come from configuration, so a bad one is a configuration error, not a tool error."""
    if value < 1:
        raise ConfigurationError(f"{name} must be at least 1, got {value}")
    return value


def check_names(arguments: Mapping[str, Any], declaration: ToolDeclaration) -> None:
    """Unknown arguments are refused so a misspelt option is not silently ignored."""
    unknown = sorted(set(arguments) - set(declaration.parameters["properties"]))
    if unknown:
        known = ", ".join(declaration.parameters["properties"])
        raise ToolError(f"unknown arguments {unknown}; {declaration.name} accepts: {known}")


def string_argument(arguments: Mapping[str, Any], name: str, *, default: str | None = None) -> str:
    """A string argument; a missing or null optional one takes its default."""
    value = arguments.get(name)
    if value is None:
        if default is None:
            raise ToolError(f"missing required argument {name!r}")
        return default
    if not isinstance(value, str):
        raise ToolError(f"argument {name!r} must be a string, got {type(value).__name__}")
    return value


def integer_argument(arguments: Mapping[str, Any], name: str, *, minimum: int) -> int | None:
    """An optional integer argument; models sometimes send `10.0`, which is accepted."""
    value = arguments.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ToolError(f"argument {name!r} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ToolError(f"argument {name!r} must be at least {minimum}, got {value}")
    return value


def require_directory(path: Path, raw_path: str) -> None:
    if not path.exists():
        raise ToolError(f"no such directory: {raw_path!r}")
    if not path.is_dir():
        raise ToolError(f"{raw_path!r} is not a directory")


def capped_lines(lines: list[str], cap: int, noun: str) -> str:
    shown = lines[:cap]
    if len(lines) > cap:
        shown.append(f"[truncated: {len(lines) - cap} more {noun} not shown]")
    return "\n".join(shown)
