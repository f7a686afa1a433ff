"""The CLI's text of a turn with tool calls: what the model said before the calls and after them
stays apart (a blank line between), streamed or in `--json`."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from chatscope.cli.display import TurnDisplay
from chatscope.services.events import ChatEvent, TextDelta, ToolCallEvent, ToolResultEvent
from chatscope.services.messages import ToolCallBlock, ToolResultBlock
from tests.support.cli import cli_env, openai_text_stream, run_cli
from tests.support.replay_server import ScriptedResponse, replay_server


def text_then_call(text: str) -> bytes:
    """A Chat Completions stream saying `text`, then asking for `list_directory`."""
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "list_directory", "arguments": '{"path": "."}'},
    }
    chunks: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


async def chat(tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    env = cli_env(tmp_path / "data", OPENAI_API_KEY="sk-local-test-key-1")
    with replay_server(
        ScriptedResponse.sse(text_then_call("Let me look.")),
        ScriptedResponse.sse(openai_text_stream("Here ", "it is.")),
    ) as server:
        result = await run_cli(
            "chat", "What is here?", "--provider", "openai", "--model", "m",
            "--base-url", f"{server.url}/v1", *extra, cwd=tmp_path, env=env,
        )  # fmt: skip
    return result.returncode, result.stdout, result.stderr


async def test_streamed_text_before_and_after_tool_calls_is_not_glued(tmp_path: Path) -> None:
    """The answer after the calls starts a new paragraph on stdout."""
    code, stdout, stderr = await chat(tmp_path)
    assert code == 0, stderr
    assert stdout == "Let me look.\n\nHere it is.\n"
    assert "[tool] list_directory" in stderr


async def test_json_text_before_and_after_tool_calls_is_not_glued(tmp_path: Path) -> None:
    """`--json` holds the same text as the stream showed."""
    code, stdout, stderr = await chat(tmp_path, "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["text"] == "Let me look.\n\nHere it is."


CALL = ToolCallBlock.create("c1", "list_directory", {"path": "."})
RESULT = ToolResultBlock("c1", "list_directory", result="a.txt")
pieces = st.lists(st.text(alphabet="ab \n", min_size=1, max_size=6), max_size=3)


def paragraphs(texts: list[str]) -> str:
    """`texts` joined so that each next one starts after a blank line, adding no more newlines
    than that needs."""
    joined = ""
    for text in texts:
        if joined:
            joined += "" if joined.endswith("\n\n") else "\n" if joined.endswith("\n") else "\n\n"
        joined += text
    return joined


@given(replies=st.lists(pieces, min_size=1, max_size=5))
def test_replies_separated_by_tool_calls_are_shown_apart(replies: list[list[str]]) -> None:
    """Whatever the model says around its calls, each reply's text is shown whole, in order,
    and a reply never runs on into the next: a blank line lies between them."""
    events: list[ChatEvent] = []
    for index, reply in enumerate(replies):
        if index:
            events += [ToolCallEvent(CALL), ToolResultEvent(RESULT)]
        events += [TextDelta(piece) for piece in reply]
    out, err = io.StringIO(), io.StringIO()
    display = TurnDisplay(out, err)
    for event in events:
        display.show(event)
    shown = [text for text in ("".join(reply) for reply in replies) if text]
    assert out.getvalue() == display.text == paragraphs(shown)
