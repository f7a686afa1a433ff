"""Properties of how the HTTP layer runs and shows turns: feeds, limits, error mapping, the
Chat Completions bodies, chunked uploads, and scopes kept apart under concurrent requests."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from chatscope.adapters.storage.sql_history import SqlHistoryStore, session_title
from chatscope.cli.serve import check_exposure, print_key_hash
from chatscope.config.settings import PROVIDER_NAMES, ExplicitSettings, ServerSettings
from chatscope.errors import (
    AuthenticationFailedError,
    AuthenticationRequiredError,
    ChatscopeError,
    ConfigurationError,
    HistoryStoreError,
    OutputValidationError,
    RateLimitError,
    ServerError,
    UnknownProviderError,
    UnknownSessionError,
)
from chatscope.services.events import (
    CompletedTurn,
    FinishEvent,
    FinishReason,
    TextDelta,
    TurnDone,
    UsageEvent,
)
from chatscope.services.frozen import thaw
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.messages import Message, Role, Usage
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.testing import FunctionProvider, build_test_app
from chatscope.web import hash_key
from chatscope.web.completions import completion_body, sse_data
from chatscope.web.errors import ApiError, api_error_of
from chatscope.web.scopes import ChatMessage, read_conversation, resolve_model, scope_request
from chatscope.web.sessions import message_json
from chatscope.web.tenancy import ServerState, is_loopback
from chatscope.web.turns import TurnFeed, TurnLimiter, Turns
from tests.support.adapter_helpers import JSON_OBJECTS, JSON_VALUES
from tests.support.message_strategies import turns
from tests.support.web import bearer, parse_sse, serving

SETTINGS = ExplicitSettings(workspace=Path("/nonexistent"))
texts = st.text(max_size=30)
secrets = st.from_regex(r"sk-[A-Za-z0-9]{4}_[A-Za-z0-9]{12}", fullmatch=True)


# --- mapping --------------------------------------------------------------------------------


@given(provider=st.sampled_from(PROVIDER_NAMES), model=st.none() | st.text(min_size=1))
def test_an_explicit_provider_takes_the_model_as_it_is(provider: str, model: str | None) -> None:
    """With `provider` named, `model` is that provider's model verbatim (default if None)."""
    choice = resolve_model(model, provider, settings=SETTINGS, profiles={})
    assert (choice.provider, choice.model) == (provider, model or SETTINGS.model_for(provider))


@given(provider=st.text(max_size=20).filter(lambda name: name not in PROVIDER_NAMES))
def test_an_unknown_provider_is_model_not_found(provider: str) -> None:
    """A provider no adapter answers to is a 404, whatever the model."""
    with pytest.raises(ApiError) as caught:
        resolve_model("m", provider, settings=SETTINGS, profiles={})
    assert caught.value.code == "model_not_found"


@given(parts=st.lists(texts, max_size=5), other=st.sampled_from(["image_url", "input_audio"]))
def test_content_parts_join_and_other_kinds_are_refused(parts: list[str], other: str) -> None:
    """Text parts join into the message's text; any part of another kind is a 400."""
    content = [{"type": "text", "text": part} for part in parts]
    assert ChatMessage.model_validate({"role": "user", "content": content}).text() == "".join(parts)
    mixed = [*content, {"type": other, other: {"url": "x"}}]
    with pytest.raises(ApiError) as caught:
        ChatMessage.model_validate({"role": "user", "content": mixed}).text()
    assert caught.value.status == 400


@given(calls=st.lists(st.tuples(texts, JSON_OBJECTS, texts), min_size=1, max_size=4))
def test_parallel_tool_results_become_one_tool_message_in_call_order(
    calls: list[tuple[str, dict[str, Any], str]],
) -> None:
    """An assistant message with several calls, answered by one tool message each, maps to one
    assistant message and one TOOL message holding every result in order."""
    ids = [f"call_{index}" for index in range(len(calls))]
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": i, "function": {"name": name or "f", "arguments": json.dumps(arguments)}}
            for i, (name, arguments, _) in zip(ids, calls, strict=True)
        ],
    }
    results = [
        {"role": "tool", "tool_call_id": i, "content": output}
        for i, (_, _, output) in zip(ids, calls, strict=True)
    ]
    raw = [{"role": "user", "content": "go"}, assistant, *results, {"role": "user", "content": "?"}]
    history = read_conversation([ChatMessage.model_validate(m) for m in raw]).history
    assert [m.role for m in history] == [Role.USER, Role.ASSISTANT, Role.TOOL]
    assert [(c.name, thaw(c.arguments)) for c in history[1].tool_calls] == [
        (name or "f", arguments) for name, arguments, _ in calls
    ]
    assert [(r.call_id, r.name, r.result) for r in history[2].tool_results] == [
        (i, name or "f", output) for i, (name, _, output) in zip(ids, calls, strict=True)
    ]


