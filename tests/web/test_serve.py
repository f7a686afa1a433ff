"""`chatscope serve` as a real process on 127.0.0.1, driven by the official `openai` SDK; its
key hashing, its refusal to expose a keyless server, SIGTERM, and several workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest

from chatscope.adapters.storage.engine import SQLITE_FILE_NAME
from chatscope.web import hash_key
from tests.support.cli import cli_env, openai_text_stream
from tests.support.replay_server import ScriptedResponse, replay_server
from tests.support.web import parse_sse, serve

KEY = "sk-chatscope-tenant-acme-0123456789"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The server's workspace, with a file the demo model's tool call will list."""
    path = tmp_path / "work"
    path.mkdir()
    (path / "notes.txt").write_text("hello")
    return path


def keyed_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """A clean environment with one tenant, acme, holding KEY."""
    keys = json.dumps({"acme": hash_key(KEY)})
    return cli_env(tmp_path / "data", CHATSCOPE_SERVER__API_KEYS=keys, **variables)


def test_the_openai_sdk_talks_to_chatscope_serve(tmp_path: Path, workdir: Path) -> None:
    """Models, a completion answered whole and one streamed, both running the demo model's
    tool call on the server; a wrong key and an unknown model are the SDK's own errors."""
    with (
        serve(workdir, keyed_env(tmp_path)) as served,
        openai.OpenAI(base_url=f"{served.url}/v1", api_key=KEY, max_retries=0) as client,
        openai.OpenAI(base_url=f"{served.url}/v1", api_key="sk-wrong", max_retries=0) as wrong,
    ):
        ids = [model.id for model in client.models.list()]
        messages: list[openai.types.chat.ChatCompletionMessageParam] = [
            {"role": "user", "content": "What is in this folder?"}
        ]
        whole = client.chat.completions.create(model="demo/chatscope-demo", messages=messages)
        stream = client.chat.completions.create(model="demo", messages=messages, stream=True)
        streamed = "".join(
            chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices
        )
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
        with pytest.raises(openai.NotFoundError, match="no model 'no-such-model'") as missing:
            client.chat.completions.create(model="no-such-model", messages=messages)
        assert missing.value.code == "model_not_found"
        assert served.stop() == 0
    assert "demo/chatscope-demo" in ids
    content = whole.choices[0].message.content or ""
    assert "I called list_directory" in content
    assert "notes.txt" in content
    assert whole.choices[0].finish_reason == "stop"
    assert whole.usage is not None
    assert whole.usage.total_tokens > 0
    assert streamed == content
    assert KEY not in served.log.read_text()


def test_sigterm_lets_a_streaming_turn_finish_and_store_it_whole(
    tmp_path: Path, workdir: Path
) -> None:
    """SIGTERM mid-answer: the answer streams to its end, the turn is saved, the process exits
    0; the tenant's provider key went to the provider, and nowhere else."""
    provider_key = "tenant-provider-key-777"
    slow = ScriptedResponse.sse(openai_text_stream(*(f"w{n} " for n in range(8))), chunk_delay=0.2)
    with replay_server(slow) as provider:
        env = keyed_env(tmp_path, CHATSCOPE_PROVIDERS__OPENAI__BASE_URL=f"{provider.url}/v1")
        with serve(workdir, env) as served:
            headers = {"Authorization": f"Bearer {KEY}", "X-Provider-Key": provider_key}
            with httpx.Client(base_url=served.url, headers=headers, timeout=30) as http:
                session = http.post("/v1/sessions", json={"model": "openai/m"}).json()["id"]
                path = f"/v1/sessions/{session}/messages"
                text = ""
                with http.stream("POST", path, json={"content": "count"}) as response:
                    for line in response.iter_lines():
                        text += line + "\n"
                        if line.startswith("data:") and served.process.poll() is None:
                            served.process.send_signal(signal.SIGTERM)
            code = served.process.wait(timeout=30)
        [request] = provider.requests
    events = parse_sse(text)
    assert code == 0
    assert events[-1][0] == "done"
    assert events[-1][1]["text"] == "".join(f"w{n} " for n in range(8))
    assert request.headers["authorization"] == f"Bearer {provider_key}"
    assert provider_key not in served.log.read_text()
    database = (tmp_path / "data" / SQLITE_FILE_NAME).read_bytes()
    assert b"w7" in database
    assert provider_key.encode() not in database


def test_several_workers_each_build_their_own_app(tmp_path: Path, workdir: Path) -> None:
    """`--workers 2` serves through the factory; completions answer; SIGTERM stops it."""
    with (
        serve(workdir, keyed_env(tmp_path), "--workers", "2") as served,
        openai.OpenAI(base_url=f"{served.url}/v1", api_key=KEY, max_retries=0) as client,
    ):
        answers = [
            client.chat.completions.create(
                model="demo", messages=[{"role": "user", "content": f"hello {n}"}]
            )
            for n in range(4)
        ]
        assert served.stop() == 0
    assert all("I called list_directory" in (a.choices[0].message.content or "") for a in answers)
    assert "2 workers" in served.log.read_text()


def run_cli(*args: str, stdin: str = "", env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m chatscope ARGS` to completion."""
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "chatscope", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_hash_key_prints_the_form_api_keys_takes(tmp_path: Path) -> None:
    """The key is read from stdin; the hash printed is what the server compares against."""
    done = run_cli("serve", "--hash-key", stdin=f"{KEY}\n", env=cli_env(tmp_path))
    assert (done.returncode, done.stdout) == (0, hash_key(KEY) + "\n")
    assert KEY not in done.stdout + done.stderr
    empty = run_cli("serve", "--hash-key", stdin="\n", env=cli_env(tmp_path))
    assert empty.returncode == 2
    assert "empty" in empty.stderr


def test_a_keyless_server_refuses_to_listen_beyond_loopback(tmp_path: Path) -> None:
    """Without API keys, a non-loopback --host is a clear error and nothing listens (which
    hosts count as loopback: tests/property/test_web_turn_properties.py)."""
    done = run_cli("serve", "--host", "0.0.0.0", env=cli_env(tmp_path))  # noqa: S104
    assert done.returncode == 2
    assert "refusing to serve on '0.0.0.0' without API keys" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_keyless_server_says_so_when_it_starts(tmp_path: Path, workdir: Path) -> None:
    """The start-up line tells that one local tenant is served, on loopback only."""
    with serve(workdir, cli_env(tmp_path / "data")) as served:
        assert served.stop() == 0
    assert "no API keys configured" in served.log.read_text()
    assert os.path.exists(tmp_path / "data" / SQLITE_FILE_NAME)
