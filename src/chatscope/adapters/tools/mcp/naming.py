"""The names models see for MCP tools: `{server}__{tool}`, in `[A-Za-z0-9_-]`, at most 64 long.

64 characters of that alphabet is the strictest limit of the providers (OpenAI's). A server
name never holds `__` nor ends in `_` (`check_server_name`), so the first `__` of a name ends
the server part and two servers never share a name. A tool name that does not fit as it is
gets its invalid characters replaced and is cut to fit, followed by a short hash of the
original, so two different tools of one server keep two different names.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["MAX_TOOL_NAME", "SEPARATOR", "namespaced_name"]

MAX_TOOL_NAME = 64
SEPARATOR = "__"
_VALID = re.compile(r"[A-Za-z0-9_-]+")
_INVALID_CHARACTER = re.compile(r"[^A-Za-z0-9_-]")
_HASH_LENGTH = 8


def namespaced_name(server: str, tool: str) -> str:
    """The name the model sees for `tool` of MCP server `server` (a valid server name)."""
    prefix = f"{server}{SEPARATOR}"
    budget = MAX_TOOL_NAME - len(prefix)
    if _VALID.fullmatch(tool) and len(tool) <= budget:
        return prefix + tool
    digest = hashlib.sha256(tool.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LENGTH]
    kept = _INVALID_CHARACTER.sub("_", tool)[: budget - _HASH_LENGTH - 1]
    return f"{prefix}{kept}_{digest}"
