"""`OtelTracing` on its own: parents by explicit context, ambient spans that never leak, and
nothing built for a span that does not record."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from dependency_injector import providers
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from chatscope.adapters.telemetry import genai
from chatscope.adapters.telemetry.otel import OtelTracing
from chatscope.services.events import CompletedTurn, FinishReason
from chatscope.services.messages import Message, ToolCallBlock, ToolResultBlock, Usage
from chatscope.services.runtime.invocation import Credentials, ModelInvocation
from chatscope.services.runtime.state import AgentRuntimeState
from chatscope.testing import build_test_app
from tests.support.tracing import SpanRecorder, attribute, parent_id, span_id

PROMPT = Message.user("hi")


def _invocation(model: str = "m") -> ModelInvocation:
    return ModelInvocation(
        runtime_id="r",
        provider="openai",
        model=model,
        base_url=None,
        credentials=Credentials(),
        history=(PROMPT,),
    )


class _Outcome:
    usage = Usage(1, 2)
    finish_reason = "stop"


def _state(subagent: str | None = None) -> AgentRuntimeState:
    parent = "p" * 32 if subagent else None
    return AgentRuntimeState.create(
        provider="openai", model="m", subagent_name=subagent, parent_runtime_id=parent
    )


@given(steps=st.lists(st.integers(0, 3), min_size=1, max_size=4), subagent=st.booleans())
def test_every_call_of_a_turn_is_its_child_and_every_span_ends(
    steps: list[int], subagent: bool
) -> None:
    """Model calls, each followed by some tool calls: all children of the turn, all ended,
    all in one trace, all with the scope's identity."""
    recorder = SpanRecorder()
    state = _state("helper" if subagent else None)
    tracer = OtelTracing(recorder.provider).scope_tracer(state)
    with tracer.turn(PROMPT) as turn:
        for tools in steps:
            call = turn.model_call(_invocation())
            call.completed(_Outcome(), attempts=1, first_chunk_s=None, output=lambda: PROMPT)
            for index in range(tools):
                block = ToolCallBlock.create(f"c{index}", "t", {})
                with turn.tool_call(block) as tool:
                    tool.completed(ToolResultBlock(block.id, "t", result="ok"))
    spans = recorder.spans()
    assert len(spans) == 1 + len(steps) + sum(steps)
    root = recorder.one("invoke_agent")
    assert root.name == f"invoke_agent {'helper' if subagent else 'chatscope'}"
    assert all(parent_id(span) == span_id(root) for span in spans if span is not root)
    assert len(recorder.by_trace()) == 1
    assert {attribute(span, "chatscope.runtime.id") for span in spans} == {state.runtime_id}
    assert all(span.end_time is not None for span in spans)


@given(depth=st.integers(1, 4))
def test_a_tool_call_is_ambient_only_while_it_runs(depth: int) -> None:
    """Inside a tool call, `here()` is that call; after it (however deeply nested, and when
    it fails) the ambient span is what it was before."""
    recorder = SpanRecorder()
    tracer = OtelTracing(recorder.provider).scope_tracer(_state())
    assert tracer.here() is None
    before = trace.get_current_span()

    def nest(turn: object, level: int) -> None:
        block = ToolCallBlock.create(f"c{level}", "task", {})
        with turn.tool_call(block):  # type: ignore[attr-defined]
            here = tracer.here()
            assert here is not None
            assert trace.get_current_span(here).get_span_context().span_id == span_id_now()
            if level < depth:
                nest(turn, level + 1)
            else:
                raise ValueError("the deepest tool failed")

    with tracer.turn(PROMPT) as turn, pytest.raises(ValueError, match="deepest"):
        nest(turn, 1)
    assert trace.get_current_span() is before
    assert tracer.here() is None
    failed = [span for span in recorder.named("execute_tool") if attribute(span, "error.type")]
    assert len(failed) == depth


def span_id_now() -> int:
    """The id of the ambient span."""
    own: int = trace.get_current_span().get_span_context().span_id
    return own


