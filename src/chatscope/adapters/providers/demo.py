"""The offline demo provider: deterministic, no network, and it really calls a tool.

It lets `chatscope chat` show the whole loop (prompt, tool call, tool result, answer) on a
machine with no API key. Every answer says plainly that no model was involved.

Asked for a typed answer, it answers with the smallest JSON its schema describes: required
properties only, one item per array, the first choice of a union or enum, zero, false, and for
every string the offline label. A schema with constraints beyond that (a pattern, a format it does
not know) may not be met: the chat loop's validation then says what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from types import MappingProxyType
from typing import Any

from chatscope.services.events import (
    FinishEvent,
    FinishReason,
    ProviderEvent,
    TextDelta,
    ToolCallEvent,
    UsageEvent,
)
from chatscope.services.messages import Message, Role, ToolCallBlock, Usage, estimate_tokens
from chatscope.services.runtime.invocation import ModelInvocation, OutputSchema

__all__ = ["DemoProvider"]

OFFLINE_LABEL = "[offline demo provider: no model was called]"
_DEMO_TOOL = "list_directory"
_MAX_DEPTH = 16
_EXAMPLE_FORMATS: Mapping[str, str] = MappingProxyType(
    {"date-time": "1970-01-01T00:00:00Z", "date": "1970-01-01", "time": "00:00:00Z"}
)


class DemoProvider:
    """Answers from the conversation itself; asks for a directory listing first."""

    __slots__ = ("_name",)

    def __init__(self, *, name: str = "demo") -> None:
        self._name = name

    @property
    def name(self) -> str:
        """The provider name this adapter answers to."""
        return self._name

    async def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
        """Call `list_directory` on a fresh prompt; answer once the result is back."""
        last = invocation.history[-1] if invocation.history else None
        wants_tool = any(tool.name == _DEMO_TOOL for tool in invocation.tools)
        if last is not None and last.role is Role.USER and wants_tool:
            call_id = f"demo_call_{len(invocation.history)}"
            yield ToolCallEvent(ToolCallBlock.create(call_id, _DEMO_TOOL, {"path": "."}))
            yield _usage(invocation, output_tokens=8)
            yield FinishEvent(FinishReason.TOOL_CALLS, "tool_calls")
            return
        output = invocation.output_schema
        answer = _answer(invocation.history) if output is None else _typed_answer(output)
        for piece in _pieces(answer):
            yield TextDelta(piece)
        yield _usage(invocation, output_tokens=max(1, len(answer) // 4))
        yield FinishEvent(FinishReason.STOP, "stop")


def _answer(history: tuple[Message, ...]) -> str:
    prompt = next((m.text for m in reversed(history) if m.role is Role.USER and m.text), "")
    listing = _last_tool_output(history)
    lines = [OFFLINE_LABEL, f"You asked: {prompt!r}."]
    if listing is not None:
        entries = [line for line in listing.splitlines() if line.strip()]
        lines.append(f"I called {_DEMO_TOOL}; the workspace holds {len(entries)} entries:")
        lines.extend(f"  {entry}" for entry in entries[:20])
    lines.append("Configure a provider (see `chatscope config show`) for real answers.")
    return "\n".join(lines) + "\n"


def _typed_answer(output: OutputSchema) -> str:
    schema = output.json_schema()
    return json.dumps(_example(schema, schema, 0), ensure_ascii=False)


def _example(node: Any, root: Mapping[str, Any], depth: int) -> Any:  # noqa: PLR0911
    """The smallest value of `node`'s schema (module docstring); None where it cannot tell."""
    if not isinstance(node, Mapping) or depth > _MAX_DEPTH:
        return None
    if "const" in node:
        return node["const"]
    if node.get("enum"):
        return node["enum"][0]
    if isinstance(node.get("$ref"), str):
        return _example(_resolve(node["$ref"], root), root, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        if node.get(key):
            return _example(node[key][0], root, depth + 1)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((name for name in kind if name != "null"), "null")
    if kind == "object" or "properties" in node:
        properties = node.get("properties") or {}
        required = node.get("required") or ()
        return {name: _example(properties.get(name), root, depth + 1) for name in required}
    if kind == "array":
        count = max(node.get("minItems", 0), min(1, node.get("maxItems", 1)))
        return [_example(node.get("items"), root, depth + 1) for _ in range(count)]
    return _scalar(kind, node)


def _scalar(kind: Any, node: Mapping[str, Any]) -> Any:
    if kind == "string":
        return _EXAMPLE_FORMATS.get(node.get("format", ""), OFFLINE_LABEL)
    if kind in ("integer", "number"):
        return node.get("minimum", 0)
    return False if kind == "boolean" else None


def _resolve(ref: str, root: Mapping[str, Any]) -> Any:
    found: Any = root
    for part in ref.removeprefix("#/").split("/"):
        found = found.get(part) if isinstance(found, Mapping) else None
    return found


def _last_tool_output(history: tuple[Message, ...]) -> str | None:
    for message in reversed(history):
        for result in message.tool_results:
            if result.name == _DEMO_TOOL:
                return result.content
        if message.role is Role.USER:
            return None
    return None


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [word + " " for word in words[:-1]] + [words[-1]]


def _usage(invocation: ModelInvocation, *, output_tokens: int) -> UsageEvent:
    return UsageEvent(Usage(estimate_tokens(invocation.history), output_tokens))
