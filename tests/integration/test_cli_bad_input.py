"""Bad input to the CLI: one clear error line and a non-zero exit, never a traceback or retries.

A setting that is not JSON, an env file that is not UTF-8, a key no HTTP header can carry, an
endpoint URL that is not one: each is a configuration error, reported at once (exit 2), not a
network failure retried for minutes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chatscope.cli.main import EXIT_USAGE
from tests.support.cli import cli_env, run_cli
from tests.support.replay_server import replay_server

FAST_RETRIES = {"CHATSCOPE_RETRY__INITIAL_DELAY": "0.01", "CHATSCOPE_RETRY__MAX_DELAY": "0.01"}
OPENAI = ("chat", "hi", "--provider", "openai", "--model", "m")
KEYED = {"OPENAI_API_KEY": "sk-local-test-key-1"}
SETTING_URL = "CHATSCOPE_PROVIDERS__OPENAI__BASE_URL"


def error_line(stderr: str) -> str:
    """The one line stderr holds: `chatscope: error: ...`."""
    assert "Traceback" not in stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith("chatscope: error:"), stderr
    return line


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (("config", "show"), {"CHATSCOPE_HTTP": "notjson"}, "CHATSCOPE_HTTP"),
        (("config", "show", "--env-file", "latin1.env"), {}, "not UTF-8"),
        (OPENAI, {SETTING_URL: "http://127.0.0.1:99999/v1", **KEYED}, "99999"),
        (OPENAI, {SETTING_URL: "http://[::1", **KEYED}, "not a valid URL"),
        ((*OPENAI, "--base-url", "http://127.0.0.1:99999/v1"), KEYED, "--base-url"),
        ((*OPENAI, "--base-url", "http://[::1"), KEYED, "--base-url"),
    ],
    ids=["section-not-json", "env-file-not-utf8", "port", "ipv6", "flag-port", "flag-ipv6"],
)
async def test_bad_settings_are_one_line_without_traceback(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    """A broken setting, env file or endpoint names itself in one line; exit code 2."""
    (tmp_path / "latin1.env").write_bytes("CHATSCOPE_MODEL=caf\u00e9\n".encode("latin-1"))
    result = await run_cli(*args, cwd=tmp_path, env=cli_env(tmp_path / "data", **env))
    assert result.returncode == EXIT_USAGE
    assert expected in error_line(result.stderr)


@pytest.mark.parametrize(
    ("base_url", "key", "expected"),
    [
        ("127.0.0.1:{port}/v1", "sk-local-test-key-1", "--base-url"),
        ("ftp://127.0.0.1:{port}/v1", "sk-local-test-key-1", "--base-url"),
        ("http://127.0.0.1:{port}/v1", "sk-local\r\ntest-key-1", "control character"),
        ("http://127.0.0.1:{port}/v1", "sk-local-t\u00e9st-key-1", "non-ASCII"),
    ],
    ids=["no-scheme", "ftp", "key-with-crlf", "key-non-ascii"],
)
async def test_local_mistakes_are_reported_at_once_and_never_retried(
    tmp_path: Path, base_url: str, key: str, expected: str
) -> None:
    """Nothing is sent and nothing retried: a configuration error, not a network failure."""
    with replay_server() as server:
        port = server.url.rsplit(":", 1)[1]
        env = cli_env(tmp_path / "data", OPENAI_API_KEY=key, **FAST_RETRIES)
        result = await run_cli(
            *OPENAI, "--base-url", base_url.format(port=port), cwd=tmp_path, env=env
        )
    assert result.returncode == EXIT_USAGE
    line = error_line(result.stderr)
    assert expected in line
    assert "sk-local" not in line
    assert server.requests == []