def test_a_child_scope_traces_under_the_span_it_was_given() -> None:
    """A scope built with `parent=here()` inside a tool call puts its turns under that call;
    a parent that is not a span is ignored."""
    recorder = SpanRecorder()
    tracing = OtelTracing(recorder.provider)
    parent_tracer = tracing.scope_tracer(_state())
    with parent_tracer.turn(PROMPT) as turn:
        block = ToolCallBlock.create("c", "task", {})
        with turn.tool_call(block):
            child = tracing.scope_tracer(_state("helper"), parent=parent_tracer.here())
        with child.turn(PROMPT):
            pass
    with tracing.scope_tracer(_state("other"), parent="not a span").turn(PROMPT):
        pass
    assert parent_id(recorder.one("invoke_agent helper")) == span_id(recorder.one("execute_tool"))
    assert parent_id(recorder.one("invoke_agent other")) is None


def test_a_call_outside_a_turn_joins_the_ambient_span_else_the_scope_parent() -> None:
    """A summary call made while the turn is ambient is the turn's child; made with nothing
    ambient, it is under the scope's parent span."""
    recorder = SpanRecorder()
    tracing = OtelTracing(recorder.provider)
    scope = tracing.scope_tracer(_state())
    with scope.turn(PROMPT) as turn:
        with turn.active():
            scope.model_call(_invocation("inside"), purpose="compression_summary").end()
        block = ToolCallBlock.create("c", "task", {})
        with turn.tool_call(block):
            child = tracing.scope_tracer(_state("helper"), parent=scope.here())
    child.model_call(_invocation("outside")).end()
    turn_span = recorder.one("invoke_agent")
    assert parent_id(recorder.one("chat inside")) == span_id(turn_span)
    assert parent_id(recorder.one("chat outside")) == span_id(recorder.one("execute_tool"))


@pytest.mark.parametrize("recording", ["proxy to nothing", "sampled out"])
def test_nothing_is_built_for_a_span_that_does_not_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recording: str
) -> None:
    """Without a configured provider (OpenTelemetry's proxy to its no-op tracer), or with
    one that samples everything out, no attribute of any span is ever computed."""

    def refuse(*args: object) -> None:
        raise AssertionError("an attribute was built for a span that does not record")

    builders = ("identity_attributes", "request_attributes", "error_attributes", "json_text")
    for builder in (*builders, "input_messages_json", "output_messages_json"):
        monkeypatch.setattr(genai, builder, refuse)
    app = build_test_app(workspace=tmp_path, telemetry={"capture_content": True})
    provider = (
        TracerProvider(sampler=ALWAYS_OFF)
        if recording == "sampled out"
        else trace.ProxyTracerProvider()
    )
    app.tracer_provider.override(providers.Object(provider))
    chat = app.runtime.chat_session(context=app.runtime.scopes().foreground())
    turn = asyncio.run(chat.send("hello"))
    assert turn.model_calls == 2


def test_a_turn_records_its_totals() -> None:
    """Usage of the whole turn, its finish reason and how many model calls it made."""
    recorder = SpanRecorder()
    tracer = OtelTracing(recorder.provider).scope_tracer(_state())
    with tracer.turn(PROMPT) as turn:
        turn.completed(
            CompletedTurn("x", (), (), Usage(5, 6, 1, 2), FinishReason.MAX_TURNS, model_calls=3)
        )
    span = recorder.one("invoke_agent")
    assert attribute(span, "gen_ai.usage.output_tokens") == 6
    assert attribute(span, "gen_ai.usage.reasoning.output_tokens") == 2
    assert attribute(span, "gen_ai.response.finish_reasons") == ("max_turns",)
    assert attribute(span, "chatscope.turn.model_calls") == 3


def test_a_price_is_recorded_when_one_is_known() -> None:
    """`gen_ai.usage.cost` (US dollars) from the pricing given; absent when it knows none."""
    recorder = SpanRecorder()

    def pricing(usage: Usage, *, provider: str, model: str, base_url: str | None) -> Decimal | None:
        return Decimal("0.25") if model == "priced" else None

    tracer = OtelTracing(recorder.provider, pricing=pricing).scope_tracer(_state())
    for model in ("priced", "unknown"):
        call = tracer.model_call(_invocation(model))
        call.completed(_Outcome(), attempts=1, first_chunk_s=0.5, output=lambda: PROMPT)
    assert attribute(recorder.one("chat priced"), "gen_ai.usage.cost") == 0.25
    assert attribute(recorder.one("chat unknown"), "gen_ai.usage.cost") is None
