"""Saved sessions over HTTP: the endpoints' shapes, the streamed events, what is stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatscope.adapters.pricing import PriceTable, cost_json
from chatscope.adapters.storage.catalog import SessionCatalog
from chatscope.containers.application import ApplicationContainer
from chatscope.errors import ServerError
from chatscope.services.events import (
    FinishEvent,
    FinishReason,
    ProviderEvent,
    TextDelta,
    ThinkingDelta,
)
from chatscope.services.messages import Role, Usage
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.testing import FunctionProvider, ScriptedReply, build_test_app
from tests.support.databases import DATABASE_BACKENDS, fresh_database
from tests.support.web import parse_sse, serving

SUMMARY_KEYS = {"id", "provider", "model", "title", "created_at", "updated_at", "turns"}


class BreaksMidStream:
    """An OpenAI stand-in whose stream breaks after its first events."""

    name = "openai"

    async def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
        """Think, say a little, then fail."""
        yield ThinkingDelta("let me")
        yield TextDelta("part")
        raise ServerError("connection reset mid-answer", provider="openai")


def scripted(invocation: ModelInvocation) -> ScriptedReply:
    """Think, then call `list_directory` on a fresh prompt; answer once its result is back."""
    if invocation.history[-1].role is Role.USER:
        return ScriptedReply(thinking="hmm", tool_calls=[("list_directory", {"path": "."})])
    return ScriptedReply(text=f"{invocation.model}: {len(invocation.history)} messages", chunks=2)


@pytest.fixture(params=DATABASE_BACKENDS)
async def container(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ApplicationContainer]:
    """A test container saving sessions in a fresh database (SQLite, and PostgreSQL if set)."""
    async with fresh_database(request.param, tmp_path) as url:
        yield build_test_app(
            FunctionProvider(scripted, name="openai"),
            workspace=tmp_path,
            history_backend="database",
            database_url=url,
        )


@pytest.fixture
async def client(container: ApplicationContainer) -> AsyncIterator[httpx.AsyncClient]:
    """The app over that container."""
    async with serving(container) as http:
        yield http


async def new_session(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    """Create a session and return it."""
    response = await client.post("/v1/sessions", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def send(client: httpx.AsyncClient, session_id: str, **body: Any) -> list[tuple[str, Any]]:
    """Post a message and return the streamed events."""
    response = await client.post(f"/v1/sessions/{session_id}/messages", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response.text)


async def test_a_new_session_is_empty_and_listed(client: httpx.AsyncClient) -> None:
    """POST gives 201 and the session's summary; GET lists it; GET by id adds its messages."""
    created = await new_session(client, provider="openai", model="gpt-x")
    assert set(created) == SUMMARY_KEYS
    assert (created["provider"], created["model"], created["turns"], created["title"]) == (
        "openai", "gpt-x", 0, "",
    )  # fmt: skip
    listed = (await client.get("/v1/sessions")).json()["data"]
    assert listed == [created]
    read = (await client.get(f"/v1/sessions/{created['id']}")).json()
    assert read == created | {"messages": []}


