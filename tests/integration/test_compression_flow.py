"""Compression and tool-pair repair through the containers, as an application runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from dependency_injector import providers

from chatscope.config.settings import CompressionSettings
from chatscope.containers import ApplicationContainer
from chatscope.errors import InvalidRequestError
from chatscope.services.chat.session import ChatSession
from chatscope.services.history.compression import HistoryCompressor
from chatscope.services.history.summariser import SUMMARY_SYSTEM_PROMPT
from chatscope.services.messages import Message, Usage, estimate_tokens
from chatscope.services.runtime.context import AgentRuntimeContext
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.testing import FunctionProvider, ScriptedReply, build_test_app
from chatscope.testing.fakes import ScriptedProvider
from tests.support.adapter_helpers import recording_client
from tests.support.histories import (
    assert_wire_paired,
    calling,
    reply,
    results,
    user,
    wire_items,
)
from tests.support.streams import minimal_stream

# Threshold 0.5 x 1000 = 500 tokens; a turn below costs about 62.
EPHEMERALS = {"context-limit": 1000, "compression-threshold": 0.5, "compression-min-age": 2}
THRESHOLD = 500


class FakeModel:
    """Answers chat calls with usage matching the history sent; answers summary requests too."""

    def __init__(self, summary_error: Exception | None = None) -> None:
        self.summary_error = summary_error
        self.summary_calls: list[ModelInvocation] = []
        self.chat_calls: list[ModelInvocation] = []

    def __call__(self, invocation: ModelInvocation) -> ScriptedReply:
        if invocation.system_prompt == SUMMARY_SYSTEM_PROMPT:
            self.summary_calls.append(invocation)
            if self.summary_error is not None:
                raise self.summary_error
            return ScriptedReply(text="SUMMARY: the user asked many questions")
        self.chat_calls.append(invocation)
        answer = f"<a{len(self.chat_calls) - 1}> " + "y" * 120
        usage = Usage(estimate_tokens(invocation.history), estimate_tokens((reply(answer),)))
        return ScriptedReply(text=answer, usage=usage)


def _app(
    tmp_path: Path, model: FakeModel, **compression: Any
) -> tuple[ApplicationContainer, RecordingSink]:
    sink = RecordingSink()
    compression.setdefault("failure_cooldown_seconds", 0)
    app = build_test_app(
        FunctionProvider(model), workspace=tmp_path, ephemeral=EPHEMERALS, compression=compression
    )
    app.telemetry_sink.override(providers.Object(sink))
    return app, sink


def _prompt(index: int) -> str:
    return f"<q{index}> " + "x" * 120


async def _chat_until_over_threshold(
    app: ApplicationContainer, model: FakeModel, allowed: int = 0
) -> tuple[AgentRuntimeContext, ChatSession, int]:
    """Send turns in a new chat until one starts over the threshold; no summary is asked meanwhile.

    `allowed` is the number of summary calls other chats made before.
    """
    context = app.runtime.scopes().foreground()
    chat = app.runtime.chat_session(context=context)
    for index in range(40):
        tokens = await context.history.token_count()
        if tokens >= THRESHOLD:
            return context, chat, index
        await chat.send(_prompt(index))
        assert len(model.summary_calls) == allowed
    raise AssertionError("history never reached the threshold")


async def test_compression_triggers_at_the_threshold(tmp_path: Path) -> None:
    """The first turn that starts at the threshold summarises the middle, then answers."""
    model = FakeModel()
    app, sink = _app(tmp_path, model)
    context, chat, index = await _chat_until_over_threshold(app, model)
    tokens_before = await context.history.token_count()
    turn = await chat.send(_prompt(index))
    assert turn.text.startswith(f"<a{index}>")
    [summary_call] = model.summary_calls
    transcript = summary_call.history[0].text
    assert "<q1>" in transcript
    assert "<q0>" not in transcript
    assert f"<q{index - 2}>" not in transcript
    sent = model.chat_calls[-1].history
    assert sent[0].text.startswith("<q0>")
    assert sent[1].text.startswith("<a0>")
    assert "SUMMARY: the user asked many questions" in sent[2].text
    assert sent[-1] == Message.user(_prompt(index))
    [event] = sink.named("history_compressed")
    assert event["tokens_before"] == tokens_before >= THRESHOLD
    assert event["tokens_after"] < THRESHOLD
    assert event["session_id"] == context.state.session_id
    assert (await context.history.messages())[: len(sent)] == sent


async def test_a_failed_summary_leaves_history_unchanged_and_the_chat_answers(
    tmp_path: Path,
) -> None:
    """The summary call is refused; the turn is still answered and history only grows by it."""
    model = FakeModel(InvalidRequestError("prompt is too long", provider="demo", status=400))
    app, sink = _app(tmp_path, model)
    context, chat, index = await _chat_until_over_threshold(app, model)
    before = await context.history.messages()
    turn = await chat.send(_prompt(index))
    assert turn.text.startswith(f"<a{index}>")
    assert len(model.summary_calls) == 1
    assert await context.history.messages() == (*before, user(_prompt(index)), reply(turn.text))
    [failed] = sink.named("compression_failed")
    assert failed["error_type"] == "InvalidRequestError"
    assert failed["runtime_id"] == context.runtime_id


async def test_after_a_failure_the_cooldown_is_respected(tmp_path: Path) -> None:
    """Two turns wait after each failure; the third tries again and, once it works, compresses."""
    model = FakeModel(InvalidRequestError("refused", provider="demo", status=400))
    app, sink = _app(tmp_path, model, failure_cooldown_turns=2)
    _, chat, index = await _chat_until_over_threshold(app, model)
    asked: list[int] = []
    for offset in range(7):
        if offset == 6:
            model.summary_error = None
        await chat.send(_prompt(index + offset))
        asked.append(len(model.summary_calls))
    assert asked == [1, 1, 1, 2, 2, 2, 3]
    reasons = [event["reason"] for event in sink.named("compression_skipped")]
    assert reasons == ["cooling_down"] * 4
    assert len(sink.named("compression_failed")) == 2
    assert len(sink.named("history_compressed")) == 1


async def test_each_chat_has_its_own_cooldown(tmp_path: Path) -> None:
    """One chat's failed compression does not make another chat of the same app wait."""
    model = FakeModel(InvalidRequestError("refused", provider="demo", status=400))
    app, sink = _app(tmp_path, model, failure_cooldown_turns=100)
    for expected_calls in (1, 2):
        _, chat, index = await _chat_until_over_threshold(app, model, allowed=expected_calls - 1)
        await chat.send(_prompt(index))
        assert len(model.summary_calls) == expected_calls
    assert sink.named("compression_skipped") == []


