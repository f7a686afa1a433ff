"""Isolation under load: 50 concurrent requests of different tenants, models, keys and
histories; each model call carries only its own request's, and no tenant reaches another's
session."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx

from chatscope.services.events import FinishEvent, FinishReason, TextDelta, UsageEvent
from chatscope.services.messages import Usage
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.testing import FunctionProvider, build_test_app
from tests.support.web import api_keys, bearer, parse_sse, serving

TENANTS = {f"tenant{n}": f"api-key-of-tenant-{n}-0123456789" for n in range(5)}
REQUESTS = 50


async def answer(invocation: ModelInvocation) -> list[Any]:
    """After a random pause (so calls interleave), say what this call was given."""
    await asyncio.sleep(random.uniform(0, 0.02))  # noqa: S311 - scheduling jitter, not security
    texts = "/".join(message.text for message in invocation.history)
    seen = f"{invocation.model}|{invocation.credentials.secret()}|{texts}"
    return [TextDelta(seen), UsageEvent(Usage(1, 1)), FinishEvent(FinishReason.STOP)]


def plan(index: int) -> dict[str, Any]:
    """Request `index`: its tenant, model, provider key and a history of its own."""
    tenant = f"tenant{index % len(TENANTS)}"
    history = [
        {"role": "user", "content": f"r{index}-first"},
        {"role": "assistant", "content": f"r{index}-reply"},
        {"role": "user", "content": f"r{index}-prompt"},
    ]
    return {
        "tenant": tenant,
        "model": f"model-{index}",
        "provider_key": f"provider-key-{index}-{random.randrange(10**9)}",  # noqa: S311
        "messages": history[index % 2 * 2 :],  # every other request has earlier messages
        "stream": index % 3 == 0,
    }


async def complete(http: httpx.AsyncClient, request: dict[str, Any]) -> str:
    """Send one planned request; the answer's text."""
    body = {"model": f"openai/{request['model']}", "messages": request["messages"]}
    headers = bearer(TENANTS[request["tenant"]], request["provider_key"])
    response = await http.post(
        "/v1/chat/completions", json=body | {"stream": request["stream"]}, headers=headers
    )
    assert response.status_code == 200, response.text
    if not request["stream"]:
        return str(response.json()["choices"][0]["message"]["content"])
    chunks = [data for _, data in parse_sse(response.text) if data != "[DONE]"]
    return "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)


async def test_fifty_concurrent_requests_each_carry_only_their_own_model_key_and_history(
    tmp_path: Path,
) -> None:
    """Every invocation holds its request's model, key and messages, and nothing else."""
    provider = FunctionProvider(answer, name="openai")
    container = build_test_app(
        provider,
        workspace=tmp_path,
        server=api_keys(**TENANTS) | {"max_turns_per_tenant": REQUESTS},
    )
    requests = [plan(index) for index in range(REQUESTS)]
    async with serving(container) as http:
        answers = await asyncio.gather(*(complete(http, request) for request in requests))
    assert len(provider.invocations) == REQUESTS
    by_prompt = {invocation.history[-1].text: invocation for invocation in provider.invocations}
    for request, text in zip(requests, answers, strict=True):
        expected = [message["content"] for message in request["messages"]]
        invocation = by_prompt[expected[-1]]
        assert invocation.model == request["model"]
        assert invocation.credentials.secret() == request["provider_key"]
        assert [message.text for message in invocation.history] == expected
        assert text == f"{request['model']}|{request['provider_key']}|{'/'.join(expected)}"


async def test_concurrent_tenants_only_ever_reach_their_own_sessions(tmp_path: Path) -> None:
    """Tenants create and use sessions at once; every cross-tenant read, message or delete is
    404, and each tenant's list holds exactly its own sessions, each with its own turn."""
    provider = FunctionProvider(answer, name="openai")
    container = build_test_app(
        provider,
        workspace=tmp_path,
        history_backend="database",
        data_dir=tmp_path / "data",
        server=api_keys(**TENANTS) | {"max_turns_per_tenant": REQUESTS},
    )
    async with serving(container) as http:
        created = await asyncio.gather(
            *(new_session(http, tenant) for tenant in TENANTS for _ in range(2))
        )
        attempts = [
            use_session(http, tenant, session_id, own=tenant == owner)
            for owner, session_id in created
            for tenant in TENANTS
        ]
        await asyncio.gather(*attempts)
        for tenant, key in TENANTS.items():
            listed = (await http.get("/v1/sessions", headers=bearer(key))).json()["data"]
            own = {session_id for owner, session_id in created if owner == tenant}
            assert {session["id"] for session in listed} == own
            assert all(session["turns"] == 1 for session in listed)


async def new_session(http: httpx.AsyncClient, tenant: str) -> tuple[str, str]:
    """(tenant, id) of a new session of `tenant`."""
    response = await http.post(
        "/v1/sessions", json={"model": "openai/m"}, headers=bearer(TENANTS[tenant])
    )
    return tenant, str(response.json()["id"])


async def use_session(http: httpx.AsyncClient, tenant: str, session_id: str, *, own: bool) -> None:
    """The owner sends one message; anyone else gets 404 for read, message and delete."""
    headers = bearer(TENANTS[tenant])
    path = f"/v1/sessions/{session_id}"
    if own:
        sent = await http.post(f"{path}/messages", json={"content": tenant}, headers=headers)
        assert parse_sse(sent.text)[-1][0] == "done"
        return
    for response in (
        await http.get(path, headers=headers),
        await http.post(f"{path}/messages", json={"content": "intrude"}, headers=headers),
        await http.delete(path, headers=headers),
    ):
        assert response.status_code == 404, response.text
