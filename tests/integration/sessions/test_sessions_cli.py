"""The session commands: `chat --session`, `sessions list | show | delete`, and their errors.

Continuing a chat runs as a real process against a local server (the request must carry the
saved turns); the `sessions` commands run through `main()` in this process on sessions written
directly, which keeps the property tests fast.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatscope.adapters.storage.codec import message_from_dict
from chatscope.adapters.storage.sql_history import SqlHistoryStore
from chatscope.cli.main import EXIT_ERROR, EXIT_USAGE, main
from chatscope.services.messages import (
    Block,
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)
from tests.support.cli import cli_env, openai_text_stream, run_cli
from tests.support.databases import migrated_database
from tests.support.message_strategies import messages, turns
from tests.support.replay_server import ScriptedResponse, replay_server

SESSION_NOTICE = re.compile(r"\[session ([0-9a-f]{32}): continue with --session\]")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The data directory `main()` uses, from a clean environment."""
    for name in ("CHATSCOPE_DATABASE_URL", "CHATSCOPE_HISTORY_BACKEND", "CHATSCOPE_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHATSCOPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data"


def save(
    data_dir: Path,
    session_id: str,
    *appended: list[Message],
    label: str = "",
    owner: str | None = None,
) -> None:
    """Write turns to a session the way a chat would (of `owner`: a server's tenant)."""

    async def write() -> None:
        async with migrated_database("sqlite", data_dir.parent) as database:
            store = SqlHistoryStore(database, session_id=session_id, owner=owner)
            if label:
                store.label(provider=label, model=f"{label}-model")
            for turn in appended:
                await store.append_turn(turn)

    asyncio.run(write())


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`main(args)` in this process: exit code, stdout, stderr."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- real processes -------------------------------------------------------------------------


async def test_a_continued_chat_sends_the_saved_turns(tmp_path: Path) -> None:
    """`chat` says which session it saved; `chat --session ID` sends that session's turns."""
    env = cli_env(tmp_path / "data", OPENAI_API_KEY="sk-local-test-key-1")
    with replay_server(
        ScriptedResponse.sse(openai_text_stream("Paris")),
        ScriptedResponse.sse(openai_text_stream("About 2 million")),
    ) as server:
        options = ("--provider", "openai", "--model", "m1", "--base-url", f"{server.url}/v1")
        first = await run_cli("chat", "Capital of France?", *options, cwd=tmp_path, env=env)
        assert first.returncode == 0, first.stderr
        notice = SESSION_NOTICE.search(first.stderr)
        assert notice, first.stderr
        second = await run_cli(
            "chat", "Population?", *options, "--session", notice.group(1), "--json",
            cwd=tmp_path, env=env,
        )  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["session_id"] == notice.group(1)
    sent = server.requests[1].json()["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "Capital of France?"),
        ("assistant", "Paris"),
        ("user", "Population?"),
    ]


@pytest.mark.parametrize(
    ("variables", "code", "expected"),
    [
        ({}, EXIT_ERROR, "no saved session 'feedbeef'"),
        ({"CHATSCOPE_HISTORY_BACKEND": "memory"}, EXIT_USAGE, "history_backend=database"),
    ],
)
async def test_continuing_a_session_that_cannot_be_found_fails_clearly(
    tmp_path: Path, variables: dict[str, str], code: int, expected: str
) -> None:
    """An unknown id, or saved sessions switched off, is one error line and no model call."""
    env = cli_env(tmp_path / "data", **variables)
    result = await run_cli("chat", "hello", "--session", "feedbeef", cwd=tmp_path, env=env)
    assert result.returncode == code
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("chatscope: error:")]
    assert expected in line


# --- sessions commands in this process ------------------------------------------------------