async def test_the_compressor_can_be_overridden_with_an_injected_clock(tmp_path: Path) -> None:
    """Overriding `runtime.compressor` puts a fake summariser and clock into every chat."""
    now = [0.0]
    calls: list[int] = []

    async def summarise(messages: tuple[Message, ...], context: AgentRuntimeContext) -> str:
        calls.append(len(messages))
        if now[0] < 100:
            raise InvalidRequestError("not yet", provider="demo", status=400)
        return "fine now"

    model = FakeModel()
    app, sink = _app(tmp_path, model)
    policy = CompressionSettings(failure_cooldown_turns=0, failure_cooldown_seconds=100)
    app.runtime.compressor.override(
        providers.Factory(HistoryCompressor, summarise, settings=policy, clock=lambda: now[0])
    )
    _, chat, index = await _chat_until_over_threshold(app, model)
    for offset in range(3):
        await chat.send(_prompt(index + offset))
    assert len(calls) == 1
    now[0] = 100.0
    await chat.send(_prompt(index + 3))
    assert len(calls) == 2
    assert model.summary_calls == []
    assert len(sink.named("history_compressed")) == 1


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
async def test_an_orphaned_call_is_repaired_in_the_request_on_the_wire(
    tmp_path: Path, provider: str
) -> None:
    """A resumed history with an unanswered call and a stray result still makes a valid request."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = minimal_stream(provider, "fine")
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    app = build_test_app(
        workspace=tmp_path,
        provider=provider,
        providers={provider: {"base_url": "http://127.0.0.1:9"}},
    )
    app.model_providers.http_client.override(providers.Object(recording_client(answer, seen)))
    context = app.runtime.scopes().foreground()
    orphan = calling("a", "b", text="checking")
    await context.history.append_turn([user("q0"), orphan, user("q1"), reply("a1"), results("z")])
    turn = await app.runtime.chat_session(context=context).send("q2")
    assert turn.text == "fine"
    items = wire_items(provider, json.loads(seen[0].content))
    assert_wire_paired(items)
    assert [
        key for kind, key in items if kind in {"result", "tool_result", "functionResponse"}
    ] == [
        "a",
        "b",
    ]


async def test_a_scripted_provider_sees_the_synthetic_results(tmp_path: Path) -> None:
    """The neutral history a provider receives carries an error result for the orphaned call."""
    provider = ScriptedProvider([ScriptedReply(text="ok")])
    app = build_test_app(provider, workspace=tmp_path)
    context = app.runtime.scopes().foreground()
    await context.history.append_turn([user("q0"), calling("a")])
    await app.runtime.chat_session(context=context).send("q1")
    sent = provider.invocations[0].history
    assert [r.call_id for r in sent[2].tool_results] == ["a"]
    assert sent[2].tool_results[0].is_error
    assert sent[3] == Message.user("q1")
