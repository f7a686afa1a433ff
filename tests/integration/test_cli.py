"""The command line, run as a real process: streaming, --json, config show, clean errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatscope.config.presets import PRESETS
from tests.support.replay_server import ScriptedResponse, replay_server
from tests.support.streams import minimal_stream


def _run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    own = ("CHATSCOPE_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    # Saved sessions go to the test's directory, never the user's data directory.
    base["CHATSCOPE_DATA_DIR"] = str(cwd / ".chatscope-data")
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "chatscope", *args],
        cwd=cwd,
        env=base | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_chat_streams_the_demo_answer_and_calls_a_tool(tmp_path: Path) -> None:
    """With nothing configured the demo provider answers, offline-labelled, after a tool call."""
    (tmp_path / "notes.txt").write_text("hello")
    result = _run("chat", "What is in here?", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[offline demo provider: no model was called]" in result.stdout
    assert "notes.txt" in result.stdout
    assert "[tool] list_directory" in result.stderr


def test_chat_json_prints_one_object_with_the_documented_fields(tmp_path: Path) -> None:
    """`--json` prints a single JSON document with text, tool calls, usage, cost and ids."""
    result = _run("chat", "hi", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {
        "text",
        "tool_calls",
        "usage",
        "cost",
        "provider",
        "model",
        "runtime_id",
        "session_id",
        "finish_reason",
        "answered_by",
    }
    assert document["answered_by"] == {
        "provider": "demo",
        "model": "chatscope-demo",
        "member": None,
    }
    assert document["tool_calls"] == [{"name": "list_directory", "arguments": {"path": "."}}]
    assert set(document["usage"]) == {"input_tokens", "output_tokens"}
    assert (document["provider"], document["finish_reason"]) == ("demo", "stop")
    assert document["cost"] is None  # the demo model is in no price table: unknown, not zero


def test_config_show_redacts_secrets(tmp_path: Path) -> None:
    """`config show` prints effective settings and never a key."""
    env = {"CHATSCOPE_PROVIDERS__ANTHROPIC__API_KEY": "sk-ant-supersecret-123456"}
    result = _run("config", "show", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["providers"]["anthropic"]["api_key"] == "**********"
    assert "supersecret" not in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (("chat", "x"), {"CHATSCOPE_EPHEMERAL__CONTEXT_LIMIT": "-5"}, "ephemeral.context-limit"),
        (("chat", "x", "--provider", "openai"), {}, "no API key for provider 'openai'"),
        (("chat", "x", "--env-file", "missing.env"), {}, "does not exist"),
    ],
)
def test_errors_are_one_line_without_traceback(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    """Configuration and runtime errors print one clear line and exit non-zero."""
    result = _run(*args, cwd=tmp_path, env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("chatscope: error:")]
    assert expected in line


@pytest.mark.parametrize(
    ("provider", "suffix", "key_variable", "key_header", "path"),
    [
        ("openai", "/v1", "OPENAI_API_KEY", "authorization", "/v1/chat/completions"),
        ("anthropic", "", "ANTHROPIC_API_KEY", "x-api-key", "/v1/messages"),
        (
            "gemini",
            "/v1beta",
            "GEMINI_API_KEY",
            "x-goog-api-key",
            "/v1beta/models/local-model:streamGenerateContent?alt=sse",
        ),
    ],
)
def test_chat_against_a_local_server(
    tmp_path: Path, provider: str, suffix: str, key_variable: str, key_header: str, path: str
) -> None:
    """`--provider X --base-url` talks to a local server with the key from X's variable."""
    with replay_server(ScriptedResponse.sse(minimal_stream(provider, "Hi from local"))) as server:
        result = _run(
            "chat", "hello", "--provider", provider, "--model", "local-model",
            "--base-url", f"{server.url}{suffix}", "--json",
            cwd=tmp_path, env={key_variable: "sk-local-test-key-1"},
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["text"], document["model"]) == ("Hi from local", "local-model")
    assert (document["provider"], document["finish_reason"]) == (provider, "stop")
    assert document["usage"] == {"input_tokens": 3, "output_tokens": 2}
    assert document["cost"] is None  # a local server has no known price
    [request] = server.requests
    assert request.path == path
    assert request.headers[key_header].removeprefix("Bearer ") == "sk-local-test-key-1"
    assert "sk-local-test-key-1" not in result.stderr + result.stdout


def test_chat_with_a_preset_sends_the_preset_key_and_never_the_openai_one(tmp_path: Path) -> None:
    """`--preset openrouter` (pointed at a local server) sends $OPENROUTER_API_KEY only."""
    with replay_server(ScriptedResponse.sse(minimal_stream("openai", "Hi via preset"))) as server:
        result = _run(
            "chat", "hello", "--preset", "openrouter", "--base-url", f"{server.url}/v1", "--json",
            cwd=tmp_path,
            env={"OPENROUTER_API_KEY": "sk-or-preset-key-1", "OPENAI_API_KEY": "sk-openai-key-2"},
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["text"], document["model"]) == ("Hi via preset", "openai/gpt-4o-mini")
    [request] = server.requests
    assert request.headers["authorization"] == "Bearer sk-or-preset-key-1"


def test_presets_lists_every_preset_with_its_key_variable(tmp_path: Path) -> None:
    """One line per preset, naming the variable its key is read from."""
    result = _run("presets", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(PRESETS)
    assert any("OPENROUTER_API_KEY" in line for line in lines)
