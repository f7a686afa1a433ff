"""Server-sent events, parsed from an httpx response as the WHATWG spec says.

Lines end only at `\\n`, `\\r\\n` or `\\r` (Gemini separates events with `\\r\\n\\r\\n`); httpx's
`aiter_lines` splits like `str.splitlines`, so a raw U+2028 or U+0085 inside a JSON string (valid
JSON, sent unescaped by several servers) would cut a `data:` line in two. Multi-line `data:`,
comments and a last event the server did not close with a blank line are handled too.

The parser is plain code fed text chunks; the only generator is the one yielding events, so a
streamed reply costs one generator step per event rather than one per line.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field

import httpx

__all__ = ["SSEEvent", "SSEParser", "iter_sse_events", "sse_stream"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its `event:` name (default "message") and joined `data:` lines."""

    event: str
    data: str


@dataclass(slots=True)
class SSEParser:
    """Turns text chunks, split anywhere, into events. One parser per response."""

    _partial: list[str] = field(default_factory=list)
    _after_cr: bool = False
    _event: str = ""
    _data: list[str] = field(default_factory=list)

    def feed(self, chunk: str) -> list[SSEEvent]:
        """The events completed by this chunk of the body."""
        if self._after_cr:
            self._after_cr = False
            if chunk.startswith("\n"):
                chunk = chunk[1:]  # the LF of a CRLF split across two chunks
        if not chunk:
            return []
        self._after_cr = chunk.endswith("\r")
        if "\r" in chunk:
            chunk = chunk.replace("\r\n", "\n").replace("\r", "\n")
        lines = chunk.split("\n")
        if len(lines) == 1:
            self._partial.append(chunk)
            return []
        self._partial.append(lines[0])
        lines[0] = "".join(self._partial)
        self._partial = [lines.pop()]
        return [event for line in lines if (event := self._line(line)) is not None]

    def close(self) -> list[SSEEvent]:
        """The last event, if the body ended without the blank line that closes it."""
        tail = "".join(self._partial)
        self._partial = []
        events = [event] if tail and (event := self._line(tail)) is not None else []
        if self._data:
            events.append(self._dispatch())
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            if self._data:
                return self._dispatch()
            self._reset()
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None

    def _dispatch(self) -> SSEEvent:
        event = SSEEvent(self._event or "message", "\n".join(self._data))
        self._reset()
        return event

    def _reset(self) -> None:
        self._event, self._data = "", []


async def iter_sse_events(chunks: AsyncIterator[str]) -> AsyncGenerator[SSEEvent, None]:
    """The events of a body arriving as text chunks."""
    parser = SSEParser()
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event
    for event in parser.close():
        yield event


@asynccontextmanager
async def sse_stream(response: httpx.Response) -> AsyncIterator[AsyncIterator[SSEEvent]]:
    """The events of a streamed response body, closed on exit even when parsing stops early."""
    async with aclosing(iter_sse_events(response.aiter_text())) as events:
        yield events
