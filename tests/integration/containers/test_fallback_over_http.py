"""Fallback chains over real 127.0.0.1 sockets: failover, round-robin and circuit breakers,
end to end through the application's containers, checked where it counts: at the servers."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers

from chatscope.config.settings import ExplicitSettings
from chatscope.containers import ApplicationContainer
from chatscope.errors import ProviderNetworkError
from chatscope.services.events import AnsweredBy, TextDelta, TurnDone
from chatscope.services.messages import Role
from chatscope.services.runtime.observability.telemetry import RecordingSink
from tests.support.cassettes import load_cassette
from tests.support.cli import openai_text_stream, openai_tool_call_stream
from tests.support.replay_server import (
    RecordedRequest,
    ReplayServer,
    ScriptedResponse,
    replay_server,
)

PRIMARY_KEY = "sk-primary-0123456789"
BACKUP_KEY = "sk-backup-0123456789"
ENVIRON = {"OPENAI_API_KEY": PRIMARY_KEY, "BACKUP_KEY": BACKUP_KEY}


def _unavailable(_: RecordedRequest) -> ScriptedResponse:
    return ScriptedResponse.json_body({"error": {"message": "overloaded"}}, 503)


def _hang_up(_: RecordedRequest) -> ScriptedResponse:
    return ScriptedResponse(drop_before_status=True)


def _answer(text: str) -> ScriptedResponse:
    return ScriptedResponse.sse(openai_text_stream(text))


def _key(request: RecordedRequest) -> str:
    headers = request.headers
    return headers.get("x-api-key") or headers["authorization"].removeprefix("Bearer ")


@pytest.fixture
def servers() -> Iterator[tuple[ReplayServer, ReplayServer, ReplayServer]]:
    """Three live servers, stopped after the test."""
    with replay_server() as one, replay_server() as two, replay_server() as three:
        yield one, two, three


def _member(server: ReplayServer, model: str, key_env: str, provider: str = "openai") -> Any:
    suffix = "/v1" if provider == "openai" else ""
    return {
        "provider": provider,
        "model": model,
        "base_url": server.url + suffix,
        "api_key_env": key_env,
    }


async def _start(
    stack: AsyncExitStack,
    tmp_path: Path,
    primary: ReplayServer,
    members: list[Any],
    *,
    mode: str = "failover",
    environ: dict[str, str] = ENVIRON,
    **fallback: Any,
) -> tuple[ApplicationContainer, RecordingSink]:
    """An application whose default endpoint is `primary`, falling back to `members`."""
    tmp_path.mkdir(exist_ok=True)  # noqa: ASYNC240 - a test's own directory, before any turn
    settings = ExplicitSettings(
        workspace=tmp_path,
        provider="openai",
        model="primary-model",
        providers={"openai": {"base_url": primary.url + "/v1"}},
        retry={"max_attempts": 2, "initial_delay": 0.001, "max_delay": 0.002},
        fallback={"mode": mode, "members": members, **fallback},
    )
    app = ApplicationContainer(settings=settings, environ=environ)
    sink = RecordingSink()
    app.telemetry_sink.override(providers.Object(sink))
    await app.init_resources()  # type: ignore[misc]
    stack.push_async_callback(app.shutdown_resources)  # type: ignore[arg-type]
    return app, sink


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    """Shuts the test's applications down after it."""
    async with AsyncExitStack() as exits:
        yield exits


async def _send(app: ApplicationContainer, prompt: str = "hi") -> Any:
    context = app.runtime.scopes().foreground()
    chat = app.runtime.chat_session(context=context)
    return await chat.send(prompt), context


@pytest.mark.parametrize("fault", [_unavailable, _hang_up], ids=["503", "drop-before-first-byte"])
async def test_a_failing_primary_hands_the_turn_to_the_secondary(
    servers: tuple[ReplayServer, ...],
    stack: AsyncExitStack,
    tmp_path: Path,
    fault: Any,
) -> None:
    """After its own retries, the primary's failure moves the turn to the secondary, which
    answers with its own model and key; the switch is reported and the turn stored whole."""
    primary, secondary, _ = servers
    primary.respond_with(fault)
    secondary.respond_with(lambda _: _answer("from the backup"))
    app, sink = await _start(stack, tmp_path, primary, [_member(secondary, "backup", "BACKUP_KEY")])
    turn, context = await _send(app)
    assert turn.text == "from the backup"
    assert turn.answered_by == AnsweredBy("openai", "backup", 1)
    assert len(primary.requests) == 2  # the primary's own retries first
    assert {_key(request) for request in primary.requests} == {PRIMARY_KEY}
    [sent] = secondary.requests
    assert _key(sent) == BACKUP_KEY
    assert sent.json()["model"] == "backup"
    [switch] = sink.named("provider_switch")
    reason = "overloaded" if fault is _unavailable else "network"
    assert (switch["from"], switch["to"], switch["reason"]) == (
        "openai:primary-model",
        "openai:backup",
        reason,
    )
    assert [m.role for m in await context.history.messages()] == [Role.USER, Role.ASSISTANT]


