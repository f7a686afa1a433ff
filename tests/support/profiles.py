"""Writing subagent profile files for tests: a small TOML emitter and a profile writer."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["to_toml", "write_profile"]

_BARE_KEY = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def write_profile(directory: Path, file_name: str, **fields: Any) -> Path:
    """Write `fields` as the TOML profile `directory/file_name.toml` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{file_name}.toml"
    path.write_text(to_toml(fields), encoding="utf-8")
    return path


def to_toml(document: Mapping[str, Any]) -> str:
    """`document` as TOML: scalars and arrays first, then one table per nested mapping."""
    lines = [
        f"{_key(key)} = {_value(value)}"
        for key, value in document.items()
        if not isinstance(value, Mapping)
    ]
    for key, value in document.items():
        if isinstance(value, Mapping):
            lines.append(f"[{_key(key)}]")
            lines.extend(f"{_key(inner)} = {_value(item)}" for inner, item in value.items())
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if key and set(key) <= _BARE_KEY else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str | Path):
        return _string(str(value))
    raise TypeError(f"no TOML for {type(value).__name__}")


def _string(text: str) -> str:
    """A TOML basic string: JSON escaping, plus DEL, which TOML forbids unescaped."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
