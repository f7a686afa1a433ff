"""A fake of the chatscope web API serving the real chat page, a uvicorn runner, and Chromium.

The fake speaks the API contract the page is written against (`/v1/models`, `/v1/sessions`,
`/v1/sessions/{id}/messages` as `text/event-stream`) with scripted answers chosen by words in
the prompt, records every request, and serves the package's `chatscope/web/static/` files at `/`
and `/static/`, so the page under test is the one that ships. `serve()` runs any ASGI app with
uvicorn on 127.0.0.1 in a background thread.

Run as a module to regenerate the screenshot in the docs:
`uv run python -m tests.web.page_support docs/chat-page.png`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

import chatscope

__all__ = [
    "CHROMIUM_ARGS",
    "MODELS",
    "STATIC_DIR",
    "FakeApi",
    "Recorded",
    "chromium_path",
    "save_screenshot",
    "serve",
]

STATIC_DIR = Path(chatscope.__file__).parent / "web" / "static"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
MODELS = ["demo/chatscope-demo", "openai/gpt-4o-mini", "anthropic/claude-sonnet-4", "researcher"]
SLOW_HEAD = ["Streaming ", "starts ", "here"]
SLOW_TAIL = " and ends once the test lets it."
CODE_ANSWER = "Run this:\n```python\nprint('hi')\n```\nand <b>this</b> stays plain text."
TOOL_LISTING = "README.md\npyproject.toml\nsrc/\ntests/\n"
_GATE_TIMEOUT = 15.0


def chromium_path() -> str | None:
    """Debian's `chromium` on PATH (or at /usr/bin), or None."""
    found = shutil.which("chromium")
    if found is None and Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return found


@dataclass(frozen=True)
class Recorded:
    """One request that reached the fake API."""

    method: str
    path: str
    authorization: str | None
    body: Any


def _sse(event: str, data: dict[str, Any], *, newline: str = "\n") -> bytes:
    return f"event: {event}{newline}data: {json.dumps(data)}{newline}{newline}".encode()


def _model_of(body: dict[str, Any]) -> str:
    """The `provider/model` a request body names, resolved as the real server does."""
    provider, model = body.get("provider"), body.get("model")
    if provider:
        return f"{provider}/{model or 'default'}"
    if model in MODELS and "/" not in model:  # a subagent profile
        return "demo/chatscope-demo"
    return str(model or MODELS[0])


def _error(status: int, message: str, kind: str, **headers: str) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


