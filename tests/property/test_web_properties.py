"""Properties of the HTTP layer: model ids and OpenAI requests mapped to scopes, error bodies
for any bad input, keys, limits, event encodings, and tenant isolation under any interleaving.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from chatscope.adapters.pricing import PriceTable
from chatscope.config.loading import describe_validation_error
from chatscope.config.settings import PROVIDER_NAMES, ExplicitSettings, ServerSettings
from chatscope.errors import MIN_SCRUBBED_SECRET_CHARS, AuthenticationFailedError
from chatscope.services.events import (
    ChatEvent,
    CompletedTurn,
    FinishReason,
    TextDelta,
    ThinkingDelta,
    ToolCallEvent,
    ToolResultEvent,
    TurnDone,
    UsageEvent,
)
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.messages import Message, ToolCallBlock, ToolResultBlock, Usage
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.state import AgentRuntimeState
from chatscope.services.subagents.profile import SubagentProfile
from chatscope.testing import FunctionProvider, ScriptedReply, build_test_app
from chatscope.web import hash_key
from chatscope.web.errors import ApiError, scrub
from chatscope.web.scopes import (
    ChatMessage,
    model_ids,
    read_conversation,
    resolve_model,
    scope_request,
)
from chatscope.web.sessions import event_of, message_json, sse_event
from chatscope.web.tenancy import KeyRing, is_loopback
from chatscope.web.turns import TurnLimiter
from tests.support.adapter_helpers import JSON_OBJECTS
from tests.support.message_strategies import messages
from tests.support.web import api_keys, bearer, parse_sse, serving

SETTINGS = ExplicitSettings(workspace=Path("/nonexistent"))
names = st.from_regex(r"[a-z][a-z0-9_-]{0,11}", fullmatch=True)
texts = st.text(max_size=40)
keys = st.text(min_size=1, max_size=40).map(str.strip).filter(bool)
profiles = st.dictionaries(
    names.filter(lambda name: name not in PROVIDER_NAMES),
    st.tuples(st.sampled_from(PROVIDER_NAMES), names),
    max_size=4,
).map(
    lambda table: {
        name: SubagentProfile.create(name=name, provider=provider, model=model)
        for name, (provider, model) in table.items()
    }
)


# --- model ids and OpenAI requests ----------------------------------------------------------


@given(profiles=profiles)
def test_every_listed_model_id_resolves_to_itself(profiles: dict[str, SubagentProfile]) -> None:
    """Each id of /v1/models names a choice whose id is that id."""
    for model_id in model_ids(SETTINGS, profiles):
        choice = resolve_model(model_id, None, settings=SETTINGS, profiles=profiles)
        assert choice.id == model_id


@given(provider=st.sampled_from(PROVIDER_NAMES), model=st.text(min_size=1, max_size=30))
def test_provider_slash_model_is_that_provider_and_model(provider: str, model: str) -> None:
    """`provider/model` splits at the first slash only: models may hold slashes themselves."""
    choice = resolve_model(f"{provider}/{model}", None, settings=SETTINGS, profiles={})
    assert (choice.provider, choice.model, choice.profile) == (provider, model, None)
    alone = resolve_model(provider, None, settings=SETTINGS, profiles={})
    assert alone.model == SETTINGS.model_for(provider)


@given(name=st.text(max_size=30), profiles=profiles)
def test_any_other_model_name_is_model_not_found(
    name: str, profiles: dict[str, SubagentProfile]
) -> None:
    """A name that is no profile and starts with no provider is a 404 `model_not_found`."""
    assume(name not in profiles and name.partition("/")[0] not in PROVIDER_NAMES)
    with pytest.raises(ApiError) as caught:
        resolve_model(name, None, settings=SETTINGS, profiles=profiles)
    assert (caught.value.status, caught.value.code) == (404, "model_not_found")


def tool_call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI assistant tool call."""
    function = {"name": name, "arguments": json.dumps(arguments)}
    return {"id": call_id, "type": "function", "function": function}


exchanges = st.one_of(
    texts.map(lambda text: [{"role": "user", "content": text}]),
    texts.map(lambda text: [{"role": "assistant", "content": text}]),
    texts.map(lambda text: [{"role": "system", "content": text}]),
    st.tuples(names, names, JSON_OBJECTS, texts).map(
        lambda parts: [
            {"role": "assistant", "content": None, "tool_calls": [tool_call(*parts[:3])]},
            {"role": "tool", "tool_call_id": parts[0], "content": parts[3]},
        ]
    ),
)


