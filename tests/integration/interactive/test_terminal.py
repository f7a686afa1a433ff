"""The interactive chat, run as a real program in a pseudo-terminal against a local server.

A person types a prompt and sees the answer stream in, rendered (Markdown, no raw asterisks),
switches the model mid-conversation, stops a long answer with Ctrl-C (nothing of it saved),
and leaves with Ctrl-D; colours can be turned off.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.chat_server import SLOW_WORD, chat_server, last_prompt
from tests.support.cli import cli_env, run_cli
from tests.support.replay_server import ReplayServer
from tests.support.terminal import CTRL_D, Terminal

_SGR = re.compile(rb"\x1b\[([0-9;]*)m")
_COLOUR_CODES = {*range(30, 39), *range(40, 49), *range(90, 98), *range(100, 108)}


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with chat_server() as started:
        yield started


def _env(tmp_path: Path, server: ReplayServer, **variables: str) -> dict[str, str]:
    return cli_env(
        tmp_path / "data",
        CHATSCOPE_PROVIDER="openai",
        CHATSCOPE_PROVIDERS__OPENAI__BASE_URL=f"{server.url}/v1",
        OPENAI_API_KEY="sk-terminal-test-key-1",
        **variables,
    )


def _prompt_after(terminal: Terminal, position: int) -> int:
    """Wait for the prompt drawn after `position`."""
    return terminal.expect("> ", since=position)


def test_a_person_chats_switches_model_stops_an_answer_and_leaves(
    tmp_path: Path, server: ReplayServer
) -> None:
    """Prompt, streamed Markdown answer, `/model`, Ctrl-C of a slow answer, Ctrl-D."""
    with Terminal([], cwd=tmp_path, env=_env(tmp_path, server)) as terminal:
        seen = terminal.expect("> ")
        terminal.type("Say hello\r")
        seen = terminal.expect("Hello from gpt-4o-mini. You said: Say hello", since=seen)
        seen = terminal.expect("print('hi')", since=seen)
        seen = terminal.expect("openai · gpt-4o-mini · session", since=seen)
        assert "**Hello**" not in terminal.output  # rendered, not raw Markdown
        terminal.type("/model local-b\r")
        seen = terminal.expect("now openai · local-b; the conversation goes on", since=seen)
        _prompt_after(terminal, seen)
        terminal.type("And again\r")
        seen = terminal.expect("Hello from local-b. You said: And again", since=seen)
        seen = _prompt_after(terminal, terminal.expect("tokens", since=seen))
        terminal.type("Count slowly\r")
        seen = terminal.expect(f"{SLOW_WORD}3", since=seen)
        terminal.interrupt()
        seen = terminal.expect("stopped: nothing of this turn was saved", since=seen)
        _prompt_after(terminal, seen)
        terminal.type(CTRL_D)
        assert terminal.wait() == 0
    _, second, slow = server.requests
    assert [request.json()["model"] for request in server.requests] == [
        "gpt-4o-mini",
        "local-b",
        "local-b",
    ]
    sent = [message["content"] for message in second.json()["messages"]]
    assert "Say hello" in json.dumps(sent)  # the switch kept the conversation
    assert last_prompt(slow) == "Count slowly"
    assert "sk-terminal-test-key-1" not in terminal.output
    listing = await_sessions(tmp_path, server)
    [session] = listing
    assert session["turns"] == 2  # the stopped turn left nothing behind
    history = (tmp_path / "data" / "prompt-history").read_text(encoding="utf-8")
    assert "+Say hello" in history
    assert "+/model local-b" in history


def await_sessions(tmp_path: Path, server: ReplayServer) -> list[dict[str, object]]:
    """`chatscope sessions list --json` of the test's data directory."""
    result = asyncio.run(
        run_cli("sessions", "list", "--json", cwd=tmp_path, env=_env(tmp_path, server))
    )
    assert result.returncode == 0, result.stderr
    sessions: list[dict[str, object]] = json.loads(result.stdout)
    return sessions


def _colour_codes(raw: bytes) -> set[int]:
    """Every colour parameter of the SGR sequences in `raw`."""
    codes: set[int] = set()
    for match in _SGR.finditer(raw):
        params = [int(p) for p in match.group(1).split(b";") if p]
        codes |= {p for p in params if p in _COLOUR_CODES}
    return codes


@pytest.mark.parametrize(
    ("args", "variables"),
    [([], {"NO_COLOR": "1"}), (["--no-color"], {}), (["chat", "--no-color"], {})],
)
def test_no_color_and_the_no_color_flag_leave_colours_out(
    tmp_path: Path, server: ReplayServer, args: list[str], variables: dict[str, str]
) -> None:
    """With `NO_COLOR` or `--no-color` the prompt and the answer carry no colour codes."""
    with Terminal(args, cwd=tmp_path, env=_env(tmp_path, server, **variables)) as terminal:
        seen = terminal.expect("> ")
        terminal.type("Say hello\r")
        seen = terminal.expect("tokens", since=terminal.expect("print('hi')", since=seen))
        _prompt_after(terminal, seen)
        terminal.type("/exit\r")
        assert terminal.wait() == 0
    assert _colour_codes(terminal.raw) == set()


def test_a_broken_configuration_ends_the_chat_after_the_prompt(tmp_path: Path) -> None:
    """The settings are read behind the prompt: a bad one ends the chat with exit 2 and the
    one-line error, the terminal left usable."""
    env = cli_env(tmp_path / "data", CHATSCOPE_EPHEMERAL__CONTEXT_LIMIT="-5")
    with Terminal([], cwd=tmp_path, env=env) as terminal:
        terminal.expect("> ")
        assert terminal.wait() == 2
    assert "chatscope: error:" in terminal.output
    assert "ephemeral.context-limit" in terminal.output
    assert "Traceback" not in terminal.output


def test_colours_are_on_by_default(tmp_path: Path, server: ReplayServer) -> None:
    """Without either, the prompt is coloured (so the test above can fail)."""
    with Terminal([], cwd=tmp_path, env=_env(tmp_path, server)) as terminal:
        terminal.expect("> ")
        terminal.type(CTRL_D)
        assert terminal.wait() == 0
    assert _colour_codes(terminal.raw)
