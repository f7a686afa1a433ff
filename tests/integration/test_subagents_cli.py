"""`chatscope subagents list` and `chatscope task`, run as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatscope.cli.main import main
from tests.support.profiles import write_profile
from tests.support.replay_server import ScriptedResponse, replay_server
from tests.support.streams import minimal_stream

_OWN_PREFIXES = ("CHATSCOPE_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    return base | {
        "CHATSCOPE_PROFILES_DIR": str(tmp_path / "profiles"),
        "CHATSCOPE_HISTORY_BACKEND": "memory",
        "CHATSCOPE_DATA_DIR": str(tmp_path / "data"),
        **extra,
    }


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "chatscope", *args]


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        _command(*args),
        cwd=tmp_path,
        env=_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _researcher(tmp_path: Path) -> Path:
    return write_profile(
        tmp_path / "profiles",
        "researcher",
        name="researcher",
        description="looks around",
        provider="demo",
        model="chatscope-demo",
        allowed_tools=["list_directory", "read_file"],
    )


def test_subagents_list_shows_each_profile_and_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table and the JSON list name, provider, model, tools and source file."""
    source = _researcher(tmp_path)
    for name, value in _env(tmp_path).items():
        monkeypatch.setenv(name, value)
    for name in [n for n in os.environ if n.startswith(_OWN_PREFIXES) and n not in _env(tmp_path)]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    assert main(["subagents", "list"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["NAME", "PROVIDER", "MODEL", "TOOLS", "SOURCE"]
    assert row.split("  ")[0] == "researcher"
    assert "list_directory, read_file" in row
    assert row.endswith(str(source))
    assert main(["subagents", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {
            "name": "researcher",
            "description": "looks around",
            "provider": "demo",
            "model": "chatscope-demo",
            "allowed_tools": ["list_directory", "read_file"],
            "max_turns": 10,
            "timeout_seconds": 300.0,
            "source": str(source),
        }
    ]


def test_task_json_runs_the_subagent_offline(tmp_path: Path) -> None:
    """`task NAME GOAL --json` runs the demo subagent in its own scope and prints the result."""
    _researcher(tmp_path)
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    result = _run(tmp_path, "task", "researcher", "What is here?", "--json", "--max-turns", "3")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["terminate_reason"] == "GOAL"
    assert "You asked: 'What is here?'" in document["final_message"]
    assert "notes.txt" in document["final_message"]
    assert document["parent_runtime_id"] not in (None, document["runtime_id"])
    assert (document["subagent_name"], document["model_calls"]) == ("researcher", 2)
    assert (document["executor"], document["node_id"]) == ("local", None)


def test_task_prints_the_answer_and_a_summary(tmp_path: Path) -> None:
    """Without --json the answer goes to stdout and the outcome to stderr."""
    _researcher(tmp_path)
    result = _run(tmp_path, "task", "researcher", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[offline demo provider: no model was called]")
    assert "[task researcher: GOAL" in result.stderr


def test_a_subagent_on_another_provider_reads_its_own_key_variable(tmp_path: Path) -> None:
    """A profile on `anthropic` (the parent is on `demo`) sends the key of `api_key_env`."""
    with replay_server(ScriptedResponse.sse(minimal_stream("anthropic", "Reviewed."))) as server:
        write_profile(
            tmp_path / "profiles",
            "reviewer",
            provider="anthropic",
            model="local-model",
            base_url=server.url,
            api_key_env="REVIEWER_KEY",
        )
        result = _run(
            tmp_path, "task", "reviewer", "review", "--json", REVIEWER_KEY="sk-review-123456789"
        )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["final_message"], document["provider"]) == ("Reviewed.", "anthropic")
    [request] = server.requests
    assert request.headers["x-api-key"] == "sk-review-123456789"
    assert "sk-review-123456789" not in result.stdout + result.stderr


def _stalling_openai_stream() -> ScriptedResponse:
    body = minimal_stream("openai", "partial ")
    return ScriptedResponse.sse(body, chunk_delay=20.0)


def test_task_timeout_prints_the_partial_output(tmp_path: Path) -> None:
    """`--timeout` ends a stalled subagent with TIMEOUT, exit 1, and the text it had sent."""
    with replay_server(_stalling_openai_stream()) as server:
        write_profile(
            tmp_path / "profiles", "slow", provider="openai", model="m", base_url=f"{server.url}/v1"
        )
        started = time.monotonic()
        result = _run(
            tmp_path, "task", "slow", "go", "--json", "--timeout", "0.5", OPENAI_API_KEY="k"
        )
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert (document["terminate_reason"], document["final_message"]) == ("TIMEOUT", "partial ")
    assert time.monotonic() - started < 15


def test_ctrl_c_cancels_the_subagent_and_still_reports(tmp_path: Path) -> None:
    """SIGINT cancels the running subagent; the result says CANCELLED and the exit code is 130."""
    with replay_server(_stalling_openai_stream()) as server:
        write_profile(
            tmp_path / "profiles", "slow", provider="openai", model="m", base_url=f"{server.url}/v1"
        )
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            _command("task", "slow", "go", "--json"),
            cwd=tmp_path,
            env=_env(tmp_path, OPENAI_API_KEY="k"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    document = json.loads(out)
    assert document["terminate_reason"] == "CANCELLED"
    assert document["final_message"] in {"", "partial "}
    assert "Traceback" not in err


def test_profile_and_name_errors_are_one_line(tmp_path: Path) -> None:
    """A bad profile names file and key (exit 2); an unknown subagent lists the known ones."""
    _researcher(tmp_path)
    bad = write_profile(tmp_path / "profiles", "zz", provider="demo", model="m", max_turns=0)
    broken = _run(tmp_path, "subagents", "list")
    assert broken.returncode == 2
    assert broken.stderr.strip().startswith(f"chatscope: error: profile {bad}: key 'max_turns'")
    assert "Traceback" not in broken.stderr
    bad.unlink()
    unknown = _run(tmp_path, "task", "nobody", "go")
    assert unknown.returncode == 1
    assert "unknown subagent 'nobody'; available subagents: researcher" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