@given(earlier=st.lists(exchanges, max_size=6), prompt=texts)
def test_openai_messages_map_to_system_history_and_prompt(
    earlier: list[list[dict[str, Any]]], prompt: str
) -> None:
    """System messages join into the system prompt, the last user message is the prompt, and
    the others keep their order, roles, texts and tool calls (results named after their call)."""
    raw = [message for exchange in earlier for message in exchange]
    raw.append({"role": "user", "content": [{"type": "text", "text": prompt}]})
    conversation = read_conversation([ChatMessage.model_validate(m) for m in raw])
    systems = [m["content"] for m in raw if m["role"] == "system"]
    assert conversation.system == ("\n\n".join(systems) or None)
    assert conversation.prompt == prompt
    kept = [m for m in raw[:-1] if m["role"] != "system"]
    kept = [m for m in kept if m["role"] != "assistant" or m["content"] or m.get("tool_calls")]
    assert [str(m.role) for m in conversation.history] == [m["role"] for m in kept]
    for index, (message, source) in enumerate(zip(conversation.history, kept, strict=True)):
        if source["role"] == "tool":
            [result] = message.tool_results
            assert (result.call_id, result.result) == (source["tool_call_id"], source["content"])
            calls = [c for m in kept[:index] for c in m.get("tool_calls") or ()]
            latest = [c["function"]["name"] for c in calls if c["id"] == result.call_id][-1]
            assert result.name == latest  # ids are only unique per response
        else:
            assert message.text == (source["content"] or "")
            calls = [(c.id, c.name) for c in message.tool_calls]
            assert calls == [
                (c["id"], c["function"]["name"]) for c in source.get("tool_calls") or ()
            ]


@given(earlier=st.lists(exchanges, min_size=1, max_size=4))
def test_a_conversation_must_end_with_the_users_message(
    earlier: list[list[dict[str, Any]]],
) -> None:
    """Any request whose last message is not the user's is a 400."""
    raw = [message for exchange in earlier for message in exchange]
    assume(raw[-1]["role"] != "user")
    with pytest.raises(ApiError) as caught:
        read_conversation([ChatMessage.model_validate(m) for m in raw])
    assert caught.value.status == 400


@given(
    tenant=names,
    key=st.none() | st.from_regex(r"pk-[A-Za-z0-9]{16,24}", fullmatch=True),
    session_id=st.none() | names,
    system=st.none() | texts,
    temperature=st.none() | st.floats(0, 2),
    max_tokens=st.none() | st.integers(1, 10**6),
    profile_prompt=st.none() | texts,
)
def test_a_scope_request_carries_exactly_the_requests_own_parts(
    tenant: str,
    key: str | None,
    session_id: str | None,
    system: str | None,
    temperature: float | None,
    max_tokens: int | None,
    profile_prompt: str | None,
) -> None:
    """Owner, key, session, history, prompt (profile's first) and sampling choices are the
    request's; the profile's provider and model; nothing else is added."""
    profile = SubagentProfile.create(
        name="p", provider="anthropic", model="m", system_prompt=profile_prompt
    )
    choice = resolve_model("p", None, settings=SETTINGS, profiles={"p": profile})
    history = InMemoryHistory()
    request = scope_request(
        choice,
        tenant=tenant,
        provider_key=SecretStr(key) if key else None,
        session_id=session_id,
        history=history,
        system=system,
        overrides={"temperature": temperature, "max_tokens": max_tokens},
    )
    assert (request.provider, request.model, request.owner) == ("anthropic", "m", tenant)
    assert (request.api_key.get_secret_value() if request.api_key else None) == key
    assert (request.session_id, request.history, request.subagent_name) == (
        session_id, history, None,
    )  # fmt: skip
    parts = [part for part in (profile_prompt, system) if part]
    assert request.system_prompt == ("\n\n".join(parts) or None)
    assert request.model_params.get("temperature") == temperature
    assert request.ephemeral_overrides.get("maxOutputTokens") == max_tokens
    if key:
        assert key not in repr(request)


