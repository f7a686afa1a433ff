"""Client CPU per request as history grows: chatscope against raw httpx sending the same messages.

Run: `uv run python benchmarks/history_length.py [--sizes 0,10,100,1000,4000] [--rounds 15]
[--requests 5]`.
A local server in a separate process streams the same 20-chunk Chat Completions answer to both
clients; only the client process's CPU time is measured. For each number of prior turns (a turn
is a prompt and its answer; every fourth one also calls a tool and reads its result) each round
starts a conversation that already holds those turns, sends one request untimed (a long-lived
chat has sent one before), then times `--requests` more, each one new user message. chatscope
is `ChatSession.send` on a scope whose in-memory history holds the turns. The raw client keeps
the conversation as the wire's message dicts, appends the prompt and then the answer, and has
httpx serialize the whole message list for every request, as a hand-written client would; the
bodies of both are checked to be the same before anything is timed. Prints the median CPU
microseconds per request of each and the median of the paired ratios (target: chatscope <= 1.25x
raw at 1,000 prior turns, <= 1.3x at 4,000).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from turn_overhead import raw_completion

from chatscope.config.settings import ExplicitSettings
from chatscope.containers import ApplicationContainer
from chatscope.services.chat.session import ChatSession
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.messages import Message, Role, TextBlock, ToolCallBlock, ToolResultBlock
from chatscope.services.runtime.scopes import ScopeRequest

PROMPT = "Say twenty tokens."
MODEL = "bench-model"
TOOL_EVERY = 4  # every fourth prior turn calls a tool
Request = Callable[[], Awaitable[str]]


def prior_turns(count: int) -> tuple[Message, ...]:
    """`count` turns as chatscope stores them; every `TOOL_EVERY`th one makes a tool call."""
    messages: list[Message] = []
    for index in range(count):
        messages.append(Message.user(f"Question {index}: what happened in chapter {index}?"))
        if index % TOOL_EVERY == TOOL_EVERY - 1:
            call = ToolCallBlock.create(f"call_{index}", "lookup", {"chapter": index})
            messages.append(Message(Role.ASSISTANT, (TextBlock("Let me look."), call)))
            result = ToolResultBlock(call.id, "lookup", result=f"Chapter {index}: a storm.")
            messages.append(Message(Role.TOOL, (result,)))
        messages.append(Message(Role.ASSISTANT, (TextBlock(f"In chapter {index}, a storm."),)))
    return tuple(messages)


def wire_messages(history: tuple[Message, ...]) -> list[dict[str, Any]]:
    """The raw client's own copy of the conversation, written by hand in the wire format."""
    wire: list[dict[str, Any]] = []
    for message in history:
        if message.role is Role.USER:
            wire.append({"role": "user", "content": message.text})
        elif message.role is Role.TOOL:
            wire += [
                {"role": "tool", "tool_call_id": result.call_id, "content": result.content}
                for result in message.tool_results
            ]
        else:
            wire.append(_wire_assistant(message))
    return wire


def _wire_assistant(message: Message) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": "assistant", "content": message.text}
    if message.tool_calls:
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json()},
            }
            for call in message.tool_calls
        ]
    return wire


def raw_conversation(http: httpx.AsyncClient, url: str, prior: list[dict[str, Any]]) -> Request:
    """A hand-written client continuing a conversation whose wire messages are `prior`."""
    messages = list(prior)

    async def request() -> str:
        messages.append({"role": "user", "content": PROMPT})
        answer = await raw_completion(http, url, messages, MODEL)
        messages.append({"role": "assistant", "content": answer})
        return answer

    return request


def chatscope_conversation(app: ApplicationContainer, prior: tuple[Message, ...]) -> Request:
    """`ChatSession.send` on a fresh scope whose in-memory history holds `prior`."""
    request = ScopeRequest.create(
        model=MODEL,
        allowed_tools=(),
        history=InMemoryHistory(prior),
        # Compression is looked at before every turn, as always, but never due.
        ephemeral_overrides={"context-limit": 10**9},
    )
    chat: ChatSession = app.runtime.chat_session(context=app.runtime.scopes().foreground(request))

    async def send() -> str:
        return (await chat.send(PROMPT)).text

    return send


