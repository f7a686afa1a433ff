"""Tenants: API keys, sessions that belong to one tenant, provider keys, turn limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection
from structlog.testing import capture_logs

from chatscope.adapters.storage.database import Database
from chatscope.adapters.storage.schema import messages_table, sessions_table
from chatscope.containers.application import ApplicationContainer
from chatscope.errors import AuthenticationFailedError
from chatscope.services.events import FinishEvent, FinishReason, TextDelta
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.testing import FunctionProvider, ScriptedReply, build_test_app
from tests.support.web import api_keys, bearer, parse_sse, serving

ACME, GLOBEX = "acme-key-0123456789", "globex-key-9876543210"


@pytest.fixture
def provider() -> FunctionProvider:
    """A fake OpenAI answering with the key it was called with."""
    return FunctionProvider(lambda invocation: ScriptedReply(text="answered"), name="openai")


@pytest.fixture
def container(tmp_path: Path, provider: FunctionProvider) -> ApplicationContainer:
    """Two tenants with keys, sessions in SQLite."""
    return build_test_app(
        provider,
        workspace=tmp_path,
        history_backend="database",
        data_dir=tmp_path / "data",
        server=api_keys(acme=ACME, globex=GLOBEX),
    )


@pytest.fixture
async def client(container: ApplicationContainer) -> AsyncIterator[httpx.AsyncClient]:
    """The app over that container."""
    async with serving(container) as http:
        yield http


ASK = {"model": "openai", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": f"Basic {ACME}"}],
)
async def test_a_missing_or_wrong_key_is_401_everywhere(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """Every /v1 endpoint refuses the call with an OpenAI-style 401."""
    calls = [
        client.get("/v1/models", headers=headers),
        client.post("/v1/chat/completions", json=ASK, headers=headers),
        client.get("/v1/sessions", headers=headers),
        client.post("/v1/sessions", json={}, headers=headers),
        client.get("/v1/sessions/x", headers=headers),
        client.delete("/v1/sessions/x", headers=headers),
        client.post("/v1/sessions/x/messages", json={"content": "x"}, headers=headers),
    ]
    for response in await asyncio.gather(*calls):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["type"] == "authentication_error"


async def test_health_needs_no_key(client: httpx.AsyncClient) -> None:
    """Probes answer without authentication."""
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200


async def test_another_tenants_session_is_404_in_every_endpoint(
    client: httpx.AsyncClient,
) -> None:
    """globex can neither see, read, continue nor delete acme's session."""
    created = await client.post("/v1/sessions", json={"model": "openai"}, headers=bearer(ACME))
    session = created.json()["id"]
    path = f"/v1/sessions/{session}"
    intruder = bearer(GLOBEX)
    for response in (
        await client.get(path, headers=intruder),
        await client.delete(path, headers=intruder),
        await client.post(f"{path}/messages", json={"content": "x"}, headers=intruder),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "session_not_found"
    assert (await client.get("/v1/sessions", headers=intruder)).json() == {"data": []}
    owner_view = (await client.get(path, headers=bearer(ACME))).json()
    assert owner_view["turns"] == 0
    assert [
        s["id"] for s in (await client.get("/v1/sessions", headers=bearer(ACME))).json()["data"]
    ] == [session]


async def test_a_provider_key_is_used_for_the_call_and_never_stored_logged_or_echoed(
    tmp_path: Path,
) -> None:
    """X-Provider-Key reaches the model call as the credential; it is in no response body,
    no log event, and no stored row, even when the provider echoes it in an error."""
    secret = "tenant-own-provider-key-42"

    async def echoing(invocation: ModelInvocation) -> list[Any]:
        key = invocation.credentials.secret()
        if invocation.history[-1].text == "fail":
            raise AuthenticationFailedError(f"key {key} was refused", provider="openai")
        return [TextDelta(f"used a key of {len(key or '')} chars"), FinishEvent(FinishReason.STOP)]

    provider = FunctionProvider(echoing, name="openai")
    container = build_test_app(
        provider, workspace=tmp_path, history_backend="database", data_dir=tmp_path / "d"
    )
    headers = {"X-Provider-Key": secret}
    async with serving(container) as http:
        with capture_logs() as logs:
            session = (await http.post("/v1/sessions", json={"model": "openai"})).json()
            path = f"/v1/sessions/{session['id']}"
            bodies = [
                await http.post(f"{path}/messages", json={"content": "ok"}, headers=headers),
                await http.post(f"{path}/messages", json={"content": "fail"}, headers=headers),
                await http.post("/v1/chat/completions", json=ASK, headers=headers),
                await http.post(
                    "/v1/chat/completions",
                    json={**ASK, "messages": [{"role": "user", "content": "fail"}]},
                    headers=headers,
                ),
                await http.get(path, headers=headers),
            ]
        rows = await stored_rows(container)
    assert [i.credentials.secret() for i in provider.invocations] == [secret] * 4
    assert parse_sse(bodies[0].text)[-1][1]["text"] == f"used a key of {len(secret)} chars"
    assert "[REDACTED]" in bodies[1].text
    assert "[REDACTED]" in bodies[3].text
    for shown in (*(body.text for body in bodies), repr(logs), repr(rows)):
        assert secret not in shown


async def stored_rows(container: ApplicationContainer) -> list[Any]:
    """Every row of the sessions and messages tables."""

    def read(connection: Connection) -> list[Any]:
        sessions = connection.execute(select(sessions_table)).all()
        messages = connection.execute(select(messages_table)).all()
        return [*sessions, *messages]

    database: Database = container.storage.database()
    return await database.read(read)


async def test_without_keys_only_loopback_clients_are_served(tmp_path: Path) -> None:
    """A server with no keys answers 127.0.0.1 and ::1, and refuses any other address."""
    container = build_test_app(workspace=tmp_path)
    for host, status in (("127.0.0.1", 200), ("::1", 200), ("192.0.2.7", 401)):
        async with serving(container, client=(host, 4000)) as http:
            assert (await http.get("/v1/models")).status_code == status
        container.reset_singletons()


async def test_a_tenant_past_its_turn_limit_gets_429_with_retry_after(tmp_path: Path) -> None:
    """At most max_turns_per_tenant turns at once per tenant; the others are unaffected."""
    gate = asyncio.Event()

    async def slow(invocation: ModelInvocation) -> list[Any]:
        await gate.wait()
        return [TextDelta("ok"), FinishEvent(FinishReason.STOP)]

    container = build_test_app(
        FunctionProvider(slow, name="openai"),
        workspace=tmp_path,
        server=api_keys(acme=ACME, globex=GLOBEX) | {"max_turns_per_tenant": 2},
    )
    async with serving(container) as http:
        running = [
            asyncio.create_task(http.post("/v1/chat/completions", json=ASK, headers=bearer(ACME)))
            for _ in range(2)
        ]
        await asyncio.sleep(0.05)
        refused = await http.post("/v1/chat/completions", json=ASK, headers=bearer(ACME))
        other = asyncio.create_task(
            http.post("/v1/chat/completions", json=ASK, headers=bearer(GLOBEX))
        )
        await asyncio.sleep(0.05)
        gate.set()
        assert [r.status_code for r in await asyncio.gather(*running, other)] == [200] * 3
        again = await http.post("/v1/chat/completions", json=ASK, headers=bearer(ACME))
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert again.status_code == 200


async def test_the_turn_counter_belongs_to_the_app_instance(tmp_path: Path) -> None:
    """Two apps keep separate counters: a tenant busy on one is free on the other."""
    gate = asyncio.Event()

    async def slow(invocation: ModelInvocation) -> list[Any]:
        await gate.wait()
        return [TextDelta("ok"), FinishEvent(FinishReason.STOP)]

    def container() -> ApplicationContainer:
        return build_test_app(
            FunctionProvider(slow, name="openai"),
            workspace=tmp_path,
            server={"max_turns_per_tenant": 1},
        )

    async with serving(container()) as first, serving(container()) as second:
        busy = asyncio.create_task(first.post("/v1/chat/completions", json=ASK))
        await asyncio.sleep(0.05)
        assert (await first.post("/v1/chat/completions", json=ASK)).status_code == 429
        free = asyncio.create_task(second.post("/v1/chat/completions", json=ASK))
        await asyncio.sleep(0.05)
        gate.set()
        assert [(await busy).status_code, (await free).status_code] == [200, 200]