class FakeApi:
    """The chat API, in memory. `api_key` set means every /v1 call needs `Bearer <api_key>`.

    Prompts pick the answer: "slow" streams three chunks, then waits for `release` before the
    rest; "tool" calls `list_directory` (ok), "bad tool" one that fails; "error" ends in an
    `error` event; "busy" gets a 429 with Retry-After; "code" answers with a code block and
    HTML-looking text; anything else streams a short answer in a few delayed chunks.
    """

    def __init__(self, *, api_key: str | None = None, chunk_delay: float = 0.03) -> None:
        self.api_key = api_key
        self.chunk_delay = chunk_delay
        self.requests: list[Recorded] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.gate = threading.Event()
        self._lock = threading.Lock()
        self._count = 0
        self.app = Starlette(
            routes=[
                Route("/", self._index),
                Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
                Route("/v1/models", self._models),
                Route("/v1/sessions", self._sessions, methods=["GET", "POST"]),
                Route("/v1/sessions/{sid}", self._session, methods=["GET", "DELETE"]),
                Route("/v1/sessions/{sid}/messages", self._messages, methods=["POST"]),
            ]
        )

    # ---- Test-side helpers ----

    def add_session(
        self, title: str, messages: list[dict[str, Any]] | None = None, model: str = MODELS[0]
    ) -> str:
        """Store a session (newest first in listings) and return its id."""
        provider, _, name = model.partition("/")
        with self._lock:
            self._count += 1
            sid = f"s{self._count}"
            stamp = f"2025-01-01T00:00:{self._count:02d}Z"
            self.sessions[sid] = {
                "id": sid,
                "provider": provider,
                "model": name,
                "title": title,
                "created_at": stamp,
                "updated_at": stamp,
                "turns": sum(1 for m in messages or [] if m["role"] == "user"),
                "messages": list(messages or []),
            }
        return sid

    def release(self) -> None:
        """Let a "slow" answer finish."""
        self.gate.set()

    def posted(self, suffix: str) -> list[Recorded]:
        """The POST requests whose path ends with `suffix`, oldest first."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path.endswith(suffix)]

    def authorizations(self) -> list[str | None]:
        """The Authorization header of every /v1 request, oldest first."""
        with self._lock:
            return [r.authorization for r in self.requests]

    # ---- Handlers ----

    async def _record(self, request: Request) -> tuple[Any, JSONResponse | None]:
        """Record the request; return its JSON body and, without the right key, a 401."""
        raw = await request.body()
        body = json.loads(raw) if raw else {}
        auth = request.headers.get("authorization")
        with self._lock:
            self.requests.append(Recorded(request.method, request.url.path, auth, body))
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            return body, _error(401, "Missing or invalid API key.", "authentication_error")
        return body, None

    async def _index(self, request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html")

    async def _models(self, request: Request) -> Response:
        _, denied = await self._record(request)
        if denied:
            return denied
        data = [{"id": m, "object": "model", "owned_by": m.partition("/")[0]} for m in MODELS]
        return JSONResponse({"object": "list", "data": data})

    @staticmethod
    def _summary(session: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in session.items() if k != "messages"}

    async def _sessions(self, request: Request) -> Response:
        body, denied = await self._record(request)
        if denied:
            return denied
        if request.method == "POST":
            sid = self.add_session("", model=_model_of(body))
            return JSONResponse(self._summary(self.sessions[sid]), status_code=201)
        newest = sorted(self.sessions.values(), key=lambda s: s["updated_at"], reverse=True)
        return JSONResponse({"data": [self._summary(s) for s in newest]})

    async def _session(self, request: Request) -> Response:
        _, denied = await self._record(request)
        if denied:
            return denied
        session = self.sessions.get(request.path_params["sid"])
        if session is None:
            return _error(404, "No such session.", "not_found")
        if request.method == "DELETE":
            del self.sessions[session["id"]]
            return Response(status_code=204)
        return JSONResponse(session)

    async def _messages(self, request: Request) -> Response:
        body, denied = await self._record(request)
        if denied:
            return denied
        session = self.sessions.get(request.path_params["sid"])
        if session is None:
            return _error(404, "No such session.", "not_found")
        content = str(body.get("content", ""))
        if "busy" in content:
            message = "Too many requests for this tenant."
            return _error(429, message, "rate_limited", **{"Retry-After": "7"})
        session["title"] = session["title"] or content[:40]
        session["turns"] += 1
        session["messages"].append({"role": "user", "text": content})
        return StreamingResponse(self._answer(session, content), media_type="text/event-stream")

    # ---- Scripted answers ----

    async def _answer(self, session: dict[str, Any], content: str) -> AsyncIterator[bytes]:
        newline = "\n"
        if "tool" in content:
            newline = "\r\n"  # the page must read CRLF-framed events too
            async for event in self._tool_turn(session, failing="bad" in content):
                yield event
            pieces = ["The workspace ", "holds 4 entries."]
        elif "slow" in content:
            for head in SLOW_HEAD:
                yield _sse("text", {"text": head})
                await asyncio.sleep(self.chunk_delay)
            yield b": keep-alive\n\n"
            await self._wait_for_gate()
            pieces = [SLOW_TAIL]
        elif "error" in content:
            yield _sse("text", {"text": "Let me check"})
            yield _sse("error", {"message": "The provider is overloaded.", "type": "provider"})
            return
        elif "code" in content:
            pieces = [CODE_ANSWER[:20], CODE_ANSWER[20:]]
        else:
            yield _sse("thinking", {"text": "The user greets me."})
            pieces = ["Hello! ", "I am a ", "scripted ", "answer."]
        for piece in pieces:
            await asyncio.sleep(self.chunk_delay)
            yield _sse("text", {"text": piece}, newline=newline)
        text = "".join(pieces) if "slow" not in content else "".join(SLOW_HEAD) + SLOW_TAIL
        session["messages"].append({"role": "assistant", "text": text})
        usage = {"input_tokens": 12, "output_tokens": 7}
        yield _sse("usage", usage)
        done = {
            "text": text,
            "finish_reason": "stop",
            "usage": usage,
            "provider": session["provider"],
            "model": session["model"],
            "session_id": session["id"],
        }
        yield _sse("done", done, newline=newline)

    async def _tool_turn(self, session: dict[str, Any], *, failing: bool) -> AsyncIterator[bytes]:
        call = {"id": "call_1", "name": "list_directory", "arguments": {"path": "."}}
        result = {"id": "call_1", "name": "list_directory", "result": TOOL_LISTING, "error": None}
        if failing:
            result = {**result, "result": None, "error": "permission denied: /secret"}
        yield _sse("tool_call", call, newline="\r\n")
        await asyncio.sleep(self.chunk_delay)
        yield _sse("tool_result", result, newline="\r\n")
        session["messages"].append({"role": "assistant", "text": "", "tool_calls": [call]})
        session["messages"].append({"role": "tool", "text": "", "tool_results": [result]})

    async def _wait_for_gate(self) -> None:
        await anyio.to_thread.run_sync(self.gate.wait, _GATE_TIMEOUT)


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Run `app` with uvicorn on 127.0.0.1 (a free port) in a thread; yield its base URL."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="chat-page-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(5)
            raise RuntimeError("the test web server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        if thread.is_alive():
            raise RuntimeError("the test web server did not stop")


def _tool_conversation() -> list[dict[str, Any]]:
    call = {"id": "call_1", "name": "list_directory", "arguments": {"path": "."}}
    result = {"id": "call_1", "name": "list_directory", "result": TOOL_LISTING, "error": None}
    return [
        {"role": "user", "text": "What is in my workspace?"},
        {"role": "assistant", "text": "", "tool_calls": [call]},
        {"role": "tool", "text": "", "tool_results": [result]},
        {
            "role": "assistant",
            "text": "Your workspace holds 4 entries: a README, the project file, and the "
            "`src/` and `tests/` folders.\n```text\nREADME.md\npyproject.toml\nsrc/\ntests/\n```",
        },
    ]


def save_screenshot(path: Path) -> None:
    """Render the page mid-conversation (a folded tool call, an answer streaming) to `path`."""
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_path()
    if executable is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    fake = FakeApi()
    fake.add_session("Plan the release notes", model="openai/gpt-4o-mini")
    fake.add_session("Why does the test hang?", model="anthropic/claude-sonnet-4")
    sid = fake.add_session("What is in my workspace?", _tool_conversation())
    with serve(fake.app) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1100, "height": 720})
        page.goto(url)
        page.locator(f'button.session[data-id="{sid}"]').click()
        expect(page.locator("details.tool")).to_have_count(1)
        page.locator("#prompt").fill("Now summarise it slowly, please.")
        page.locator("#prompt").press("Enter")
        expect(page.locator(".msg.assistant .text").last).to_have_text("".join(SLOW_HEAD))
        page.screenshot(path=str(path))
        fake.release()
        expect(page.locator("#send")).to_be_enabled()
        browser.close()


if __name__ == "__main__":
    save_screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/chat-page.png"))