@given(
    text=texts,
    usage=st.builds(Usage, st.integers(0, 10**7), st.integers(0, 10**7)),
    reason=st.sampled_from(FinishReason),
)
def test_a_completion_body_is_plain_json_with_consistent_usage(
    text: str, usage: Usage, reason: FinishReason
) -> None:
    """The whole answer: one assistant choice with the turn's text, usage summed right."""
    turn = CompletedTurn(text, (), (), usage, reason, 1)
    body = completion_body("chatcmpl-x", 1, "m", turn)
    assert json.loads(json.dumps(body)) == body
    assert body["choices"][0]["message"] == {"role": "assistant", "content": text}
    assert body["usage"]["total_tokens"] == usage.input_tokens + usage.output_tokens


@given(payloads=st.lists(JSON_OBJECTS, max_size=5))
def test_data_events_parse_back_to_their_payloads(payloads: list[dict[str, Any]]) -> None:
    """Any JSON object, newlines and all, is one `data:` event that parses back unchanged."""
    encoded = "".join(sse_data(payload) for payload in payloads)
    assert [data for _, data in parse_sse(encoded)] == payloads


# --- failures -------------------------------------------------------------------------------

failures = st.sampled_from(
    [
        lambda m: UnknownSessionError(m),
        lambda m: UnknownProviderError(m, ("openai",)),
        lambda m: AuthenticationRequiredError(m, ("OPENAI_API_KEY",)),
        lambda m: AuthenticationFailedError(m, provider="openai", status=401),
        lambda m: RateLimitError(m, provider="openai", status=429),
        lambda m: ServerError(m, provider="openai"),
        lambda m: OutputValidationError("Schema", m, m, attempts=2),
        lambda m: HistoryStoreError(m),
        lambda m: ConfigurationError(m),
        lambda m: ChatscopeError(m),
        lambda m: RuntimeError(m),
        lambda m: ValueError(m),
    ]
)


@given(make=failures, text=texts, secret=secrets)
def test_every_failure_maps_to_an_error_body_without_the_key(
    make: Any, text: str, secret: str
) -> None:
    """Any failure, holding the request's provider key in its text, becomes an error with a
    status, the three-field body, and no key; only chatscope's own errors say more than
    'failed'."""
    error = make(f"{text} {secret}")
    api = api_error_of(error, secret)
    assert 400 <= api.status < 600
    assert set(api.body()["error"]) == {"message", "type", "code"}
    assert secret not in json.dumps(api.body())
    if not isinstance(error, ChatscopeError):
        assert (api.status, api.code) == (500, "internal_error")


# --- feeds and limits -----------------------------------------------------------------------

feed_items = st.lists(st.text(max_size=5).map(TextDelta), max_size=8)


@given(items=feed_items, ending=st.sampled_from(["done", "error", "nothing"]))
async def test_a_feed_hands_on_its_events_in_order_and_ends_with_its_outcome(
    items: list[TextDelta], ending: str
) -> None:
    """Events come out as they went in; `result` is the turn, the error, or a 500."""
    turn = CompletedTurn("t", (), (), Usage(), FinishReason.STOP, 1)
    endings: dict[str, list[Any]] = {
        "done": [TurnDone(turn)],
        "error": [ApiError(502, "x")],
        "nothing": [],
    }
    last = endings[ending]
    feed, again = TurnFeed(), TurnFeed()
    for item in (*items, *last):
        feed.put(item)
        again.put(item)
    feed.close()
    again.close()
    assert [item async for item in feed] == [*items, *last]
    if ending == "done":
        assert await again.result() is turn
    else:
        with pytest.raises(ApiError) as caught:
            await again.result()
        assert caught.value.status == (502 if ending == "error" else 500)