# --- keys, limits, addresses, settings ------------------------------------------------------


@given(tenants=st.dictionaries(names, keys, min_size=1, max_size=5), other=keys)
def test_a_key_names_exactly_its_tenant(tenants: dict[str, str], other: str) -> None:
    """Each key finds its tenant through its hash; a key nobody has finds none."""
    assume(len(set(tenants.values())) == len(tenants) and other not in tenants.values())
    ring = KeyRing({tenant: hash_key(key) for tenant, key in tenants.items()})
    for tenant, key in tenants.items():
        assert ring.tenant_of(key) == tenant
    assert ring.tenant_of(other) is None
    assert not ring.open


@given(key=st.text(max_size=60), plain=st.from_regex(r"pk-[A-Za-z0-9]{16,24}", fullmatch=True))
def test_a_hash_is_sha256_hex_and_settings_refuse_a_plain_key(key: str, plain: str) -> None:
    """`sha256:` and 64 lowercase hex digits is what settings take; a key given as itself is
    refused, and the error does not show it."""
    hashed = hash_key(key)
    assert hashed.startswith("sha256:")
    assert len(hashed) == 71
    assert all(c in "0123456789abcdef" for c in hashed[7:])
    assert ServerSettings(api_keys={"acme": hashed}).api_keys == {"acme": hashed}
    with pytest.raises(ValidationError) as caught:
        ExplicitSettings(workspace=Path("/nonexistent"), server={"api_keys": {"acme": plain}})
    described = describe_validation_error(caught.value)
    assert "sha256:<64 hex digits>" in described
    assert plain not in described


@given(
    script=st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=40),
    limit=st.integers(1, 4),
)
def test_the_turn_limiter_counts_each_tenant_alone(
    script: list[tuple[str, bool]], limit: int
) -> None:
    """Acquire (True) or release a slot in any order: a tenant holds at most `limit`, and is
    refused with 429 exactly when it holds that many; other tenants are never affected."""
    limiter = TurnLimiter(limit)
    held: dict[str, list[Any]] = {tenant: [] for tenant in "abc"}
    for tenant, acquire in script:
        if acquire and len(held[tenant]) == limit:
            with pytest.raises(ApiError) as caught:
                limiter.acquire(tenant)
            assert (caught.value.status, caught.value.headers) == (429, {"Retry-After": "1"})
        elif acquire:
            held[tenant].append(limiter.acquire(tenant))
        elif held[tenant]:
            slot = held[tenant].pop()
            slot.release()
            slot.release()  # twice changes nothing
        assert all(limiter.running(t) == len(slots) for t, slots in held.items())


