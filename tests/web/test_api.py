"""The HTTP API over ASGI: health, models, Chat Completions, error bodies, the static page."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from pydantic import SecretStr
from structlog.testing import capture_logs

from chatscope.errors import ServerError
from chatscope.services.events import FinishEvent, FinishReason, TextDelta
from chatscope.services.messages import Role
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.testing import FunctionProvider, ScriptedReply, build_test_app
from chatscope.web import create_app
from chatscope.web.app import static_directory
from tests.support.databases import database_for
from tests.support.profiles import write_profile
from tests.support.web import parse_sse, serving

CHAT = "/v1/chat/completions"


def echo(invocation: ModelInvocation) -> ScriptedReply:
    """Answer with what the call was given: model, system prompt, history roles and texts."""
    history = [f"{m.role}:{m.text}" for m in invocation.history]
    return ScriptedReply(text=f"{invocation.model}|{invocation.system_prompt}|{history}", chunks=3)


@pytest.fixture
def provider() -> FunctionProvider:
    """A fake OpenAI that echoes its invocation."""
    return FunctionProvider(echo, name="openai")


@pytest.fixture
async def client(tmp_path: Path, provider: FunctionProvider) -> AsyncIterator[httpx.AsyncClient]:
    """The app over a test container (history in memory, no API keys)."""
    async with serving(build_test_app(provider, workspace=tmp_path)) as http:
        yield http


def ask(text: str, **fields: Any) -> dict[str, Any]:
    """A Chat Completions body with one user message."""
    return {"model": "openai/gpt-test", "messages": [{"role": "user", "content": text}]} | fields


def assert_error_shape(response: httpx.Response, status: int, code: str | None = None) -> None:
    """The response is an OpenAI-style error body with this status (and code)."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code"}
    assert error["message"]
    assert "Traceback" not in response.text
    if code is not None:
        assert error["code"] == code


# --- health ---------------------------------------------------------------------------------


async def test_healthz_and_readyz_answer_on_the_memory_backend(client: httpx.AsyncClient) -> None:
    """The process is up, and with history in memory it is ready."""
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert (ready.status_code, ready.json()["status"]) == (200, "ok")


async def test_readyz_asks_the_database(tmp_path: Path) -> None:
    """With the database backend, readiness is the database answering SELECT 1."""
    app = build_test_app(workspace=tmp_path, history_backend="database", data_dir=tmp_path / "d")
    async with serving(app) as http:
        assert (await http.get("/readyz")).json() == {"status": "ok", "database": "ok"}


async def test_readyz_is_503_when_the_database_does_not_answer(tmp_path: Path) -> None:
    """A database that cannot be reached makes the server not ready, with an error body."""
    container = build_test_app(
        workspace=tmp_path, history_backend="database", data_dir=tmp_path / "d"
    )
    unreachable = database_for(f"sqlite:///{tmp_path}/missing/directory/chatscope.db")
    async with serving(container) as http:
        with container.storage.database.override(providers.Object(unreachable)):
            assert_error_shape(await http.get("/readyz"), 503, "database_unavailable")
        assert (await http.get("/readyz")).status_code == 200
    await unreachable.dispose()


async def test_openapi_docs_are_served(client: httpx.AsyncClient) -> None:
    """FastAPI's documentation stays at /docs, with every endpoint in the schema."""
    assert (await client.get("/docs")).status_code == 200
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/v1/models", CHAT, "/v1/sessions", "/v1/sessions/{session_id}/messages"} <= set(paths)


async def test_the_chat_page_is_served_at_the_root(client: httpx.AsyncClient) -> None:
    """`/` is the page's index.html and its files are under /static."""
    index = static_directory() / "index.html"
    if not index.is_file():
        pytest.skip("the chat page is not installed")
    page = await client.get("/")
    assert page.status_code == 200
    assert page.text == index.read_text(encoding="utf-8")
    for path in static_directory().iterdir():
        assert (await client.get(f"/static/{path.name}")).status_code == 200


async def test_the_lifespan_owns_the_container_resources(tmp_path: Path) -> None:
    """Starting the app initialises the container (the database migrated); stopping it shuts
    the resources down (the pool closed, the worker threads stopped)."""
    threads_before = database_threads()
    container = build_test_app(
        workspace=tmp_path, history_backend="database", data_dir=tmp_path / "d"
    )
    app = create_app(container)
    assert not (tmp_path / "d").exists()
    async with app.router.lifespan_context(app):
        assert (tmp_path / "d" / "chatscope.db").is_file()
        database = container.storage.database()
        pool = database.sync_engine.pool
        assert pool.checkedin() + pool.checkedout() >= 1  # the migration opened one
    assert (pool.checkedout(), pool.checkedin()) == (0, 0)
    assert database.sync_engine.pool.checkedin() == 0
    assert database_threads() - threads_before == set()