@given(script=st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 2), st.booleans())))
def test_a_session_runs_one_turn_at_a_time(script: list[tuple[str, int, bool]]) -> None:
    """Acquiring a busy session is 409 until its slot is released; other sessions are free."""
    limiter = TurnLimiter(100)
    held: dict[int, Any] = {}
    for tenant, session, acquire in script:
        name = f"s{session}"
        if acquire and session in held:
            with pytest.raises(ApiError) as caught:
                limiter.acquire(tenant, session_id=name)
            assert caught.value.status == 409
        elif acquire:
            held[session] = limiter.acquire(tenant, session_id=name)
        elif session in held:
            held.pop(session).release()
    assert sum(limiter.running(t) for t in "ab") == len(held)


# --- through the app ------------------------------------------------------------------------


@settings(max_examples=20)
@given(sizes=st.lists(st.integers(1, 700), min_size=1, max_size=12))
async def test_a_chunked_body_is_refused_once_it_passes_the_limit_however_it_is_cut(
    tmp_path: Path, sizes: list[int]
) -> None:
    """Without a declared length, the body's bytes are counted as they arrive: 413 exactly
    when they add up to more than max_body_bytes."""
    container = build_test_app(workspace=tmp_path, server={"max_body_bytes": 2048})
    total = sum(sizes)
    body = (b'{"x": "' + b"y" * total + b'"}')[:total]

    async def pieces() -> AsyncIterator[bytes]:
        start = 0
        for size in sizes:
            yield body[start : start + size]
            start += size

    async with serving(container) as http:
        response = await http.post(
            "/v1/chat/completions", content=pieces(), headers={"content-type": "application/json"}
        )
    assert (response.status_code == 413) == (total > 2048)
    assert set(response.json()["error"]) == {"message", "type", "code"}


@settings(max_examples=10)
@given(
    requests=st.lists(
        st.tuples(st.text(min_size=1, max_size=12), st.from_regex(r"k[0-9a-z]{6}", fullmatch=True)),
        min_size=2,
        max_size=8,
    )
)
async def test_concurrent_requests_each_reach_the_model_with_their_own_parts(
    tmp_path: Path, requests: list[tuple[str, str]]
) -> None:
    """Any set of concurrent completions: each model call has its request's model, key and
    prompt, and each answer names only its own."""

    async def answer(invocation: ModelInvocation) -> list[Any]:
        await asyncio.sleep(0)
        said = f"{invocation.model}|{invocation.credentials.secret()}"
        return [TextDelta(said), UsageEvent(Usage(1, 1)), FinishEvent(FinishReason.STOP)]

    provider = FunctionProvider(answer, name="openai")
    container = build_test_app(provider, workspace=tmp_path, server={"max_turns_per_tenant": 64})

    async def ask(index: int, model: str, key: str) -> str:
        body = {"model": f"openai/{model}", "messages": [{"role": "user", "content": str(index)}]}
        response = await http.post(
            "/v1/chat/completions", json=body, headers={"X-Provider-Key": key}
        )
        return str(response.json()["choices"][0]["message"]["content"])

    async with serving(container) as http:
        answers = await asyncio.gather(*(ask(i, m, k) for i, (m, k) in enumerate(requests)))
    assert answers == [f"{model}|{key}" for model, key in requests]
    for invocation in provider.invocations:
        model, key = requests[int(invocation.history[-1].text)]
        assert (invocation.model, invocation.credentials.secret()) == (model, key)


@settings(max_examples=10)
@given(conversation=st.lists(turns, min_size=1, max_size=3))
async def test_a_stored_session_reads_back_over_http_message_for_message(
    tmp_path: Path, conversation: list[list[Message]]
) -> None:
    """Whatever turns a session holds, GET shows each message as `message_json` shows it,
    with the first prompt as title and the number of turns."""
    container = build_test_app(
        workspace=tmp_path, history_backend="database", data_dir=tmp_path / "data"
    )
    async with serving(container) as http:
        response = await http.post("/v1/sessions", json={})
        assert response.status_code == 201, response.text
        created = response.json()
        store = SqlHistoryStore(container.storage.database(), session_id=created["id"])
        for turn in conversation:
            await store.append_turn(turn)
        read = (await http.get(f"/v1/sessions/{created['id']}", headers=bearer("x"))).json()
    stored = [message for turn in conversation for message in turn]
    assert read["messages"] == [message_json(message) for message in stored]
    assert (read["turns"], read["title"]) == (len(conversation), session_title(conversation[0]))


