"""Server-sent events, parsed from an httpx response as the WHATWG spec says.

Lines end only at `\\n`, `\\r\\n` or `\\r` (Gemini separates events with `\\r\\n\\r\\n`); httpx's
`aiter_lines` splits like `str.splitlines`, so a raw U+2028 or U+0085 inside a JSON string (valid
JSON, sent unescaped by several servers) would cut a `data:` line in two. Multi-line `data:`,
comments and a last event the server did not close with a blank line are handled too.

The parser is plain code fed text chunks, and `sse_stream` hands over the events a chunk of the
body completes as one list: a streamed reply costs a generator step per network read, rather than
one per event (or per line). An event is a plain pair, `(name, data)`, as one is made per token.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

import httpx

__all__ = ["SSEEvent", "SSEParser", "iter_sse_batches", "sse_stream"]

SSEEvent = tuple[str, str]
"""One dispatched event: its `event:` name (default "message") and its joined `data:` lines."""


class SSEParser:
    """Turns text chunks, split anywhere, into events. One parser per response."""

    __slots__ = ("_after_cr", "_data", "_event", "_partial")

    def __init__(self) -> None:
        self._partial: list[str] = []
        self._after_cr = False
        self._event = ""
        self._data: list[str] = []

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
        return self._lines(lines)

    def close(self) -> list[SSEEvent]:
        """The last event, if the body ended without the blank line that closes it."""
        tail = "".join(self._partial)
        self._partial = []
        return self._lines([tail, ""] if tail else [""])

    def _lines(self, lines: list[str]) -> list[SSEEvent]:
        """Apply complete lines; one loop, no call per line, as this runs for every line."""
        events: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if line.startswith("data: "):  # the usual line, so tested first
                data.append(line[6:])
                continue
            if not line:  # a blank line dispatches the event, if it has data
                if data:
                    events.append((self._event or "message", "\n".join(data)))
                    data = []
                self._event = ""
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                self._event = value
        self._data = data
        return events


async def iter_sse_batches(chunks: AsyncIterator[str]) -> AsyncGenerator[list[SSEEvent], None]:
    """The events of a body arriving as text chunks: a list for each chunk that completed any,
    then one for the last event, if the body's end completed it. No list is empty."""
    parser = SSEParser()
    async for chunk in chunks:
        events = parser.feed(chunk)
        if events:
            yield events
    last = parser.close()
    if last:
        yield last


class sse_stream:  # noqa: N801 - used like the function-style context manager it replaced
    """The events of a streamed response body, in lists as `iter_sse_batches` gives them; closed
    on exit even when parsing stops early."""

    __slots__ = ("_batches",)

    def __init__(self, response: httpx.Response) -> None:
        self._batches = iter_sse_batches(response.aiter_text())

    async def __aenter__(self) -> AsyncGenerator[list[SSEEvent], None]:
        return self._batches

    async def __aexit__(self, *_: object) -> None:
        await self._batches.aclose()
