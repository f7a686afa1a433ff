"""ChatSession: the tool loop, whole-turn history, telemetry, and failures that lose nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.errors import AuthenticationRequiredError, InvalidRequestError, ServerError
from chatscope.services.chat.session import ChatSession
from chatscope.services.events import (
    FinishReason,
    ProviderEvent,
    TextDelta,
    ToolResultEvent,
    TurnDone,
)
from chatscope.services.frozen import FrozenDict, deep_freeze
from chatscope.services.messages import Role, ToolResultBlock, Usage
from chatscope.services.runtime.auth import AuthResolver, AuthSpec
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.services.tools.ports import ToolContext, ToolDeclaration
from chatscope.testing.fakes import FunctionProvider, ScriptedProvider, ScriptedReply
from tests.support.scopes import FAST_RETRY, make_chat, make_context


class EchoTool:
    """A tool that returns its `text` argument, or fails when asked to."""

    declaration = ToolDeclaration(
        "echo", "Echo text back.", deep_freeze({"type": "object", "properties": {}})
    )

    async def run(self, arguments: Mapping[str, Any], context: ToolContext | None = None) -> str:
        if arguments.get("fail"):
            raise RuntimeError("echo broke")
        return str(arguments["text"])


class FailingProvider:
    """Streams some text, then fails like a provider whose connection broke."""

    name = "demo"

    def __init__(self, after: int, error: Exception | None = None) -> None:
        self.after = after
        self.error = error or ServerError("boom", provider="demo", status=500)

    async def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
        for index in range(self.after):
            yield TextDelta(f"piece{index} ")
        raise self.error


async def test_send_returns_the_completed_turn_and_stores_it() -> None:
    """A plain reply comes back with text, usage and finish reason, and history holds the turn."""
    provider = ScriptedProvider([ScriptedReply(text="Paris.", usage=Usage(12, 3))])
    chat = make_chat(make_context(provider))
    turn = await chat.send("Capital of France?")
    assert (turn.text, turn.usage, turn.finish_reason) == ("Paris.", Usage(12, 3), "stop")
    messages = await chat.context.history.messages()
    assert [(m.role, m.text) for m in messages] == [
        (Role.USER, "Capital of France?"),
        (Role.ASSISTANT, "Paris."),
    ]


async def test_tool_calls_run_and_results_go_back_to_the_model() -> None:
    """A tool call is executed and its result is part of the next model call's history."""
    provider = ScriptedProvider(
        [ScriptedReply(tool_calls=[("echo", {"text": "42"})]), ScriptedReply(text="It is 42.")]
    )
    chat = make_chat(make_context(provider, tools=(EchoTool(),)))
    turn = await chat.send("What does echo say?")
    assert turn.text == "It is 42."
    assert [call.name for call in turn.tool_calls] == ["echo"]
    assert turn.tool_results == (ToolResultBlock("call_1_0", "echo", result="42"),)
    second = provider.invocations[1].history
    assert [m.role for m in second] == [Role.USER, Role.ASSISTANT, Role.TOOL]
    assert second[-1].tool_results[0].result == "42"
    assert turn.model_calls == 2
    assert len(await chat.context.history.messages()) == 4


async def test_a_failing_tool_becomes_an_error_result_not_a_crash() -> None:
    """A tool that raises is reported to the model as an error result and the chat goes on."""
    provider = ScriptedProvider(
        [ScriptedReply(tool_calls=[("echo", {"fail": True})]), ScriptedReply(text="Sorry.")]
    )
    chat = make_chat(make_context(provider, tools=(EchoTool(),)))
    events = [event async for event in chat.stream("try")]
    [result_event] = [e for e in events if isinstance(e, ToolResultEvent)]
    assert result_event.result.error == "tool failed: RuntimeError: echo broke"
    assert isinstance(events[-1], TurnDone)


async def test_unknown_tool_is_reported_to_the_model() -> None:
    """A call to a tool the scope lacks becomes an error result naming the available tools."""
    provider = ScriptedProvider(
        [ScriptedReply(tool_calls=[("rm_rf", {})]), ScriptedReply(text="ok")]
    )
    turn = await make_chat(make_context(provider, tools=(EchoTool(),))).send("x")
    assert turn.tool_results[0].error == "unknown tool 'rm_rf'; available tools: echo"