async def test_failover_to_another_provider_answers_with_its_recorded_stream(
    servers: tuple[ReplayServer, ...], stack: AsyncExitStack, tmp_path: Path
) -> None:
    """A secondary of another wire format (Anthropic, replaying recorded traffic) answers in
    its own format, with its own key header."""
    primary, secondary, _ = servers
    [recorded] = load_cassette("anthropic/test_stream_events_text.yaml")
    primary.respond_with(_unavailable)
    secondary.respond_with(lambda _: ScriptedResponse.sse(recorded.body))
    member = _member(secondary, "claude-haiku-4-5", "BACKUP_KEY", provider="anthropic")
    app, _ = await _start(stack, tmp_path, primary, [member])
    turn, _ = await _send(app)
    assert turn.answered_by == AnsweredBy("anthropic", "claude-haiku-4-5", 1)
    assert turn.text
    [sent] = secondary.requests
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == BACKUP_KEY
    assert "authorization" not in sent.headers


async def test_a_drop_after_partial_output_fails_the_turn_without_a_switch(
    servers: tuple[ReplayServer, ...], stack: AsyncExitStack, tmp_path: Path
) -> None:
    """Output already shown cannot be taken back: the typed error is raised, no other member is
    asked, and history holds no half turn."""
    primary, secondary, _ = servers
    body = openai_text_stream("shown ", "then cut")
    primary.respond_with(lambda _: ScriptedResponse.sse(body, drop_after=1))
    secondary.respond_with(lambda _: _answer("never"))
    app, sink = await _start(stack, tmp_path, primary, [_member(secondary, "backup", "BACKUP_KEY")])
    context = app.runtime.scopes().foreground()
    chat = app.runtime.chat_session(context=context)
    shown: list[str] = []

    async def read() -> None:
        async for event in chat.stream("hi"):
            if isinstance(event, TextDelta):
                shown.append(event.text)

    with pytest.raises(ProviderNetworkError):
        await read()
    assert shown == ["shown "]
    assert len(primary.requests) == 1
    assert secondary.requests == []
    assert sink.named("provider_switch") == []
    assert await context.history.messages() == ()


async def test_a_member_that_keeps_failing_rests_for_its_cool_down(
    servers: tuple[ReplayServer, ...], stack: AsyncExitStack, tmp_path: Path
) -> None:
    """After `failure_threshold` failed turns the primary is skipped, by every scope of the
    application, until its cool-down is over; the skip is reported as `circuit_open`."""
    primary, secondary, _ = servers
    primary.respond_with(_unavailable)
    secondary.respond_with(lambda _: _answer("ok"))
    app, sink = await _start(
        stack,
        tmp_path,
        primary,
        [_member(secondary, "backup", "BACKUP_KEY")],
        failure_threshold=2,
        cooldown_seconds=3600,
    )
    for _ in range(2):
        await _send(app)
    assert len(primary.requests) == 4
    for _ in range(3):
        turn, _ = await _send(app)
        assert turn.answered_by == AnsweredBy("openai", "backup", 1)
    assert len(primary.requests) == 4
    reasons = [event["reason"] for event in sink.named("provider_switch")]
    assert reasons == ["overloaded", "overloaded", "circuit_open", "circuit_open", "circuit_open"]


async def test_round_robin_spreads_300_turns_evenly_over_three_servers(
    servers: tuple[ReplayServer, ReplayServer, ReplayServer],
    stack: AsyncExitStack,
    tmp_path: Path,
) -> None:
    """Turns from many scopes at once start at each member in turn: within 10% of even."""
    one, two, three = servers
    for server, text in ((one, "one"), (two, "two"), (three, "three")):
        server.respond_with(lambda _, text=text: _answer(text))  # type: ignore[misc]
    environ = {**ENVIRON, "THIRD_KEY": "sk-third-0123456789"}
    members = [_member(two, "m2", "BACKUP_KEY"), _member(three, "m3", "THIRD_KEY")]
    app, sink = await _start(stack, tmp_path, one, members, mode="round-robin", environ=environ)
    answered: list[int | None] = []
    for _ in range(10):
        turns = await asyncio.gather(*(_send(app) for _ in range(30)))
        answered.extend(turn.answered_by.member for turn, _ in turns)
    counts = [len(server.requests) for server in (one, two, three)]
    assert sum(counts) == 300
    for count in counts:
        assert abs(count - 100) <= 10, counts
    assert set(answered) == {0, 1, 2}
    assert sink.named("provider_switch") == []


