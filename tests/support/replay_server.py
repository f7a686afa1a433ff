"""A real HTTP/1.1 server on 127.0.0.1 that replays scripted responses and records requests.

It runs in a thread, so tests in any event loop and CLI subprocesses can both reach it. Bodies
are sent with chunked transfer encoding, one chunk per scripted piece, so faults are real:
`drop_after` closes the socket mid-body, `first_byte_delay` stalls before the status line, and
`drop_before_status` closes it before a single byte of the response.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["RecordedRequest", "ReplayServer", "ScriptedResponse", "replay_server"]


@dataclass(frozen=True)
class RecordedRequest:
    """What reached the server."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The request body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class ScriptedResponse:
    """One response to send: status, headers and body pieces, with optional faults."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    chunks: list[bytes] = field(default_factory=list)
    first_byte_delay: float = 0.0
    chunk_delay: float = 0.0
    drop_after: int | None = None
    drop_before_status: bool = False

    @classmethod
    def json_body(cls, payload: Any, status: int = 200, **headers: str) -> ScriptedResponse:
        """A JSON response."""
        return cls(
            status, {"content-type": "application/json", **headers}, [json.dumps(payload).encode()]
        )

    @classmethod
    def sse(cls, body: bytes, *, pieces: int = 0, **options: Any) -> ScriptedResponse:
        """An event stream; `pieces` > 0 splits the body into that many chunks."""
        chunks = _split(body, pieces) if pieces else _split_events(body)
        return cls(200, {"content-type": "text/event-stream"}, chunks, **options)


def _split_events(body: bytes) -> list[bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        if separator in body:
            parts = body.split(separator)
            return [part + separator for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    return [body]


def _split(body: bytes, pieces: int) -> list[bytes]:
    size = max(1, -(-len(body) // pieces))
    return [body[start : start + size] for start in range(0, len(body), size)]


Responder = Callable[[RecordedRequest], ScriptedResponse]


class ReplayServer:
    """Serves queued responses (or a responder function) and records every request."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._queue: deque[ScriptedResponse] = deque()
        self._responder: Responder | None = None
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def enqueue(self, *responses: ScriptedResponse) -> None:
        """Answer the next requests with these responses, in order."""
        with self._lock:
            self._queue.extend(responses)

    def reset(self) -> None:
        """Forget recorded requests and queued responses (for a server shared by tests)."""
        with self._lock:
            self.requests.clear()
            self._queue.clear()

    def respond_with(self, responder: Responder) -> None:
        """Answer every request with `responder(request)` once the queue is empty."""
        self._responder = responder

    def start(self) -> None:
        """Begin serving in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def next_response(self, request: RecordedRequest) -> ScriptedResponse:
        """Record `request` and choose its response."""
        with self._lock:
            self.requests.append(request)
            if self._queue:
                return self._queue.popleft()
        if self._responder is not None:
            return self._responder(request)
        return ScriptedResponse.json_body({"error": {"message": "no scripted response"}}, 599)


@contextmanager
def replay_server(*responses: ScriptedResponse) -> Iterator[ReplayServer]:
    """A started server with `responses` queued, stopped on exit."""
    server = ReplayServer()
    server.enqueue(*responses)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _handler_for(server: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {key.lower(): value for key, value in self.headers.items()}
            response = server.next_response(RecordedRequest(self.command, self.path, headers, body))
            _write(self, response)

    return Handler


def _write(handler: BaseHTTPRequestHandler, response: ScriptedResponse) -> None:
    if response.first_byte_delay:
        time.sleep(response.first_byte_delay)
    if response.drop_before_status:
        handler.close_connection = True
        return
    try:
        handler.send_response(response.status)
        for key, value in response.headers.items():
            handler.send_header(key, value)
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        _write_chunks(handler, response)
    except (BrokenPipeError, ConnectionResetError):
        handler.close_connection = True


def _write_chunks(handler: BaseHTTPRequestHandler, response: ScriptedResponse) -> None:
    for index, chunk in enumerate(response.chunks):
        if response.drop_after is not None and index >= response.drop_after:
            handler.wfile.flush()
            handler.close_connection = True
            return
        if response.chunk_delay and index:
            time.sleep(response.chunk_delay)
        handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        handler.wfile.flush()
    handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()