def test_list_show_and_delete(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A session is listed with its origin and turns, shown readably, then deleted."""
    call = ToolCallBlock.create("c1", "read_file", {"path": "a.txt"})
    save(
        data_dir,
        "s1",
        [Message.user("Read a.txt please"), Message(Role.ASSISTANT, (call,))],
        [
            Message(Role.TOOL, (ToolResultBlock("c1", "read_file", error="no such file"),)),
            Message(Role.ASSISTANT, (ThinkingBlock("it is missing"), TextBlock("It is missing."))),
        ],
        label="anthropic",
    )
    code, out, _ = run(capsys, "sessions", "list")
    assert code == 0
    header, row = out.splitlines()
    assert header.split()[:2] == ["ID", "UPDATED"]
    assert row.startswith("s1 ")
    assert "anthropic/anthropic-model" in row
    assert row.endswith("    2  Read a.txt please")

    code, out, _ = run(capsys, "sessions", "show", "s1")
    assert code == 0
    assert out.splitlines()[0].startswith("session s1  anthropic/anthropic-model  2 turns")
    assert "--- turn 1 ---\nuser:\n  Read a.txt please\nassistant:\n" in out
    assert '  [tool call] read_file {"path":"a.txt"}' in out
    assert "  [tool error] read_file: no such file" in out
    assert "  [thinking] it is missing\n  It is missing.\n" in out

    assert run(capsys, "sessions", "delete", "s1")[:2] == (0, "deleted session s1\n")
    assert run(capsys, "sessions", "list")[:2] == (0, "no saved sessions\n")
    code, _, err = run(capsys, "sessions", "show", "s1")
    assert (code, err.strip()) == (EXIT_ERROR, _unknown("s1"))


def test_the_cli_is_the_local_owner_and_never_sees_a_tenants_session(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A session a server saved for tenant acme is unknown to list, show, delete and chat."""
    save(data_dir, "tenant-session", [Message.user("acme only")], owner="acme")
    save(data_dir, "cli-session", [Message.user("local")])
    code, out, _ = run(capsys, "sessions", "list")
    assert code == 0
    assert "cli-session" in out
    assert "tenant-session" not in out
    for command in (("show", "tenant-session"), ("delete", "tenant-session")):
        code, _, err = run(capsys, "sessions", *command)
        assert (code, err.strip()) == (EXIT_ERROR, _unknown("tenant-session"))
    code, _, err = run(capsys, "chat", "hi", "--session", "tenant-session")
    assert (code, err.strip()) == (EXIT_ERROR, _unknown("tenant-session"))


def _unknown(session_id: str) -> str:
    return (
        f"chatscope: error: no saved session '{session_id}'; `chatscope sessions list` shows them"
    )


def test_sessions_commands_need_the_database_backend(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With history in memory every command refuses with a usage error and creates nothing."""
    monkeypatch.setenv("CHATSCOPE_HISTORY_BACKEND", "memory")
    for command in (("list",), ("show", "s1"), ("delete", "s1")):
        code, out, err = run(capsys, "sessions", *command)
        assert (code, out) == (EXIT_USAGE, "")
        assert "history_backend=database" in err
    assert not data_dir.exists()


def test_a_database_url_with_a_password_never_prints(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unusable database URL is a usage error that hides its password."""
    monkeypatch.setenv("CHATSCOPE_DATABASE_URL", "nosuch://chat:Pw9-hunter2@db.internal/chat")
    code, out, err = run(capsys, "sessions", "list")
    assert code == EXIT_USAGE
    assert "CHATSCOPE_DATABASE_URL" in err
    assert "Pw9-hunter2" not in out + err


@settings(max_examples=10)
@given(appended=st.lists(turns, min_size=1, max_size=3), extra=st.lists(messages, max_size=2))
def test_show_json_gives_back_every_message_exactly(
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    appended: list[list[Message]],
    extra: list[Message],
) -> None:
    """`sessions show --json` holds each stored message losslessly, with its turn number."""
    session_id = uuid.uuid4().hex
    turns_written = [*appended[:-1], appended[-1] + extra]
    save(data_dir, session_id, *turns_written)
    code, out, _ = run(capsys, "sessions", "show", session_id, "--json")
    assert code == 0
    document = json.loads(out)
    assert document["session"]["id"] == session_id
    assert document["session"]["turns"] == len(turns_written)
    shown = [message_from_dict(item) for item in document["messages"]]
    assert shown == [message for turn in turns_written for message in turn]
    expected_turns = [n + 1 for n, turn in enumerate(turns_written) for _ in turn]
    assert [item["turn"] for item in document["messages"]] == expected_turns


@settings(max_examples=6)
@given(sizes=st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=4))
def test_list_json_has_every_session_once_newest_first(
    data_dir: Path, capsys: pytest.CaptureFixture[str], sizes: list[int]
) -> None:
    """`sessions list --json` shows each saved session once, with its turns, newest first."""
    ids = [uuid.uuid4().hex for _ in sizes]
    try:
        for session_id, size in zip(ids, sizes, strict=True):
            save(data_dir, session_id, *([Message.user(f"{session_id} q")] for _ in range(size)))
        code, out, _ = run(capsys, "sessions", "list", "--json")
    finally:
        for session_id in ids:
            run(capsys, "sessions", "delete", session_id)
    listed = json.loads(out)
    assert code == 0
    assert [item["id"] for item in listed] == list(reversed(ids))
    assert [item["turns"] for item in listed] == list(reversed(sizes))
    assert all(item["title"] == f"{item['id']} q" for item in listed)


@settings(max_examples=10)
@given(appended=st.lists(turns, min_size=1, max_size=3))
def test_show_prints_every_block_of_every_turn(
    data_dir: Path, capsys: pytest.CaptureFixture[str], appended: list[list[Message]]
) -> None:
    """The readable transcript has a heading per turn and a line for every line of every block."""
    session_id = uuid.uuid4().hex
    save(data_dir, session_id, *appended)
    code, out, _ = run(capsys, "sessions", "show", session_id)
    assert code == 0
    for number, turn in enumerate(appended, start=1):
        assert f"\n--- turn {number} ---\n" in out
        for message in turn:
            for block in message.blocks:
                label, content = block_parts(block)
                assert all(line in out for part in (label, content) for line in part.splitlines())


def block_parts(block: Block) -> tuple[str, str]:
    """What `show` must print of a block: its label, and its content (line by line)."""
    match block:
        case TextBlock(text=text):
            return "", text
        case ThinkingBlock(text=text):
            return "[thinking", text
        case ToolCallBlock():
            return f"[tool call] {block.name}", block.arguments_json()
        case _:
            if block.error is not None:
                return f"[tool error] {block.name}", block.error
            return f"[tool result] {block.name}", block.result or ""
