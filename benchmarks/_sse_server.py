"""A minimal keep-alive HTTP/1.1 server answering every POST with a 20-chunk OpenAI SSE stream.

Runs in its own process so that its CPU time is not counted against the client being measured.
Usage: `python benchmarks/_sse_server.py [HOLD_MS [CHUNK_MS]]` prints `PORT` on its first line,
then serves forever; with HOLD_MS each answer's last part (the finish, usage and `[DONE]`) is sent
that many milliseconds after the rest, which keeps streams open for as long; with CHUNK_MS every
event is sent that many milliseconds after the one before, as a model streams its tokens.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

CHUNKS = 20


def _chunk(index: int) -> dict[str, Any]:
    delta = {"content": f"token{index} "} if index else {"role": "assistant", "content": ""}
    finish = "stop" if index == CHUNKS - 1 else None
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "choices": [choice]}


def _body() -> bytes:
    return b"".join(_events())


def _events() -> list[bytes]:
    usage = {"prompt_tokens": 9, "completion_tokens": 19}
    events = [_chunk(index) for index in range(CHUNKS)]
    events.append({"id": "chatcmpl-bench", "choices": [], "usage": usage})
    return [f"data: {json.dumps(event)}\n\n".encode() for event in events] + [b"data: [DONE]\n\n"]


async def _paced(writer: asyncio.StreamWriter, head: bytes, pace: float) -> None:
    writer.write(head)
    for event in _events():
        await asyncio.sleep(pace)
        writer.write(event)
        await writer.drain()


async def _serve(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    hold: float = 0.0,
    pace: float = 0.0,
) -> None:
    body = _body()
    split = body.index(b"data: ", len(body) // 2)
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
    )
    try:
        while True:
            header = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in header.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if pace:
                await _paced(writer, head, pace)
            elif hold:
                writer.write(head + body[:split])
                await writer.drain()
                await asyncio.sleep(hold)
                writer.write(body[split:])
            else:
                writer.write(head + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def main() -> None:
    """Serve on a free loopback port until killed."""
    hold = float(sys.argv[1]) / 1000 if len(sys.argv) > 1 else 0.0
    pace = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve(reader, writer, hold, pace)

    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    sys.stdout.close()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