# --- models ---------------------------------------------------------------------------------


async def test_models_lists_profiles_and_each_providers_default(tmp_path: Path) -> None:
    """One model per subagent profile and one `provider/model` per provider default."""
    write_profile(
        tmp_path / "config" / "profiles", "helper", name="helper", provider="openai", model="m"
    )
    async with serving(build_test_app(workspace=tmp_path)) as http:
        listing = (await http.get("/v1/models")).json()
    assert listing["object"] == "list"
    ids = [model["id"] for model in listing["data"]]
    assert ids[0] == "helper"
    assert {"openai/gpt-4o-mini", "demo/chatscope-demo", "anthropic/claude-sonnet-4-5"} <= set(ids)
    assert all(m["object"] == "model" and m["owned_by"] == "chatscope" for m in listing["data"])


# --- chat completions -----------------------------------------------------------------------


async def test_a_completion_answers_with_content_usage_and_finish_reason(
    client: httpx.AsyncClient,
) -> None:
    """Not streamed: one chat.completion with the answer, its usage and why it ended."""
    answer = (await client.post(CHAT, json=ask("hello"))).json()
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "openai/gpt-test"
    choice = answer["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "gpt-test|None|['user:hello']"}
    assert choice["finish_reason"] == "stop"
    assert answer["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


async def test_a_streamed_completion_is_chunks_then_done(client: httpx.AsyncClient) -> None:
    """Streamed: a role chunk, content chunks, a last chunk with finish reason, `[DONE]`."""
    response = await client.post(CHAT, json=ask("hello", stream=True))
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert events[-1] == ("message", "[DONE]")
    chunks = [data for _, data in events[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)
    assert text == "gpt-test|None|['user:hello']"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["total_tokens"] == 15
    assert len({chunk["id"] for chunk in chunks}) == 1


async def test_earlier_messages_become_the_scope_history_and_are_not_stored(
    client: httpx.AsyncClient, provider: FunctionProvider
) -> None:
    """System messages make the system prompt, the others the history, the last the prompt."""
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "assistant", "content": "it is 42"},
        {"role": "user", "content": [{"type": "text", "text": "and now?"}]},
    ]
    await client.post(CHAT, json={"model": "openai/gpt-test", "messages": messages})
    await client.post(CHAT, json=ask("alone"))
    first, second = provider.invocations
    assert first.system_prompt == "be brief"
    assert [m.role for m in first.history] == [
        Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT, Role.USER,
    ]  # fmt: skip
    assert first.history[2].tool_results[0].name == "f"
    assert first.history[-1].text == "and now?"
    assert [m.text for m in second.history] == ["alone"]


async def test_a_profile_model_runs_with_its_provider_model_and_prompt(tmp_path: Path) -> None:
    """A profile's name as model: its provider, model, system prompt and params."""
    write_profile(
        tmp_path / "config" / "profiles",
        "helper",
        name="helper",
        provider="openai",
        model="profiled",
        system_prompt="You help.",
    )
    provider = FunctionProvider(echo, name="openai")
    body = {"model": "helper", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.5}
    async with serving(build_test_app(provider, workspace=tmp_path, provider="demo")) as http:
        answer = (await http.post(CHAT, json=body)).json()
    assert answer["model"] == "helper"
    (invocation,) = provider.invocations
    assert (invocation.model, invocation.system_prompt) == ("profiled", "You help.")
    assert invocation.model_params["temperature"] == 0.5


async def test_a_provider_name_alone_is_its_default_model(client: httpx.AsyncClient) -> None:
    """`"model": "openai"` runs the provider's default model."""
    answer = (await client.post(CHAT, json=ask("x", model="openai"))).json()
    assert answer["choices"][0]["message"]["content"].startswith("gpt-4o-mini|")


async def test_tools_run_on_the_server(tmp_path: Path) -> None:
    """The demo model calls list_directory; the server runs it and answers with the listing."""
    (tmp_path / "visible.txt").write_text("x")
    async with serving(build_test_app(workspace=tmp_path)) as http:
        answer = (await http.post(CHAT, json=ask("what is here?", model="demo"))).json()
    content = answer["choices"][0]["message"]["content"]
    assert "I called list_directory" in content
    assert "visible.txt" in content


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b'{"model": "openai", "messages": []}', 400, "invalid_request"),
        (b'{"model": "nope", "messages": [{"role": "user", "content": "x"}]}', 404, None),
        (b'{"model": "openai", "messages": [{"role": "assistant", "content": "x"}]}', 400, None),
        (b'{"model": "openai", "messages": [{"role": "robot", "content": "x"}]}', 400, None),
    ],
)
async def test_bad_input_is_a_4xx_with_an_error_body(
    client: httpx.AsyncClient, body: bytes, status: int, code: str | None
) -> None:
    """Malformed JSON, missing fields, unknown models, a last message not the user's."""
    response = await client.post(CHAT, content=body, headers={"content-type": "application/json"})
    assert_error_shape(response, status, code)
    if status == 404:
        assert response.json()["error"]["code"] == "model_not_found"