async def test_a_message_streams_named_events_and_stores_the_turn(
    client: httpx.AsyncClient,
) -> None:
    """thinking, tool_call, usage, tool_result, text and done; then the turn is stored."""
    session = await new_session(client, model="openai/gpt-x")
    events = await send(client, session["id"], content="what is here?")
    names = [name for name, _ in events]
    assert names[:4] == ["thinking", "tool_call", "usage", "tool_result"]
    assert names[-1] == "done"
    assert "text" in names
    call = dict(events)["tool_call"]
    assert (call["name"], call["arguments"]) == ("list_directory", {"path": "."})
    result = dict(events)["tool_result"]
    assert (result["id"], result["error"]) == (call["id"], None)
    done = events[-1][1]
    text = "".join(data["text"] for name, data in events if name == "text")
    assert done["text"] == text == "gpt-x: 3 messages"
    assert (done["provider"], done["model"], done["session_id"]) == (
        "openai",
        "gpt-x",
        session["id"],
    )
    assert done["finish_reason"] == "stop"
    assert done["usage"] == {"input_tokens": 20, "output_tokens": 10}
    read = (await client.get(f"/v1/sessions/{session['id']}")).json()
    assert (read["turns"], read["title"]) == (1, "what is here?")
    assert [m["role"] for m in read["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert read["messages"][1]["tool_calls"] == [call]
    assert read["messages"][2]["tool_results"] == [result]
    assert read["messages"][3]["text"] == text


async def test_usage_and_done_events_carry_the_cost(client: httpx.AsyncClient) -> None:
    """Each `usage` event and `done` price their usage as the session's model (genai-prices'
    table); a model the table does not know costs null, not zero."""
    table = PriceTable()
    session = await new_session(client, model="openai/gpt-4o-mini")
    events = await send(client, session["id"], content="what is here?")
    usages = [data for name, data in events if name == "usage"]
    assert usages
    for data in usages:
        usage = Usage(data["input_tokens"], data["output_tokens"])
        expected = table.price(usage, provider="openai", model="gpt-4o-mini")
        assert expected is not None
        assert data["cost"] == cost_json(expected)
    done = events[-1][1]
    total = table.price(Usage(20, 10), provider="openai", model="gpt-4o-mini")
    assert done["cost"] == cost_json(total)
    unknown = await new_session(client, model="openai/gpt-x")
    events = await send(client, unknown["id"], content="what is here?")
    assert [data["cost"] for name, data in events if name in {"usage", "done"}] == [None] * 3


async def test_a_second_message_continues_the_stored_history(client: httpx.AsyncClient) -> None:
    """The next turn's scope opens the session: the provider sees the first turn."""
    session = await new_session(client, model="openai/gpt-x")
    await send(client, session["id"], content="one")
    events = await send(client, session["id"], content="two")
    assert events[-1][1]["text"] == "gpt-x: 7 messages"


async def test_the_session_label_is_used_unless_the_body_names_a_model(
    client: httpx.AsyncClient, container: ApplicationContainer
) -> None:
    """No model in the body: the session's own; a model in the body: that one, stored."""
    session = await new_session(client, provider="openai", model="first")
    assert (await send(client, session["id"], content="a"))[-1][1]["model"] == "first"
    events = await send(client, session["id"], content="b", model="openai/second")
    assert events[-1][1]["model"] == "second"
    assert (await send(client, session["id"], content="c"))[-1][1]["model"] == "second"
    stored = await container.storage.session_catalog().get(session["id"])
    assert (stored.provider, stored.model) == ("openai", "second")


async def test_a_session_system_prompt_reaches_every_turn(tmp_path: Path) -> None:
    """`system` given at creation is stored with the session and sent with each turn."""
    provider = FunctionProvider(lambda invocation: ScriptedReply(text="ok"), name="openai")
    container = build_test_app(
        provider, workspace=tmp_path, history_backend="database", data_dir=tmp_path / "d"
    )
    async with serving(container) as http:
        session = await new_session(http, model="openai", system="Answer in French.")
        await send(http, session["id"], content="hello")
        await send(http, session["id"], content="again")
    assert [i.system_prompt for i in provider.invocations] == ["Answer in French."] * 2


async def test_deleting_a_session_removes_it_everywhere(client: httpx.AsyncClient) -> None:
    """DELETE is 204; afterwards the session is 404 in every endpoint and gone from the list."""
    session = await new_session(client)
    await send(client, session["id"], content="x", model="openai")
    assert (await client.delete(f"/v1/sessions/{session['id']}")).status_code == 204
    path = f"/v1/sessions/{session['id']}"
    for response in (
        await client.get(path),
        await client.delete(path),
        await client.post(f"{path}/messages", json={"content": "x"}),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "session_not_found"
    assert (await client.get("/v1/sessions")).json() == {"data": []}


@pytest.mark.parametrize(
    "body",
    [{}, {"content": ""}, {"content": 3}, {"content": "x", "model": "nope"}],
)
async def test_bad_message_bodies_are_4xx(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    """An empty or missing prompt is 400, an unknown model 404; nothing is stored."""
    session = await new_session(client)
    response = await client.post(f"/v1/sessions/{session['id']}/messages", json=body)
    assert response.status_code in (400, 404)
    assert set(response.json()["error"]) == {"message", "type", "code"}
    assert (await client.get(f"/v1/sessions/{session['id']}")).json()["turns"] == 0


async def test_a_session_takes_one_turn_at_a_time(tmp_path: Path) -> None:
    """A second message while a turn of the session runs is 409; other sessions go on."""
    gate = asyncio.Event()

    async def slow(invocation: ModelInvocation) -> list[Any]:
        await gate.wait()
        return [TextDelta("ok"), FinishEvent(FinishReason.STOP)]

    container = build_test_app(
        FunctionProvider(slow, name="openai"),
        workspace=tmp_path,
        history_backend="database",
        data_dir=tmp_path / "d",
    )
    async with serving(container) as http:
        busy, other = await new_session(http, model="openai"), await new_session(http)
        first = asyncio.create_task(send(http, busy["id"], content="one"))
        await asyncio.sleep(0.05)
        refused = await http.post(f"/v1/sessions/{busy['id']}/messages", json={"content": "2"})
        elsewhere = asyncio.create_task(send(http, other["id"], content="x", model="openai"))
        await asyncio.sleep(0.05)
        gate.set()
        assert (await first)[-1][0] == "done"
        assert (await elsewhere)[-1][0] == "done"
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "session_busy"


async def test_a_failing_turn_is_an_error_event_and_stores_nothing(tmp_path: Path) -> None:
    """A turn whose provider fails streams what it had, then `error`; the session is untouched."""

    container = build_test_app(
        BreaksMidStream(),
        workspace=tmp_path,
        history_backend="database",
        data_dir=tmp_path / "d",
    )
    async with serving(container) as http:
        session = await new_session(http, model="openai")
        events = await send(http, session["id"], content="x")
        read = (await http.get(f"/v1/sessions/{session['id']}")).json()
    assert [name for name, _ in events] == ["thinking", "text", "error"]
    assert events[-1][1] == {
        "message": "openai server: connection reset mid-answer",
        "type": "upstream_error",
    }
    assert "Traceback" not in str(events)
    assert (read["turns"], read["messages"]) == (0, [])


async def test_sessions_need_the_database_backend(tmp_path: Path) -> None:
    """With history in memory the session endpoints say so (501), with an error body."""
    async with serving(build_test_app(workspace=tmp_path)) as http:
        for response in (await http.get("/v1/sessions"), await http.post("/v1/sessions", json={})):
            assert response.status_code == 501
            assert response.json()["error"]["code"] == "sessions_unavailable"


async def test_sessions_made_by_the_server_without_keys_are_the_clis(tmp_path: Path) -> None:
    """Without API keys the one tenant is `local`, the owner of the CLI's sessions."""
    container = build_test_app(
        workspace=tmp_path, history_backend="database", data_dir=tmp_path / "d"
    )
    async with serving(container) as http:
        session = await new_session(http)
        catalog: SessionCatalog = container.storage.session_catalog()
        assert [s.id for s in await catalog.list_sessions("local")] == [session["id"]]
