"""The spans of a turn, after the OpenTelemetry GenAI conventions, through the containers."""

from __future__ import annotations

import asyncio
import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.trace import SpanKind, StatusCode

from chatscope.errors import InvalidRequestError, RateLimitError, redact_secrets
from chatscope.services.chat.session import ChatSession
from chatscope.services.messages import Usage
from chatscope.services.runtime.context import AgentRuntimeContext
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.testing import FunctionProvider, ScriptedReply, build_test_app
from tests.support.tracing import (
    SpanRecorder,
    attribute,
    everything_recorded,
    parent_id,
    record_spans,
    span_id,
)

CONTENT_KEYS = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
)


def _chat(
    tmp_path: Path, responder: Any, request: ScopeRequest | None = None, **settings: Any
) -> tuple[AgentRuntimeContext, ChatSession, SpanRecorder]:
    """A chat on the `openai` fake answering with `responder`, its spans recorded."""
    app = build_test_app(FunctionProvider(responder, name="openai"), workspace=tmp_path, **settings)
    recorder = record_spans(app)
    context = app.runtime.scopes().foreground(request)
    return context, app.runtime.chat_session(context=context), recorder


def _tool_then_text(answer: str = "done") -> Any:
    """Asks for `list_directory` once, then answers `answer`."""

    def respond(invocation: ModelInvocation) -> ScriptedReply:
        if len(invocation.history) == 1:
            return ScriptedReply(tool_calls=[("list_directory", {"path": "."})])
        return ScriptedReply(answer)

    return respond


async def test_a_turn_is_one_trace_of_agent_model_and_tool_spans(tmp_path: Path) -> None:
    """`invoke_agent` is the root; both `chat` calls and the `execute_tool` are its children,
    and every span carries the scope's runtime and session ids."""
    (tmp_path / "notes.txt").write_text("hi")
    context, chat, recorder = _chat(tmp_path, _tool_then_text())
    await chat.send("look around")
    turn = recorder.one("invoke_agent")
    calls = recorder.named("chat ")
    [tool] = recorder.named("execute_tool")
    assert turn.name == "invoke_agent chatscope"
    assert parent_id(turn) is None
    assert [parent_id(span) for span in (*calls, tool)] == [span_id(turn)] * 3
    assert len(recorder.by_trace()) == 1
    for span in recorder.spans():
        assert attribute(span, "chatscope.runtime.id") == context.runtime_id
        assert attribute(span, "chatscope.session.id") == context.state.session_id
        assert attribute(span, "gen_ai.conversation.id") == context.state.session_id
    assert attribute(turn, "gen_ai.operation.name") == "invoke_agent"
    assert attribute(turn, "gen_ai.agent.name") == "chatscope"
    assert attribute(turn, "gen_ai.usage.input_tokens") == 20
    assert attribute(turn, "chatscope.turn.model_calls") == 2
    assert attribute(tool, "gen_ai.operation.name") == "execute_tool"
    assert attribute(tool, "gen_ai.tool.name") == "list_directory"
    assert tool.status.status_code is StatusCode.UNSET


async def test_a_model_call_span_follows_the_inference_conventions(tmp_path: Path) -> None:
    """Operation, provider, request and response model, usage, finish reason, endpoint."""
    context, chat, recorder = _chat(
        tmp_path,
        lambda invocation: ScriptedReply("hello", usage=Usage(7, 3, 2)),
        providers={"openai": {"base_url": "https://api.example.test:8443/v1"}},
    )
    await chat.send("hi")
    call = recorder.one("chat ")
    model = context.state.model
    assert call.name == f"chat {model}"
    assert call.kind is SpanKind.CLIENT
    expected = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.usage.input_tokens": 7,
        "gen_ai.usage.output_tokens": 3,
        "gen_ai.usage.cache_read.input_tokens": 2,
        "gen_ai.response.finish_reasons": ("stop",),
        "server.address": "api.example.test",
        "server.port": 8443,
        "chatscope.call.attempts": 1,
    }
    assert {name: attribute(call, name) for name in expected} == expected
    assert attribute(call, "gen_ai.response.time_to_first_chunk") >= 0


async def test_a_failed_call_records_its_error_type_without_the_key(tmp_path: Path) -> None:
    """A refused call ends its span and its turn's with status ERROR and `error.type`; the
    call's key is blanked out of the message."""
    key = "k3y-for-this-test-only-0123456789"

    def refuse(invocation: ModelInvocation) -> ScriptedReply:
        raise InvalidRequestError(f"bad request sent with {key}", provider="openai", status=400)

    _, chat, recorder = _chat(tmp_path, refuse, environ={"OPENAI_API_KEY": key})
    with pytest.raises(InvalidRequestError):
        await chat.send("hi")
    call, turn = recorder.one("chat "), recorder.one("invoke_agent")
    assert call.status.status_code is StatusCode.ERROR
    assert attribute(call, "error.type") == "InvalidRequestError"
    assert attribute(call, "http.response.status_code") == 400
    assert "[REDACTED]" in (call.status.description or "")
    assert [event.name for event in call.events] == ["exception"]
    assert turn.status.status_code is StatusCode.ERROR
    assert attribute(turn, "error.type") == "InvalidRequestError"
    assert key not in everything_recorded(recorder.spans())