@settings(max_examples=8)
@given(values=st.lists(JSON_VALUES, max_size=3))
async def test_unknown_fields_of_a_request_are_ignored(tmp_path: Path, values: list[Any]) -> None:
    """Fields chatscope does not read (an SDK's extras) never make a valid request fail."""
    extras = {f"extra_{index}": value for index, value in enumerate(values)}
    body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], **extras}
    async with serving(build_test_app(workspace=tmp_path)) as http:
        response = await http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text


# --- the server's set-up --------------------------------------------------------------------


@given(name=st.text(max_size=70))
def test_tenant_names_are_plain_words(name: str) -> None:
    """A tenant name is 1-64 letters, digits, `_`, `.` or `-`, not starting with a sign."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        assert list(ServerSettings(api_keys={name: hash_key("k")}).api_keys) == [name]
        return
    with pytest.raises(ValidationError, match="tenant name"):
        ServerSettings(api_keys={name: hash_key("k")})


@given(host=st.ip_addresses().map(str) | st.text(max_size=20), keyed=st.booleans())
def test_a_keyless_server_is_refused_exactly_off_loopback(host: str, keyed: bool) -> None:
    """`serve` refuses a host only when no key is configured and the host is not loopback."""
    keys = {"acme": hash_key("k")} if keyed else {}
    if keyed or is_loopback(host):
        check_exposure(host, keys)
        return
    with pytest.raises(ConfigurationError, match=re.escape(repr(host))):
        check_exposure(host, keys)


@given(key=st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r")))
def test_hash_key_reads_the_first_line_of_stdin_trimmed(key: str) -> None:
    """What `serve --hash-key` prints is the hash of the first line, blanks trimmed; a blank
    first line is refused."""
    line = key.split("\n", 1)[0].strip()
    out = io.StringIO()
    if not line:
        with pytest.raises(ConfigurationError):
            print_key_hash(io.StringIO(key), out)
        return
    assert print_key_hash(io.StringIO(key + "\n"), out) == 0
    assert out.getvalue() == hash_key(line) + "\n"


@settings(max_examples=15)
@given(finishing=st.lists(st.booleans(), min_size=1, max_size=6))
async def test_stopping_finishes_or_cancels_every_turn_whole(
    tmp_path: Path, finishing: list[bool]
) -> None:
    """Turns that can finish within the grace period end with `TurnDone`; the others are
    cancelled and end with the 503 that says nothing was stored; every slot comes back."""
    blocked = asyncio.Event()

    async def answer(invocation: ModelInvocation) -> list[Any]:
        if invocation.history[-1].text == "block":
            await blocked.wait()
        return [TextDelta("ok"), FinishEvent(FinishReason.STOP)]

    container = build_test_app(FunctionProvider(answer, name="openai"), workspace=tmp_path)
    server = ServerState(container)
    limiter, turns_running = TurnLimiter(len(finishing)), Turns()
    feeds = []
    for finishes in finishing:
        request = ScopeRequest.create(provider="openai", model="m", history=InMemoryHistory())
        chat = server.open_chat(request)
        slot = limiter.acquire("t")
        feeds.append(turns_running.start(chat, "go" if finishes else "block", slot=slot))
    await turns_running.drain(0.2)
    for finishes, feed in zip(finishing, feeds, strict=True):
        last = [item async for item in feed][-1]
        if finishes:
            assert isinstance(last, TurnDone)
        else:
            assert isinstance(last, ApiError)
            assert (last.status, last.code) == (503, "shutting_down")
    assert limiter.running("t") == 0
    assert len(turns_running) == 0


@given(
    provider=st.sampled_from(PROVIDER_NAMES),
    model=st.text(min_size=1, max_size=10),
    temperature=st.none() | st.floats(0, 2),
)
def test_a_plain_model_choice_adds_nothing_a_profile_would(
    provider: str, model: str, temperature: float | None
) -> None:
    """`provider/model` scopes have no allow-list, endpoint, key source or MCP limit of their
    own: those come from settings, as for a CLI chat; only the request's sampling is added."""
    choice = resolve_model(f"{provider}/{model}", None, settings=SETTINGS, profiles={})
    request = scope_request(choice, tenant="t", overrides={"temperature": temperature})
    assert (request.allowed_tools, request.base_url, request.key_file) == (None, None, None)
    assert (request.api_key_env, request.mcp_servers, request.system_prompt) == (None, None, None)
    expected = {} if temperature is None else {"temperature": temperature}
    assert dict(request.model_params) == expected