async def test_two_applications_at_once_share_no_breaker_state_and_no_keys(
    servers: tuple[ReplayServer, ...], stack: AsyncExitStack, tmp_path: Path
) -> None:
    """Two applications with the same chain shape (same servers, same key variables) but their
    own keys run at once: the primary fails only one application's calls, and only that one's
    breaker opens; every request carries its own application's key for that server."""
    primary, secondary, _ = servers
    keys_a = {"OPENAI_API_KEY": "sk-a-primary-000000", "BACKUP_KEY": "sk-a-backup-0000000"}
    keys_b = {"OPENAI_API_KEY": "sk-b-primary-000000", "BACKUP_KEY": "sk-b-backup-0000000"}
    primary.respond_with(
        lambda request: _unavailable(request) if "-a-" in _key(request) else _answer("primary")
    )
    secondary.respond_with(lambda _: _answer("backup"))
    members = [_member(secondary, "backup", "BACKUP_KEY")]
    options: dict[str, Any] = {"failure_threshold": 1, "cooldown_seconds": 3600}
    app_a, sink_a = await _start(stack, tmp_path / "a", primary, members, environ=keys_a, **options)
    app_b, sink_b = await _start(stack, tmp_path / "b", primary, members, environ=keys_b, **options)
    first, _ = await _send(app_a)  # A's primary fails once: A's circuit opens
    assert first.answered_by == AnsweredBy("openai", "backup", 1)
    results = await asyncio.gather(*(_send(app) for _ in range(20) for app in (app_a, app_b)))
    by_app = {"a": [turn for turn, _ in results[0::2]], "b": [turn for turn, _ in results[1::2]]}
    assert {turn.answered_by.member for turn in by_app["a"]} == {1}
    assert {turn.answered_by.member for turn in by_app["b"]} == {0}
    assert sink_b.named("provider_switch") == []
    reasons = [event["reason"] for event in sink_a.named("provider_switch")]
    assert reasons == ["overloaded"] + ["circuit_open"] * 20
    primary_keys = [_key(request) for request in primary.requests]
    assert primary_keys.count(keys_b["OPENAI_API_KEY"]) == 20
    assert primary_keys.count(keys_a["OPENAI_API_KEY"]) == 2  # then its circuit is open
    assert set(primary_keys) <= {keys_a["OPENAI_API_KEY"], keys_b["OPENAI_API_KEY"]}
    assert {_key(request) for request in secondary.requests} == {keys_a["BACKUP_KEY"]}


_ANTHROPIC_ID = re.compile(r"[A-Za-z0-9_-]+")


async def test_a_switch_mid_turn_keeps_the_history_valid_for_the_new_provider(
    servers: tuple[ReplayServer, ...], stack: AsyncExitStack, tmp_path: Path
) -> None:
    """The primary asks for a tool and then fails; the Anthropic secondary gets the turn's
    tool call and result paired under an id its wire accepts, and the turn is stored whole."""
    primary, secondary, _ = servers
    call = openai_tool_call_stream("call:odd/id#1", "list_directory", {"path": "."})
    primary.enqueue(ScriptedResponse.sse(call))
    primary.respond_with(_unavailable)
    [recorded] = load_cassette("anthropic/test_stream_events_text.yaml")
    secondary.respond_with(lambda _: ScriptedResponse.sse(recorded.body))
    member = _member(secondary, "claude-haiku-4-5", "BACKUP_KEY", provider="anthropic")
    app, _ = await _start(stack, tmp_path, primary, [member])
    context = app.runtime.scopes().foreground()
    chat = app.runtime.chat_session(context=context)
    events = [event async for event in chat.stream("what is here?")]
    done = events[-1]
    assert isinstance(done, TurnDone)
    assert done.turn.answered_by == AnsweredBy("anthropic", "claude-haiku-4-5", 1)
    [sent] = secondary.requests
    messages = sent.json()["messages"]
    [use] = [
        b
        for m in messages
        if isinstance(m["content"], list)
        for b in m["content"]
        if b["type"] == "tool_use"
    ]
    [result] = [
        b
        for m in messages
        if isinstance(m["content"], list)
        for b in m["content"]
        if b["type"] == "tool_result"
    ]
    assert _ANTHROPIC_ID.fullmatch(use["id"])
    assert result["tool_use_id"] == use["id"]
    stored = await context.history.messages()
    assert [m.role for m in stored] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]
    assert json.dumps(sent.json()).count(BACKUP_KEY) == 0