async def test_turn_limit_stops_the_tool_loop() -> None:
    """A model that never stops calling tools ends the turn at the limit with `max_turns`."""
    provider = FunctionProvider(lambda _: ScriptedReply(tool_calls=[("echo", {"text": "again"})]))
    chat = make_chat(make_context(provider, tools=(EchoTool(),)), max_turns=3)
    turn = await chat.send("loop")
    assert turn.finish_reason is FinishReason.MAX_TURNS
    assert len(provider.invocations) == 3
    assert len(turn.tool_results) == 3


async def test_provider_failure_leaves_history_unchanged() -> None:
    """A turn that fails mid-stream stores nothing; the earlier turns stay as they were."""

    def respond(invocation: ModelInvocation) -> list[ProviderEvent]:
        if len(provider.invocations) == 1:
            return ScriptedReply(text="first answer").events()
        return [TextDelta("half an ans"), TextDelta("wer")]  # ends without finishing

    provider = FunctionProvider(respond)
    chat = make_chat(make_context(provider))
    await chat.send("first")
    before = await chat.context.history.messages()
    failing = make_chat(
        chat.context.__class__(
            **{f: getattr(chat.context, f) for f in chat.context.__dataclass_fields__}
            | {"provider": make_context(FailingProvider(after=3)).provider}
        )
    )
    with pytest.raises(ServerError):
        await failing.send("second")
    assert await chat.context.history.messages() == before
    assert len(before) == 2


async def test_missing_key_is_a_typed_error_and_nothing_is_stored() -> None:
    """A scope whose provider needs a key and has none fails before calling the model."""
    provider = ScriptedProvider([ScriptedReply(text="unreachable")])
    context = make_context(provider)
    context = context.__class__(
        **{f: getattr(context, f) for f in context.__dataclass_fields__}
        | {"auth": AuthSpec.for_provider("openai")}
    )
    chat = ChatSession(context, auth_resolver=AuthResolver({}), retry_policy=FAST_RETRY)
    with pytest.raises(AuthenticationRequiredError, match=r"\$OPENAI_API_KEY"):
        await chat.send("hi")
    assert provider.invocations == []
    assert await context.history.messages() == ()


async def test_abandoning_a_stream_leaves_history_unchanged() -> None:
    """A caller that stops reading mid-turn (a cancelled turn) stores no part of it."""
    provider = ScriptedProvider([ScriptedReply(text="a long answer", chunks=5)])
    chat = make_chat(make_context(provider))
    async with aclosing(chat.stream("hello")) as stream:
        async for event in stream:
            assert isinstance(event, TextDelta)
            break
    assert await chat.context.history.messages() == ()


async def test_telemetry_reports_request_response_and_tool_calls() -> None:
    """Each model call logs api_request and api_response; each tool run logs tool_call."""
    sink = RecordingSink()
    provider = ScriptedProvider(
        [ScriptedReply(tool_calls=[("echo", {"text": "x"})]), ScriptedReply(text="done")]
    )
    context = make_context(provider, sink=sink, tools=(EchoTool(),), session_id="session-456")
    await make_chat(context).send("go")
    names = [name for name, _ in sink.events]
    assert names == ["api_request", "api_response", "tool_call", "api_request", "api_response"]
    assert all(f["runtime_id"] == context.runtime_id for _, f in sink.events)
    assert all(f["session_id"] == "session-456" for _, f in sink.events)
    response = sink.named("api_response")[-1]
    assert (response["finish_reason"], response["attempt"]) == ("stop", 1)
    assert response["duration_ms"] >= 0


async def test_failed_call_is_reported_as_api_error() -> None:
    """A provider error is logged with its category and status before it propagates."""
    sink = RecordingSink()
    refused = InvalidRequestError("bad request", provider="demo", status=400)
    chat = make_chat(make_context(FailingProvider(after=0, error=refused), sink=sink))
    with pytest.raises(InvalidRequestError):
        await chat.send("x")
    [error] = sink.named("api_error")
    assert (error["category"], error["status"]) == ("invalid_request", 400)
    assert (error["error_type"], error["retryable"]) == ("InvalidRequestError", False)


