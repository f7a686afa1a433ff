"""Server-sent events, parsed from an httpx response as the WHATWG spec says.

Handles `\\n`, `\\r\\n` and `\\r` line ends (Gemini separates events with `\\r\\n\\r\\n`),
multi-line `data:`, comments and a last event that the server did not close with a blank line.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass

import httpx

__all__ = ["SSEEvent", "iter_sse_lines", "sse_lines", "sse_stream"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its `event:` name (default "message") and joined `data:` lines."""

    event: str
    data: str


@asynccontextmanager
async def sse_stream(response: httpx.Response) -> AsyncIterator[AsyncIterator[SSEEvent]]:
    """The events of a streamed response body, closed on exit even when parsing stops early."""
    lines = sse_lines(response.aiter_text())
    events = iter_sse_lines(lines)
    async with aclosing(lines), aclosing(events):
        yield events


async def sse_lines(chunks: AsyncIterator[str]) -> AsyncGenerator[str, None]:
    """Lines split only where SSE ends them: at CR, LF or CRLF.

    httpx's `aiter_lines` splits like `str.splitlines`, so a raw U+2028 or U+0085 inside a JSON
    string (valid JSON, and sent unescaped by several servers) would cut a `data:` line in two.
    """
    pending: list[str] = []
    after_cr = False
    async for chunk in chunks:
        text = chunk
        if after_cr:
            after_cr = False
            if text.startswith("\n"):
                text = text[1:]  # the LF of a CRLF split across two chunks
        if not text:
            continue
        after_cr = text.endswith("\r")
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        if len(lines) == 1:
            pending.append(text)
            continue
        pending.append(lines[0])
        yield "".join(pending)
        for line in lines[1:-1]:
            yield line
        pending = [lines[-1]]
    tail = "".join(pending)
    if tail:
        yield tail


async def iter_sse_lines(lines: AsyncIterator[str]) -> AsyncGenerator[SSEEvent, None]:
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
