"""Server-sent events, parsed from an httpx response as the WHATWG spec says.

Handles `\\n`, `\\r\\n` and `\\r` line ends (Gemini separates events with `\\r\\n\\r\\n`),
multi-line `data:`, comments and a last event that the server did not close with a blank line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

__all__ = ["SSEEvent", "iter_sse", "iter_sse_lines"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its `event:` name (default "message") and joined `data:` lines."""

    event: str
    data: str


async def iter_sse(response: httpx.Response) -> AsyncIterator[SSEEvent]:
    """Yield the events of a streamed response body."""
    async for event in iter_sse_lines(response.aiter_lines()):
        yield event


async def iter_sse_lines(lines: AsyncIterator[str]) -> AsyncIterator[SSEEvent]:
    """Yield the events of an iterator of lines (line ends already removed)."""
    event_name = ""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield SSEEvent(event_name or "message", "\n".join(data))
            event_name, data = "", []
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            event_name = value
    if data:
        yield SSEEvent(event_name or "message", "\n".join(data))