@given(address=st.ip_addresses())
def test_only_loopback_addresses_count_as_local(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    """127.0.0.0/8 and ::1 (and `localhost`) are loopback; every other address is not."""
    assert is_loopback(str(address)) == address.is_loopback
    assert is_loopback("localhost")


@given(secret=keys, before=texts, after=texts)
def test_scrubbing_removes_the_key_whatever_its_shape(secret: str, before: str, after: str) -> None:
    """A provider key never survives `scrub`, wherever it sits in the text. (A key shorter
    than `MIN_SCRUBBED_SECRET_CHARS` is too short to be one and is left alone: test_scrub.py.)"""
    assume(len(secret) >= MIN_SCRUBBED_SECRET_CHARS)
    assume(secret not in before + after and "[REDACTED]" not in secret)
    shown = scrub(f"{before}{secret}{after}", secret)
    assert secret not in shown.replace("[REDACTED]", "\0")


# --- events and stored messages -------------------------------------------------------------

STATE = AgentRuntimeState.create(provider="openai", model="m", session_id="s1")
events: st.SearchStrategy[ChatEvent] = st.one_of(
    texts.map(TextDelta),
    texts.map(ThinkingDelta),
    st.tuples(names, names, JSON_OBJECTS).map(
        lambda parts: ToolCallEvent(ToolCallBlock.create(*parts))
    ),
    st.tuples(names, names, texts, st.booleans()).map(
        lambda parts: ToolResultEvent(
            ToolResultBlock(parts[0], parts[1], **{"error" if parts[3] else "result": parts[2]})
        )
    ),
    st.builds(Usage, st.integers(0, 10**6), st.integers(0, 10**6)).map(UsageEvent),
    st.tuples(texts, st.sampled_from(FinishReason)).map(
        lambda parts: TurnDone(CompletedTurn(parts[0], (), (), Usage(1, 2), parts[1], 1))
    ),
)


@given(stream=st.lists(events, max_size=10))
def test_session_events_survive_the_event_stream_encoding(stream: list[ChatEvent]) -> None:
    """Every shown event, whatever its text (newlines included), parses back to its data and
    name; empty text and thinking deltas are not shown."""
    prices = PriceTable()
    shown = [pair for pair in (event_of(event, STATE, prices) for event in stream) if pair]
    encoded = "".join(sse_event(name, data) for name, data in shown)
    assert parse_sse(encoded) == shown
    hidden = [e for e in stream if isinstance(e, TextDelta | ThinkingDelta) and not e.text]
    assert len(shown) == len(stream) - len(hidden)
    words = {"stop", "length", "tool_calls", "content_filter"}
    assert all(data["finish_reason"] in words for name, data in shown if name == "done")
    # model "m" is in no price table: its cost is unknown (null), never zero
    assert all(data["cost"] is None for name, data in shown if name in {"usage", "done"})


@given(message=messages)
def test_a_stored_message_is_shown_with_every_call_and_result(message: Message) -> None:
    """role, visible text, and each tool call and result in order, as plain JSON."""
    shown = message_json(message)
    assert json.loads(json.dumps(shown)) == shown
    assert (shown["role"], shown["text"]) == (str(message.role), message.text)
    assert [c["id"] for c in shown["tool_calls"]] == [c.id for c in message.tool_calls]
    assert [(r["id"], r["result"], r["error"]) for r in shown["tool_results"]] == [
        (r.call_id, r.result, r.error) for r in message.tool_results
    ]


# --- through the app ------------------------------------------------------------------------


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An app with two tenants and saved sessions, shared by the examples of one test."""
    provider = FunctionProvider(
        lambda invocation: ScriptedReply(text=invocation.history[-1].text, chunks=4),
        name="openai",
    )
    container = build_test_app(
        provider,
        workspace=tmp_path,
        history_backend="database",
        data_dir=tmp_path / "data",
        server=api_keys(acme="acme-key-123", globex="globex-key-456") | {"max_body_bytes": 4096},
    )
    async with serving(container) as http:
        yield http


ACME = bearer("acme-key-123")
ENDPOINTS = ("/v1/chat/completions", "/v1/sessions", "/v1/sessions/x/messages")


def assert_error_body(response: httpx.Response) -> None:
    """A 4xx with exactly the OpenAI error shape."""
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code"}
    assert all(isinstance(value, str) and value for value in error.values())


@settings(max_examples=30)
@given(body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
async def test_any_malformed_body_is_a_4xx_error_body(
    client: httpx.AsyncClient, body: bytes
) -> None:
    """Random bytes posted to any endpoint that takes a body: a 4xx with the error shape."""
    try:
        json.loads(body)
        assume(False)
    except ValueError:
        pass
    for path in ENDPOINTS:
        response = await client.post(
            path, content=body, headers=ACME | {"content-type": "application/json"}
        )
        assert_error_body(response)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


@settings(max_examples=30)
@given(document=st.dictionaries(st.sampled_from(["model", "messages", "stream"]), json_values))
async def test_any_ill_typed_completion_request_is_a_4xx_error_body(
    client: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    """Well-formed JSON with missing or wrongly typed fields is a 4xx, never a 500."""
    response = await client.post("/v1/chat/completions", json=document, headers=ACME)
    if response.status_code != 200:
        assert_error_body(response)


@settings(max_examples=25)
@given(header=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60))
async def test_any_wrong_authorization_is_401(client: httpx.AsyncClient, header: str) -> None:
    """Whatever the Authorization header holds, unless it is a tenant's key, the call is 401."""
    assume(header.strip() not in {"Bearer acme-key-123", "Bearer globex-key-456"})
    response = await client.get("/v1/sessions", headers={"Authorization": header})
    assert response.status_code == 401
    assert_error_body(response)


@settings(max_examples=20)
@given(size=st.integers(3500, 4700))
async def test_a_body_is_refused_exactly_when_it_passes_the_limit(
    client: httpx.AsyncClient, size: int
) -> None:
    """max_body_bytes is 4096: longer bodies are 413, others are read (and judged)."""
    padding = size - len(b'{"content": ""}')
    body = b'{"content": "' + b"x" * padding + b'"}'
    headers = ACME | {"content-type": "application/json"}
    response = await client.post("/v1/sessions/none/messages", content=body, headers=headers)
    assert response.status_code == (413 if size > 4096 else 404)
    assert_error_body(response)


@settings(max_examples=15)
@given(text=st.text(min_size=1, max_size=80))
async def test_streamed_chunks_join_into_the_whole_answer(
    client: httpx.AsyncClient, text: str
) -> None:
    """The content of the streamed chunks is exactly the content answered whole."""
    body = {"model": "openai/m", "messages": [{"role": "user", "content": text}]}
    whole = (await client.post("/v1/chat/completions", json=body, headers=ACME)).json()
    streamed = await client.post("/v1/chat/completions", json=body | {"stream": True}, headers=ACME)
    chunks = [data for _, data in parse_sse(streamed.text) if data != "[DONE]"]
    joined = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert joined == whole["choices"][0]["message"]["content"] == text


tenants = st.sampled_from(["acme", "globex"])
operations = st.lists(
    st.tuples(st.sampled_from(["create", "read", "send", "delete"]), tenants, st.integers(0, 3)),
    max_size=10,
)
KEYS = {"acme": "acme-key-123", "globex": "globex-key-456"}


@settings(max_examples=12)
@given(script=operations)
async def test_tenants_see_only_their_own_sessions_under_any_interleaving(
    client: httpx.AsyncClient, script: list[tuple[str, str, int]]
) -> None:
    """Random creates, reads, messages and deletes by two tenants: an operation on a session
    succeeds exactly when the caller owns it, and each list is exactly the caller's."""
    start = {t: await listed(client, t) for t in KEYS}
    owned: dict[str, set[str]] = {t: set() for t in KEYS}
    made: list[tuple[str, str]] = []
    for operation, tenant, index in script:
        headers = bearer(KEYS[tenant])
        if operation == "create" or not made:
            created = await client.post("/v1/sessions", json={"model": "openai"}, headers=headers)
            made.append((tenant, created.json()["id"]))
            owned[tenant].add(made[-1][1])
            continue
        owner, session_id = made[index % len(made)]
        alive = session_id in owned[owner]
        response = await perform(client, operation, session_id, headers)
        assert response.status_code < 300 if owner == tenant and alive else 404
        if operation == "delete" and owner == tenant:
            owned[owner].discard(session_id)
    for tenant in KEYS:
        assert await listed(client, tenant) - start[tenant] == owned[tenant]


async def listed(client: httpx.AsyncClient, tenant: str) -> set[str]:
    """The ids of `tenant`'s sessions."""
    response = await client.get("/v1/sessions", headers=bearer(KEYS[tenant]))
    return {session["id"] for session in response.json()["data"]}


async def perform(
    client: httpx.AsyncClient, operation: str, session_id: str, headers: dict[str, str]
) -> httpx.Response:
    """Read, send a message to, or delete a session."""
    path = f"/v1/sessions/{session_id}"
    if operation == "read":
        return await client.get(path, headers=headers)
    if operation == "send":
        return await client.post(f"{path}/messages", json={"content": "hi"}, headers=headers)
    return await client.delete(path, headers=headers)


@settings(max_examples=15)
@given(secret=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=8))
async def test_a_provider_key_echoed_by_the_provider_is_never_shown(
    tmp_path: Path, secret: str
) -> None:
    """Whatever its shape, a key the provider puts in its error reaches neither the body of
    a whole answer nor the stream."""

    def refuse(invocation: ModelInvocation) -> list[Any]:
        raise AuthenticationFailedError(
            f"bad key {invocation.credentials.secret()}", provider="openai"
        )

    container = build_test_app(FunctionProvider(refuse, name="openai"), workspace=tmp_path)
    body = {"model": "openai", "messages": [{"role": "user", "content": "x"}]}
    async with serving(container) as http:
        for stream in (False, True):
            response = await http.post(
                "/v1/chat/completions",
                json=body | {"stream": stream},
                headers={"X-Provider-Key": secret},
            )
            assert secret not in response.text
            assert "[REDACTED]" in response.text
