"""`chatscope chat --output-schema FILE`, run as a real process: the validated JSON printed (or
under `output` with `--json`), and clear errors for a bad schema file or an answer that never
validates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatscope.adapters.providers.demo import OFFLINE_LABEL
from tests.support.cli import cli_env, openai_text_stream, run_cli
from tests.support.replay_server import ScriptedResponse, replay_server

SCHEMA = {
    "title": "Summary",
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "points": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["title", "points"],
}


def _schema_file(directory: Path, content: str | None = None) -> Path:
    path = directory / "summary.schema.json"
    path.write_text(json.dumps(SCHEMA) if content is None else content, encoding="utf-8")
    return path


async def test_the_demo_provider_prints_the_validated_json(tmp_path: Path) -> None:
    """Offline, the answer is schema-shaped JSON, printed pretty on stdout."""
    schema = _schema_file(tmp_path)
    env = cli_env(tmp_path / "data")
    result = await run_cli(
        "chat", "Sum it up", "--output-schema", str(schema), cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"title": OFFLINE_LABEL, "points": [OFFLINE_LABEL]}
    assert result.stdout.startswith("{\n  ")
    assert "[tool] list_directory" in result.stderr


async def test_json_mode_puts_the_output_under_its_own_key(tmp_path: Path) -> None:
    """With `--json` the usual document gains `output`; the text is still there."""
    schema = _schema_file(tmp_path)
    answer = {"title": "T", "points": ["a", "b"]}
    stream = openai_text_stream(json.dumps(answer)[:12], json.dumps(answer)[12:])
    with replay_server(ScriptedResponse.sse(stream)) as server:
        result = await run_cli(
            "chat", "Sum it up", "--provider", "openai", "--model", "local-model",
            "--base-url", f"{server.url}/v1", "--output-schema", str(schema), "--json",
            cwd=tmp_path, env=cli_env(tmp_path / "data", OPENAI_API_KEY="sk-local-test-key-1"),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["output"] == answer
    assert json.loads(document["text"]) == answer
    [request] = server.requests
    response_format = request.json()["response_format"]
    assert response_format["json_schema"]["name"] == "Summary"
    assert response_format["json_schema"]["strict"] is True


async def test_an_answer_that_never_validates_exits_1_with_one_line(tmp_path: Path) -> None:
    """Two answers that are not the schema's JSON: exit 1, the problem, no traceback."""
    schema = _schema_file(tmp_path)
    replies = [ScriptedResponse.sse(openai_text_stream("no JSON here")) for _ in range(2)]
    with replay_server(*replies) as server:
        result = await run_cli(
            "chat", "Sum it up", "--provider", "openai", "--model", "local-model",
            "--base-url", f"{server.url}/v1", "--output-schema", str(schema),
            cwd=tmp_path, env=cli_env(tmp_path / "data", OPENAI_API_KEY="sk-local-test-key-1"),
        )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("chatscope: error:")]
    assert "did not match output schema 'Summary'" in line
    assert "not valid JSON" in line
    assert len(server.requests) == 2
    assert "Answer again with only JSON" in json.dumps(server.requests[1].json()["messages"])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read output schema"),
        ("{broken", "is not JSON"),
        ("[1]", "is not a JSON object"),
        ('{"type": "nonsense"}', "not a valid JSON schema"),
    ],
)
async def test_a_bad_schema_file_exits_2_without_a_traceback(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    """A missing, unreadable or invalid schema file is a usage error naming the file."""
    path = tmp_path / "missing.json" if content is None else _schema_file(tmp_path, content)
    env = cli_env(tmp_path / "data")
    result = await run_cli("chat", "x", "--output-schema", str(path), cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("chatscope: error:")]
    assert expected in line
    assert str(path) in line