@given(failures=st.integers(0, 3))
def test_a_retried_call_is_one_span_with_a_retry_event_per_failure(
    tmp_path: Path, failures: int
) -> None:
    """The span covers every attempt; each attempt that failed and was tried again is a
    `chatscope.retry` event, in order, and the span still ends answered."""
    attempts: list[int] = []

    def flaky(invocation: ModelInvocation) -> ScriptedReply:
        attempts.append(1)
        if len(attempts) <= failures:
            raise RateLimitError("slow down", provider="openai", status=429, retry_after=0)
        return ScriptedReply("ok")

    _, chat, recorder = _chat(tmp_path, flaky)
    asyncio.run(chat.send("hi"))
    call = recorder.one("chat ")
    assert [event.name for event in call.events] == ["chatscope.retry"] * failures
    numbers = [(event.attributes or {})["chatscope.attempt"] for event in call.events]
    assert numbers == list(range(1, failures + 1))
    assert all((event.attributes or {})["error.type"] == "RateLimitError" for event in call.events)
    assert attribute(call, "chatscope.call.attempts") == failures + 1
    assert call.status.status_code is StatusCode.UNSET


file_names = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=20)


@given(name=file_names)
def test_a_tool_error_marks_its_span_failed(tmp_path: Path, name: str) -> None:
    """A tool that fails (a file that is not there) ends its span as an error, saying why."""

    def respond(invocation: ModelInvocation) -> ScriptedReply:
        if len(invocation.history) == 1:
            return ScriptedReply(tool_calls=[("read_file", {"path": f"{name}.missing"})])
        return ScriptedReply("sorry")

    _, chat, recorder = _chat(tmp_path, respond)
    asyncio.run(chat.send("read it"))
    tool = recorder.one("execute_tool read_file")
    assert tool.status.status_code is StatusCode.ERROR
    assert attribute(tool, "error.type") == "tool_error"
    assert f"{name}.missing" in (tool.status.description or "")
    assert recorder.one("invoke_agent").status.status_code is StatusCode.UNSET


async def test_a_streamed_turn_abandoned_early_still_ends_its_spans(tmp_path: Path) -> None:
    """A stream closed after its first event ends the call and the turn, neither failed."""
    _, chat, recorder = _chat(tmp_path, lambda invocation: ScriptedReply("a b c", chunks=3))
    events = chat.stream("hi")
    await anext(events)
    await events.aclose()
    assert [span.name.split()[0] for span in recorder.spans()] == ["chat", "invoke_agent"]
    assert all(span.status.status_code is StatusCode.UNSET for span in recorder.spans())


# Marked, so that no name or id can contain one; never key-shaped, which would be redacted.
marked = (
    st.text(min_size=1, max_size=30)
    .map(lambda text: f"<<{text}>>")
    .filter(lambda text: redact_secrets(text) == text)
)


@given(prompt=marked, answer=marked, system=marked)
def test_content_is_recorded_only_when_the_setting_asks(
    tmp_path: Path, prompt: str, answer: str, system: str
) -> None:
    """Off (the default): no content attribute, and neither prompt, answer nor system prompt
    anywhere in a span. On: the conventions' content attributes hold them, as JSON."""
    (tmp_path / "a.txt").write_text("x")
    for capture in (False, True):
        _, chat, recorder = _chat(
            tmp_path,
            _tool_then_text(answer),
            ScopeRequest(system_prompt=system),
            telemetry={"capture_content": capture},
        )
        asyncio.run(chat.send(prompt))
        spans = recorder.spans()
        present = {key for span in spans for key in (span.attributes or {}) if key in CONTENT_KEYS}
        if not capture:
            assert present == set()
            recorded = everything_recorded(spans)
            assert prompt not in recorded
            assert answer not in recorded
            assert system not in recorded
            continue
        assert present == set(CONTENT_KEYS)
        turn, last_call = recorder.one("invoke_agent"), recorder.named("chat ")[-1]
        [asked] = json.loads(attribute(turn, "gen_ai.input.messages"))
        assert asked == {"role": "user", "parts": [{"type": "text", "content": prompt}]}
        [said] = json.loads(attribute(last_call, "gen_ai.output.messages"))
        assert said["parts"] == [{"type": "text", "content": answer}]
        assert said["finish_reason"] == "stop"
        [instructions] = json.loads(attribute(last_call, "gen_ai.system_instructions"))
        assert instructions == {"type": "text", "content": system}
        tool = recorder.one("execute_tool")
        assert json.loads(attribute(tool, "gen_ai.tool.call.arguments")) == {"path": "."}
        assert "a.txt" in attribute(tool, "gen_ai.tool.call.result")


async def test_a_model_call_is_priced_when_the_table_knows_its_model(tmp_path: Path) -> None:
    """`gen_ai.usage.cost` (US dollars) from the application's price table; none for a model
    the table does not know."""
    costs = []
    for model in ("gpt-4o-mini", "no-such-model"):
        _, chat, recorder = _chat(
            tmp_path,
            lambda invocation: ScriptedReply("hi", usage=Usage(1_000_000, 0)),
            ScopeRequest(model=model),
        )
        await chat.send("hi")
        costs.append(attribute(recorder.one("chat "), "gen_ai.usage.cost"))
    assert costs[0] is not None
    assert 0 < costs[0] < 10
    assert costs[1] is None