async def test_unknown_paths_and_methods_get_error_bodies(client: httpx.AsyncClient) -> None:
    """FastAPI's own 404 and 405 use the same body shape."""
    assert_error_shape(await client.get("/v2/nothing"), 404, "not_found")
    assert_error_shape(await client.delete("/v1/models"), 405, "method_not_allowed")


async def test_an_oversized_body_is_413_declared_or_streamed(tmp_path: Path) -> None:
    """A body over max_body_bytes is refused by its length, or as it streams in."""
    container = build_test_app(workspace=tmp_path, server={"max_body_bytes": 2048})
    big = b'{"model": "openai", "pad": "' + b"x" * 4096 + b'"}'

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 512):
            yield big[start : start + 512]

    async with serving(container) as http:
        assert_error_shape(await http.post(CHAT, content=big), 413, "body_too_large")
        assert_error_shape(await http.post(CHAT, content=chunked()), 413, "body_too_large")
        small = await http.post(CHAT, json={"model": "demo", "messages": []})
        assert small.status_code == 400


async def test_a_provider_failure_is_an_error_body_or_event_never_a_traceback(
    tmp_path: Path,
) -> None:
    """A provider that fails mid-turn: 502 with an error body, or an `error` chunk streamed."""

    def failing(invocation: ModelInvocation) -> Any:
        async def events() -> Any:
            raise ServerError("upstream exploded", provider="openai", status=500)

        return events()

    provider = FunctionProvider(failing, name="openai")
    container = build_test_app(provider, workspace=tmp_path, retry={"max_attempts": 1})
    async with serving(container) as http:
        whole = await http.post(CHAT, json=ask("x"))
        streamed = await http.post(CHAT, json=ask("x", stream=True))
    assert_error_shape(whole, 502, "provider_server")
    assert "upstream exploded" in whole.json()["error"]["message"]
    events = parse_sse(streamed.text)
    assert events[-2][1]["error"]["type"] == "upstream_error"
    assert events[-1] == ("message", "[DONE]")
    assert "Traceback" not in streamed.text


async def test_an_unexpected_exception_is_logged_and_answered_with_a_plain_500(
    tmp_path: Path,
) -> None:
    """A bug in a tool-free turn: the client gets a 500 body without internals; the server
    logs the traceback with the provider key scrubbed."""

    async def broken(invocation: ModelInvocation) -> list[Any]:
        raise RuntimeError(f"internal detail {invocation.credentials.secret()}")

    container = build_test_app(FunctionProvider(broken, name="openai"), workspace=tmp_path)
    async with serving(container) as http:
        with capture_logs() as logs:  # after start-up, which configures logging
            response = await http.post(
                CHAT, json=ask("x"), headers={"X-Provider-Key": "my-own-provider-key"}
            )
    assert_error_shape(response, 500, "internal_error")
    assert "internal detail" not in response.text
    failures = [log for log in logs if log["event"] == "request_failed"]
    assert failures
    assert "internal detail [REDACTED]" in failures[0]["traceback"]
    assert "my-own-provider-key" not in repr(logs)


async def test_an_error_raised_outside_any_handler_is_a_plain_500(tmp_path: Path) -> None:
    """Even a failure while building the response (here: listing models) is a 500 body."""
    container = build_test_app(workspace=tmp_path)
    container.subagent_profiles.override(SecretStr("not a mapping"))
    async with serving(container) as http:
        with capture_logs():
            assert_error_shape(await http.get("/v1/models"), 500, "internal_error")


async def test_a_slow_turn_does_not_block_other_requests(tmp_path: Path) -> None:
    """While one turn waits on its provider, health checks and other turns are answered."""
    gate = asyncio.Event()

    async def slow(invocation: ModelInvocation) -> list[Any]:
        if invocation.history[-1].text == "slow":
            await gate.wait()
        return [TextDelta("done"), FinishEvent(FinishReason.STOP)]

    container = build_test_app(FunctionProvider(slow, name="openai"), workspace=tmp_path)
    async with serving(container) as http:
        waiting = asyncio.create_task(http.post(CHAT, json=ask("slow")))
        fast = await http.post(CHAT, json=ask("fast"))
        assert fast.json()["choices"][0]["message"]["content"] == "done"
        assert not waiting.done()
        gate.set()
        assert (await waiting).status_code == 200


def database_threads() -> set[threading.Thread]:
    """The live worker threads of session databases."""
    return {t for t in threading.enumerate() if t.name.startswith("chatscope-db")}
