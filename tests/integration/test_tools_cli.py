"""Tools on the command line: `tools list`, and approvals asked at the terminal or refused."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from chatscope.cli.tools import TerminalApprover
from chatscope.services.frozen import deep_freeze
from chatscope.services.tools.ports import ApprovalRequest, ToolContext
from tests.support.cli import CliResult, cli_env, openai_tool_call_stream, run_cli
from tests.support.mcp_servers import TOOLBOX
from tests.support.replay_server import ScriptedResponse, replay_server
from tests.support.streams import minimal_stream

CALLER = ToolContext(session_id="s", runtime_id="r", provider="openai", model="m")


async def _run(*args: str, cwd: Path, **variables: str) -> CliResult:
    return await run_cli(*args, cwd=cwd, env=cli_env(cwd / ".chatscope-data", **variables))


def _write_call_stream() -> bytes:
    """An OpenAI Chat Completions stream asking for one `write_file` call."""
    return openai_tool_call_stream("call_w", "write_file", {"path": "out.txt", "content": "hi"})


async def test_tools_list_names_every_tool_with_its_source(tmp_path: Path) -> None:
    """`tools list` shows the workspace tools, marks the one that asks first; `--json` too."""
    result = await _run("tools", "list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [
        "read_file",
        "list_directory",
        "glob",
        "search_file_content",
        "write_file",
    ]
    assert all(line.split()[1] == "workspace" for line in lines)
    assert lines[-1].endswith("(asks first)")
    as_json = await _run("tools", "list", "--json", cwd=tmp_path)
    rows = json.loads(as_json.stdout)
    assert {row["name"]: row["requires_approval"] for row in rows}["write_file"] is True
    assert rows[0]["parameters"]["required"] == ["path"]


async def test_tools_list_shows_a_configured_mcp_servers_tools_and_a_broken_one(
    tmp_path: Path,
) -> None:
    """An MCP server from the environment lists its namespaced tools; one that cannot start
    is named on stderr and the listing still works."""
    env = {
        "CHATSCOPE_MCP_SERVERS__box__COMMAND": sys.executable,
        "CHATSCOPE_MCP_SERVERS__box__ARGS": json.dumps([str(TOOLBOX)]),
        "CHATSCOPE_MCP_SERVERS__gone__COMMAND": str(tmp_path / "no-such-server"),
    }
    result = await _run("tools", "list", cwd=tmp_path, **env)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()}
    assert rows["box__echo"] == rows["box__whoami"] == "mcp:box"
    assert rows["read_file"] == "workspace"
    assert not any(name.startswith("gone__") for name in rows)
    assert "MCP server 'gone' is unavailable" in result.stderr
    assert "box__" not in result.stderr


async def test_a_write_is_refused_when_no_one_can_approve_it(tmp_path: Path) -> None:
    """Not on a terminal, `write_file` is refused, said on stderr, and nothing is written."""
    responses = (
        ScriptedResponse.sse(_write_call_stream()),
        ScriptedResponse.sse(minimal_stream("openai", "Could not write.")),
    )
    with replay_server(*responses) as server:
        result = await _run(
            "chat", "write it", "--provider", "openai", "--base-url", f"{server.url}/v1",
            cwd=tmp_path, OPENAI_API_KEY="sk-test-key-approve-1",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "[tool error] write_file needs approval and no one can approve it" in result.stderr
    assert not (tmp_path / "out.txt").exists()
    second = json.loads(server.requests[1].body)
    [tool_message] = [m for m in second["messages"] if m["role"] == "tool"]
    assert "write_file needs approval" in tool_message["content"]


async def test_settings_can_let_the_cli_write_without_asking(tmp_path: Path) -> None:
    """`CHATSCOPE_TOOLS__AUTO_APPROVE=["write_file"]` lets the write through."""
    responses = (
        ScriptedResponse.sse(_write_call_stream()),
        ScriptedResponse.sse(minimal_stream("openai", "Written.")),
    )
    env = {
        "OPENAI_API_KEY": "sk-test-key-approve-2",
        "CHATSCOPE_TOOLS__AUTO_APPROVE": '["write_file"]',
    }
    with replay_server(*responses) as server:
        result = await _run(
            "chat", "write it", "--provider", "openai", "--base-url", f"{server.url}/v1",
            cwd=tmp_path, **env,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.txt").read_text() == "hi"


@given(answer=st.sampled_from(["y", "Y", "yes", " YES\n", "n", "no", "", "yess", "ja"]) | st.text())
async def test_the_terminal_approver_asks_and_reads_the_answer(answer: str) -> None:
    """On a terminal the question goes to stderr with the call; only y or yes allows it."""
    err = io.StringIO()
    approver = TerminalApprover(err, ask=lambda _: answer)
    request = ApprovalRequest("write_file", deep_freeze({"path": "a.txt"}), CALLER)
    assert await approver(request) is (answer.strip().lower() in {"y", "yes"})
    assert 'write_file({"path": "a.txt"})' in err.getvalue()
    assert "Run it? [y/N]" in err.getvalue()


async def test_the_terminal_approver_refuses_at_end_of_input() -> None:
    """Ctrl-D at the question means no."""

    def closed(_: str) -> str:
        raise EOFError

    approver = TerminalApprover(io.StringIO(), ask=closed)
    request = ApprovalRequest("write_file", deep_freeze({}), CALLER)
    assert await approver(request) is False


def test_on_a_terminal_the_cli_asks_before_writing(tmp_path: Path) -> None:
    """In a pseudo-terminal, the CLI shows the call, waits for y, and then writes."""
    responses = (
        ScriptedResponse.sse(_write_call_stream()),
        ScriptedResponse.sse(minimal_stream("openai", "Written.")),
    )
    env = cli_env(tmp_path / ".data", OPENAI_API_KEY="sk-test-key-pty-1")
    with replay_server(*responses) as server:
        controller, terminal = pty.openpty()
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "chatscope", "chat", "write it", "--provider", "openai",
             "--base-url", f"{server.url}/v1"],
            cwd=tmp_path, env=env, stdin=terminal, stdout=terminal, stderr=terminal,
        )  # fmt: skip
        os.close(terminal)
        seen = b""
        try:
            while b"[y/N]" not in seen:
                ready, _, _ = select.select([controller], [], [], 30)
                assert ready, seen
                seen += os.read(controller, 4096)
            assert not (tmp_path / "out.txt").exists()
            os.write(controller, b"y\n")
            assert process.wait(timeout=30) == 0
        finally:
            process.kill()
            os.close(controller)
    assert b'write_file({"path": "out.txt", "content": "hi"})' in seen
    assert (tmp_path / "out.txt").read_text() == "hi"