async def test_retried_call_reports_each_failed_attempt() -> None:
    """A retryable failure before any output is retried, each failure logged with its attempt."""
    sink = RecordingSink()
    outcomes: list[Exception | None] = [ServerError("busy", provider="demo", status=529), None]

    def respond(invocation: ModelInvocation) -> list[ProviderEvent]:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return ScriptedReply(text="finally").events()

    turn = await make_chat(make_context(FunctionProvider(respond), sink=sink)).send("x")
    assert turn.text == "finally"
    assert [f["attempt"] for f in sink.named("api_error")] == [1]
    assert sink.named("api_response")[0]["attempt"] == 2


async def test_invocation_carries_the_scope_values() -> None:
    """The model call receives the scope's model, key, params, tools and ephemerals."""
    provider = ScriptedProvider([ScriptedReply(text="ok")])
    context = make_context(
        provider, tools=(EchoTool(),), api_key="sk-scope-key-0001", model_params={"t": 1}
    )
    await make_chat(context).send("hi")
    [invocation] = provider.invocations
    assert invocation.model == "test-model"
    assert invocation.credentials.secret() == "sk-scope-key-0001"
    assert invocation.model_params == FrozenDict({"t": 1})
    assert [tool.name for tool in invocation.tools] == ["echo"]
    assert invocation.runtime_id == context.runtime_id
    assert "sk-scope-key-0001" not in repr(invocation)


@given(
    replies=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=6),
    fail_at=st.integers(min_value=0, max_value=6),
)
async def test_history_only_ever_holds_complete_turns(replies: list[str], fail_at: int) -> None:
    """Whatever turn fails, history holds exactly the turns completed before it, in order."""
    answers = iter(replies)

    def respond(invocation: ModelInvocation) -> list[ProviderEvent]:
        if len(responder.invocations) - 1 == fail_at:
            raise InvalidRequestError("refused", provider="demo", status=400)
        return ScriptedReply(text=next(answers)).events()

    responder = FunctionProvider(respond)
    chat = make_chat(make_context(responder))
    completed: list[str] = []
    for index, reply in enumerate(replies):
        try:
            await chat.send(f"prompt {index}")
            completed.append(reply)
        except InvalidRequestError:
            break
    stored = await chat.context.history.messages()
    assert [m.text for m in stored if m.role is Role.ASSISTANT] == completed
    assert len(stored) == 2 * len(completed)


@given(text=st.text(max_size=200), chunks=st.integers(min_value=1, max_value=50))
async def test_streamed_text_equals_the_returned_text(text: str, chunks: int) -> None:
    """The concatenated text deltas of a stream always equal the completed turn's text."""
    chat = make_chat(make_context(ScriptedProvider([ScriptedReply(text=text, chunks=chunks)])))
    events = [event async for event in chat.stream("say it")]
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert isinstance(events[-1], TurnDone)
    assert streamed == text == events[-1].turn.text


REPLY_SCRIPTS = st.lists(
    st.builds(
        ScriptedReply,
        text=st.text(max_size=30),
        thinking=st.none() | st.text(min_size=1, max_size=10),
        chunks=st.integers(1, 5),
        tool_calls=st.lists(
            st.tuples(st.just("echo"), st.fixed_dictionaries({"text": st.text(max_size=8)})),
            max_size=2,
        ),
    ),
    min_size=1,
    max_size=3,
).map(lambda replies: [*replies[:-1], ScriptedReply(text=replies[-1].text or "done")])


@given(replies=REPLY_SCRIPTS)
async def test_send_and_stream_complete_the_same_turn_and_store_the_same_history(
    replies: list[ScriptedReply],
) -> None:
    """`send` skips handing out each event, and nothing else: turn, history and telemetry agree."""
    outcomes = []
    for use_stream in (False, True):
        sink = RecordingSink()
        context = make_context(ScriptedProvider(replies), sink=sink, tools=(EchoTool(),))
        chat = make_chat(context)
        if use_stream:
            events = [event async for event in chat.stream("go")]
            turn = events[-1].turn if isinstance(events[-1], TurnDone) else None
        else:
            turn = await chat.send("go")
        names = [name for name, _ in sink.events]
        outcomes.append((turn, await context.history.messages(), names))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] is not None