def application(root: Path, url: str) -> ApplicationContainer:
    """chatscope on the local server, its workspace `root`, histories in memory."""
    settings = ExplicitSettings(
        workspace=root,
        provider="openai",
        providers={"openai": {"base_url": url, "auth_required": False}},
    )
    return ApplicationContainer(settings=settings, environ={})


async def check_same_bodies(
    app: ApplicationContainer, http: httpx.AsyncClient, url: str, prior: tuple[Message, ...]
) -> None:
    """Both clients send byte-for-byte the same messages, request after request."""
    sent: dict[str, list[Any]] = {"raw": [], "chatscope": []}

    def recorder(name: str) -> Callable[[httpx.Request], Awaitable[None]]:
        async def record(request: httpx.Request) -> None:
            sent[name].append(json.loads(request.content)["messages"])

        return record

    chatscope_http = app.model_providers.http_client()
    http.event_hooks["request"] = [recorder("raw")]
    chatscope_http.event_hooks["request"] = [recorder("chatscope")]
    try:
        raw, mine = (
            raw_conversation(http, url, wire_messages(prior)),
            chatscope_conversation(app, prior),
        )
        for _ in range(3):
            assert await raw() == await mine()
    finally:
        http.event_hooks["request"] = []
        chatscope_http.event_hooks["request"] = []
    assert sent["raw"] == sent["chatscope"], "the two clients sent different messages"


async def cpu_us_per_request(request: Request, count: int) -> float:
    """Mean client CPU microseconds of `count` sequential requests."""
    started = time.process_time()
    for _ in range(count):
        await request()
    return (time.process_time() - started) / count * 1e6


async def measure_size(
    app: ApplicationContainer, http: httpx.AsyncClient, url: str, turns: int, args: Any
) -> dict[str, float]:
    """Paired rounds at `turns` prior turns: medians of each client and of the per-round ratio.

    Adjacent rounds see the same machine state, so the per-round ratio cancels most of the
    drift of a shared virtual machine; its median is the figure to quote.
    """
    prior = prior_turns(turns)
    prior_wire = wire_messages(prior)
    await check_same_bodies(app, http, url, prior)
    samples: dict[str, list[float]] = {"raw": [], "chatscope": []}
    for _ in range(args.rounds):
        conversations = {
            "raw": raw_conversation(http, url, prior_wire),
            "chatscope": chatscope_conversation(app, prior),
        }
        for name, conversation in conversations.items():
            await conversation()  # the request before: a conversation is under way
            samples[name].append(await cpu_us_per_request(conversation, args.requests))
    paired = zip(samples["chatscope"], samples["raw"], strict=True)
    return {
        "raw": statistics.median(samples["raw"]),
        "chatscope": statistics.median(samples["chatscope"]),
        "ratio": statistics.median(mine / base for mine, base in paired),
    }


async def measure(url: str, args: Any) -> dict[int, dict[str, float]]:
    """Every history length in turn, on one application and one raw client."""
    with tempfile.TemporaryDirectory() as root:
        app = application(Path(root), url)
        await app.init_resources()  # type: ignore[misc]
        try:
            async with httpx.AsyncClient() as http:
                return {
                    turns: await measure_size(app, http, url, turns, args) for turns in args.sizes
                }
        finally:
            await app.shutdown_resources()  # type: ignore[misc]


def main() -> None:
    """Start the server, measure, print a table, stop the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[0, 10, 100, 1000, 4000],
        help="prior turns, comma-separated",
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=5, help="timed requests per round")
    args = parser.parse_args()
    server_script = Path(__file__).with_name("_sse_server.py")
    server = subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, str(server_script)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        results = asyncio.run(measure(f"http://127.0.0.1:{port}/v1", args))
    finally:
        server.kill()
        server.wait()
    print("prior turns   raw httpx us   chatscope us   chatscope/raw (median of paired rounds)")
    for turns, figures in results.items():
        print(
            f"{turns:11d}   {figures['raw']:12.1f}   {figures['chatscope']:12.1f}"
            f"   {figures['ratio']:.2f}x"
        )
    print("CPU per request (median); targets: <= 1.25x raw at 1,000 prior turns, <= 1.3x at 4,000")


if __name__ == "__main__":
    main()
