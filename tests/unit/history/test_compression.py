"""History compression: selection, the summary call, the compressor's decisions, the chat's use."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from chatscope.config.settings import CompressionSettings, ExplicitSettings
from chatscope.errors import InvalidRequestError, ServerError
from chatscope.services.chat.tool_pairs import INTERRUPTED_CALL_ERROR
from chatscope.services.events import FinishReason, ProviderEvent
from chatscope.services.history.compression import (
    CompressionOutcome,
    CompressionStatus,
    HistoryCompressor,
)
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.history.plan import (
    SUMMARY_ACKNOWLEDGEMENT,
    SUMMARY_INTRO,
    compressed_history,
    plan_compression,
)
from chatscope.services.history.summariser import (
    SUMMARY_SYSTEM_PROMPT,
    ModelSummariser,
    SummaryError,
    render_transcript,
)
from chatscope.services.messages import (
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    Usage,
    estimate_tokens,
)
from chatscope.services.runtime.auth import AuthResolver
from chatscope.services.runtime.context import AgentRuntimeContext, ProviderCatalog
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.testing import FunctionProvider, ScriptedProvider, ScriptedReply
from tests.support.histories import (
    FakeClock,
    Summaries,
    answered,
    calling,
    compression_context,
    conversation,
    reply,
    results,
    user,
)
from tests.support.scopes import FAST_RETRY, make_chat

# 12 exchanges of 2 x 83 characters: 499 estimated tokens.
TWELVE = conversation(12)
LOW_LIMIT = {"context_limit": 800, "compression_threshold": 0.5}


def _texts(messages: tuple[Message, ...]) -> list[str]:
    return [m.text[:3] for m in messages]


# --- selection -----------------------------------------------------------------------------


def test_the_plan_keeps_the_first_exchange_and_the_newest_turns() -> None:
    """With the seed knobs, turn 0 stays, the newest 4 turns stay, the rest is the middle."""
    plan = plan_compression(TWELVE, preserve_fraction=0.3, min_age=4)
    assert plan is not None
    assert _texts(plan.head) == ["q0:", "a0:"]
    assert _texts(plan.middle)[0] == "q1:"
    assert _texts(plan.middle)[-1] == "a7:"
    assert _texts(plan.tail)[0] == "q8:"


def test_the_preserve_fraction_can_keep_more_than_the_young_turns() -> None:
    """Keeping 60% of the tokens reaches back past the newest 4 turns, to mid-turn if need be."""
    plan = plan_compression(TWELVE, preserve_fraction=0.6, min_age=4)
    assert plan is not None
    assert _texts(plan.tail)[0] == "a4:"
    assert _texts(plan.middle)[-1] == "q4:"


def test_nothing_is_eligible_in_a_young_conversation() -> None:
    """Five turns with min-age 4 leave only the first exchange, which is kept: no plan."""
    assert plan_compression(conversation(5), preserve_fraction=0.0, min_age=4) is None
    assert plan_compression((), preserve_fraction=0.3, min_age=4) is None
    assert plan_compression((reply("hello"),), preserve_fraction=0.3, min_age=0) is None


def test_a_cut_between_a_call_and_its_results_moves_before_the_call() -> None:
    """When the boundary would fall on tool results, the call moves to the tail with them."""
    call = calling("c1", text="let me look")
    messages = (
        *conversation(2),
        user("q2: read it"),
        call,
        answered(call, size=2000),
        reply("a2: done"),
        *conversation(1),
    )
    plan = plan_compression(messages, preserve_fraction=0.3, min_age=1)
    assert plan is not None
    assert plan.tail[0] is call
    assert plan.tail[1].role is Role.TOOL


def test_the_last_user_message_is_kept_even_with_nothing_preserved() -> None:
    """Preserve 0 and min-age 0 still keep the last prompt and what follows it."""
    plan = plan_compression(TWELVE, preserve_fraction=0.0, min_age=0)
    assert plan is not None
    assert _texts(plan.tail) == ["q11", "a11"]


def test_a_first_reply_with_tool_calls_keeps_its_results_in_the_head() -> None:
    """The first exchange includes the results of the first reply's calls."""
    call = calling("c0")
    messages = (user("q0"), call, answered(call), reply("a0"), *conversation(6)[2:])
    plan = plan_compression(messages, preserve_fraction=0.1, min_age=1)
    assert plan is not None
    assert plan.head == (messages[0], call, messages[2])


# --- the new history -----------------------------------------------------------------------


def test_a_summary_before_a_user_message_gets_an_acknowledgement() -> None:
    """Summary (user) then acknowledgement (assistant) then the tail's prompt: roles alternate."""
    plan = plan_compression(TWELVE, preserve_fraction=0.3, min_age=4)
    assert plan is not None
    new = compressed_history(plan, "they talked")
    bridge = new[len(plan.head) : len(plan.head) + 2]
    assert bridge == (
        Message.user(f"{SUMMARY_INTRO}\n\nthey talked"),
        Message(Role.ASSISTANT, (TextBlock(SUMMARY_ACKNOWLEDGEMENT),)),
    )
    assert [m.role for m in new] == [Role.USER, Role.ASSISTANT] * (len(new) // 2)


def test_a_summary_before_an_assistant_message_stands_alone() -> None:
    """A tail opening with a tool-calling assistant message follows the summary directly."""
    call = calling("c1")
    messages = (
        *conversation(3),
        user("q3"),
        call,
        answered(call, 900),
        reply("a3"),
        *conversation(1),
    )
    plan = plan_compression(messages, preserve_fraction=0.5, min_age=0)
    assert plan is not None
    assert plan.tail[0] is call
    new = compressed_history(plan, "s")
    assert new[len(plan.head)].role is Role.USER
    assert new[len(plan.head) + 1] is call


def test_the_transcript_shows_calls_and_results_but_not_reasoning() -> None:
    """Tool traffic is rendered as text; thinking is not part of what gets summarised."""
    call = calling("c1")
    thinking = Message(Role.ASSISTANT, (ThinkingBlock("secret plan"), TextBlock("Sure.")))
    text = render_transcript((user("hi"), thinking, call, answered(call)))
    assert "[user] hi" in text
    assert "[assistant] Sure." in text
    assert '[assistant called t_c1] {"n":0}' in text
    assert "[t_c1 returned] rrrrrrrr" in text
    assert "secret plan" not in text


# --- the compressor ------------------------------------------------------------------------


async def test_under_the_threshold_nothing_happens() -> None:
    """499 tokens against a threshold of 500: no summary is asked for, nothing is reported."""
    sink, summaries = RecordingSink(), Summaries()
    context = compression_context(TWELVE, sink=sink, context_limit=1000, compression_threshold=0.5)
    outcome = await HistoryCompressor(summaries).maybe_compress(context)
    assert outcome.status is CompressionStatus.NOT_NEEDED
    assert summaries.calls == []
    assert sink.events == []


async def test_at_the_threshold_the_middle_is_summarised_and_swapped_in() -> None:
    """499 tokens against a threshold of 499: the middle becomes one summary, reported once."""
    sink, summaries = RecordingSink(), Summaries()
    context = compression_context(TWELVE, sink=sink, context_limit=998, compression_threshold=0.5)
    outcome = await HistoryCompressor(summaries).maybe_compress(context)
    assert outcome.status is CompressionStatus.COMPRESSED
    assert _texts(summaries.calls[0]) == _texts(TWELVE[2:16])
    stored = await context.history.messages()
    assert stored[:2] == TWELVE[:2]
    assert stored[2].text.endswith("the gist")
    assert stored[4:] == TWELVE[16:]
    [event] = sink.named("history_compressed")
    assert event["tokens_before"] == 499
    assert event["tokens_after"] == outcome.tokens_after == await context.history.token_count()
    assert (event["messages_before"], event["messages_after"]) == (24, 12)
    assert event["summarised_messages"] == 14
    assert event["runtime_id"] == context.runtime_id
    assert event["session_id"] == context.state.session_id


async def test_the_trigger_uses_api_reported_tokens() -> None:
    """A history estimated under the threshold compresses when the API reported it over."""
    history = InMemoryHistory()
    await history.append_turn(conversation(8), usage=Usage(440, 10))
    assert estimate_tokens(await history.messages()) < 400
    context = compression_context(history, knobs=LOW_LIMIT)
    outcome = await HistoryCompressor(Summaries()).maybe_compress(context)
    assert outcome.tokens_before == 450
    assert outcome.status is CompressionStatus.COMPRESSED
    assert outcome.tokens_after < 400


async def test_a_failed_summary_changes_nothing_and_is_reported_without_secrets() -> None:
    """The summariser's error is swallowed, history stays, and the report has no key in it."""
    sink = RecordingSink()
    error = ServerError("upstream said sk-proj-abcdef1234567890 is busy", provider="demo")
    context = compression_context(TWELVE, sink=sink, knobs=LOW_LIMIT)
    outcome = await HistoryCompressor(Summaries(error=error)).maybe_compress(context)
    assert outcome.status is CompressionStatus.FAILED
    assert await context.history.messages() == TWELVE
    [event] = sink.named("compression_failed")
    assert event["error_type"] == "ServerError"
    assert "sk-proj-abcdef1234567890" not in event["error"]
    assert event["retry_after_turns"] == 3
    assert event["runtime_id"] == context.runtime_id


async def test_after_a_failure_it_waits_for_turns_and_seconds() -> None:
    """Retry only once both the cooldown turns and the cooldown seconds have passed."""
    clock, summaries = FakeClock(), Summaries(error=ServerError("down", provider="demo"))
    policy = CompressionSettings(failure_cooldown_turns=2, failure_cooldown_seconds=30)
    compressor = HistoryCompressor(summaries, settings=policy, clock=clock)
    context = compression_context(TWELVE, knobs=LOW_LIMIT)
    statuses = [(await compressor.maybe_compress(context)).status for _ in range(4)]
    assert statuses == ["failed", "cooling_down", "cooling_down", "cooling_down"]
    clock.now += 30
    summaries.error = None
    assert (await compressor.maybe_compress(context)).status is CompressionStatus.COMPRESSED
    assert len(summaries.calls) == 2


async def test_a_slow_summary_times_out_and_changes_nothing() -> None:
    """A summariser that outlives `summary_timeout` counts as a failure."""
    sink = RecordingSink()

    async def stuck(messages: tuple[Message, ...], context: AgentRuntimeContext) -> str:
        await asyncio.sleep(10)
        return "too late"

    context = compression_context(TWELVE, sink=sink, knobs=LOW_LIMIT)
    compressor = HistoryCompressor(stuck, settings=CompressionSettings(summary_timeout=0.01))
    outcome = await compressor.maybe_compress(context)
    assert outcome.status is CompressionStatus.FAILED
    assert await context.history.messages() == TWELVE
    assert sink.named("compression_failed")[0]["error_type"] == "TimeoutError"


async def test_an_empty_summary_is_a_failure() -> None:
    """Whitespace is not a summary: nothing is replaced."""
    sink = RecordingSink()
    context = compression_context(TWELVE, sink=sink, knobs=LOW_LIMIT)
    outcome = await HistoryCompressor(Summaries(text="  \n")).maybe_compress(context)
    assert outcome.status is CompressionStatus.FAILED
    assert sink.named("compression_failed")[0]["error_type"] == "SummaryError"
    assert await context.history.messages() == TWELVE


async def test_a_summary_that_saves_too_little_is_dropped_and_not_retried_at_once() -> None:
    """A summary as long as the middle is not committed, and the next turns do not retry."""
    sink, summaries = RecordingSink(), Summaries(text="z" * 1200)
    compressor = HistoryCompressor(summaries, settings=CompressionSettings())
    context = compression_context(TWELVE, sink=sink, knobs=LOW_LIMIT)
    statuses = [(await compressor.maybe_compress(context)).status for _ in range(7)]
    assert statuses == ["too_little"] + ["cooling_down"] * 5 + ["too_little"]
    assert len(summaries.calls) == 2
    assert await context.history.messages() == TWELVE
    assert sink.named("compression_skipped")[0]["retry_after_turns"] == 5


async def test_a_result_still_over_the_threshold_is_not_committed() -> None:
    """Young turns too big to get under the threshold: the summary is not swapped in."""
    big_young = (*conversation(6, size=400), *conversation(4, size=900))
    summaries = Summaries()
    context = compression_context(big_young, knobs=LOW_LIMIT)
    outcome = await HistoryCompressor(summaries).maybe_compress(context)
    assert len(summaries.calls) == 1
    assert outcome.status is CompressionStatus.TOO_LITTLE
    assert 400 <= outcome.tokens_after < outcome.tokens_before
    assert await context.history.messages() == big_young


async def test_a_middle_too_small_to_matter_is_not_summarised() -> None:
    """When the eligible middle is under `min_savings` of the history, no model call is made."""
    summaries = Summaries()
    messages = (*conversation(2, size=4), *conversation(4, size=600))
    context = compression_context(messages, knobs=LOW_LIMIT)
    outcome = await HistoryCompressor(summaries).maybe_compress(context)
    assert outcome.status is CompressionStatus.TOO_LITTLE
    assert summaries.calls == []


async def test_history_changed_while_summarising_is_left_alone() -> None:
    """If another writer appended meanwhile, the stale compression is not written over it."""
    context = compression_context(TWELVE, knobs=LOW_LIMIT)

    async def racing(messages: tuple[Message, ...], ctx: AgentRuntimeContext) -> str:
        await ctx.history.append_turn([user("late"), reply("arrival")])
        return "gist"

    outcome = await HistoryCompressor(racing).maybe_compress(context)
    assert outcome.status is CompressionStatus.HISTORY_CHANGED
    assert (await context.history.messages())[-1] == reply("arrival")


async def test_compression_can_be_switched_off() -> None:
    """`enabled=False` never looks at history."""
    summaries = Summaries()
    compressor = HistoryCompressor(summaries, settings=CompressionSettings(enabled=False))
    outcome = await compressor.maybe_compress(compression_context(TWELVE, knobs=LOW_LIMIT))
    assert outcome.status is CompressionStatus.DISABLED
    assert summaries.calls == []


async def test_a_stored_orphan_is_repaired_in_the_compressed_history() -> None:
    """An unanswered call in the kept tail gets its synthetic result when history is rewritten."""
    orphan = calling("lost")
    messages = (*TWELVE, user("q12"), orphan)
    context = compression_context(messages, knobs=LOW_LIMIT)
    assert (await HistoryCompressor(Summaries()).maybe_compress(context)).status == "compressed"
    stored = await context.history.messages()
    assert stored[-2] is orphan
    assert stored[-1].tool_results[0].error == INTERRUPTED_CALL_ERROR


def test_compression_settings_are_validated() -> None:
    """An unknown compression provider or an out-of-range knob is refused with its name."""
    with pytest.raises(ValidationError, match=r"compression\.provider"):
        ExplicitSettings(compression={"provider": "nope"})
    with pytest.raises(ValidationError, match=r"compression\.min_savings"):
        ExplicitSettings(compression={"min_savings": 1.5})


# --- the summary model call ----------------------------------------------------------------


def _summariser(settings: ExplicitSettings, *providers: ScriptedProvider) -> ModelSummariser:
    return ModelSummariser(
        auth_resolver=AuthResolver({"OPENAI_API_KEY": "sk-env-openai-000000"}),
        retry_policy=FAST_RETRY,
        provider_catalog=ProviderCatalog.of(*providers),
        settings=settings,
    )


async def test_the_scope_provider_summarises_by_default() -> None:
    """The scope's own adapter, model and key get one call: no tools, a capped output, a prompt."""
    provider = ScriptedProvider([ScriptedReply(text="  they said hello  ")])
    context = compression_context(provider=provider)
    summarise = _summariser(ExplicitSettings(compression={"max_summary_tokens": 1000}), provider)
    summary = await summarise((user("hello"), reply("hi there")), context)
    assert summary == "they said hello"
    [invocation] = provider.invocations
    assert (invocation.model, invocation.tools) == ("test-model", ())
    assert dict(invocation.model_params) == {}
    assert invocation.system_prompt == SUMMARY_SYSTEM_PROMPT
    assert invocation.ephemerals.max_output_tokens == 1000
    assert invocation.credentials.secret() == "sk-test-scope-key-1234"
    [request] = invocation.history
    assert "[user] hello\n\n[assistant] hi there" in request.text


async def test_a_configured_provider_and_model_summarise_instead() -> None:
    """`compression.provider`/`model` route the call to another adapter with its own key."""
    scope_provider = ScriptedProvider([])
    other = ScriptedProvider([ScriptedReply(text="gist")], name="openai")
    settings = ExplicitSettings(compression={"provider": "openai", "model": "gpt-small"})
    context = compression_context(provider=scope_provider)
    assert await _summariser(settings, scope_provider, other)((user("x"),), context) == "gist"
    [invocation] = other.invocations
    assert (invocation.provider, invocation.model) == ("openai", "gpt-small")
    assert invocation.base_url == "https://api.openai.com/v1"
    assert invocation.credentials.secret() == "sk-env-openai-000000"
    assert scope_provider.invocations == []


async def test_a_cut_off_summary_is_an_error() -> None:
    """A summary that hit the output cap is incomplete: `SummaryError`, not a partial summary."""
    provider = ScriptedProvider([ScriptedReply(text="half a", finish=FinishReason.LENGTH)])
    with pytest.raises(SummaryError, match="cut off"):
        await _summariser(ExplicitSettings(), provider)(
            (user("x"),), compression_context(provider=provider)
        )


async def test_a_refused_summary_call_raises_the_provider_error() -> None:
    """The summary call's own failure surfaces as the provider's typed error."""

    def refuse(invocation: ModelInvocation) -> list[ProviderEvent]:
        raise InvalidRequestError("too long", provider="demo", status=400)

    provider = FunctionProvider(refuse)
    summarise = _summariser(ExplicitSettings(), ScriptedProvider([]))
    with pytest.raises(InvalidRequestError):
        await summarise((user("x"),), compression_context(provider=provider))


# --- in a chat session ---------------------------------------------------------------------


class CountingCompressor(HistoryCompressor):
    """A compressor that counts its checks."""

    __slots__ = ("checks",)

    def __init__(self, summariser: Summaries) -> None:
        super().__init__(summariser)
        self.checks = 0

    async def maybe_compress(self, context: AgentRuntimeContext) -> CompressionOutcome:
        self.checks += 1
        return await super().maybe_compress(context)


async def test_the_chat_compresses_before_the_turns_first_request_only() -> None:
    """A tool-using turn makes two model calls; compression ran once, before the first."""
    provider = ScriptedProvider(
        [ScriptedReply(tool_calls=[("missing_tool", {})]), ScriptedReply(text="done")]
    )
    context = compression_context(TWELVE, provider=provider, knobs=LOW_LIMIT)
    compressor = CountingCompressor(Summaries())
    await make_chat(context, compressor=compressor).send("next")
    assert compressor.checks == 1
    first, second = (invocation.history for invocation in provider.invocations)
    assert first[2].text.endswith("the gist")
    assert first[-1] == Message.user("next")
    assert second[: len(first)] == first


async def test_a_failed_compression_does_not_stop_the_turn() -> None:
    """The summariser fails; the turn still answers and is appended to the untouched history."""
    provider = ScriptedProvider([ScriptedReply(text="answer")])
    context = compression_context(TWELVE, provider=provider, knobs=LOW_LIMIT)
    compressor = HistoryCompressor(Summaries(error=ServerError("down", provider="demo")))
    turn = await make_chat(context, compressor=compressor).send("next")
    assert turn.text == "answer"
    assert await context.history.messages() == (*TWELVE, user("next"), reply("answer"))


async def test_cancelling_during_the_summary_leaves_history_whole() -> None:
    """A turn cancelled while its history is being summarised changes nothing."""
    started = asyncio.Event()

    async def slow(messages: tuple[Message, ...], context: AgentRuntimeContext) -> str:
        started.set()
        await asyncio.sleep(10)
        return "never"

    context = compression_context(TWELVE, knobs=LOW_LIMIT)
    chat = make_chat(context, compressor=HistoryCompressor(slow))
    task = asyncio.create_task(chat.send("next"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await context.history.messages() == TWELVE


async def test_the_request_repairs_orphans_and_drops_stray_results() -> None:
    """A stored call without result is answered with an error; a result with no call is dropped."""
    provider = FunctionProvider(lambda invocation: ScriptedReply(text="ok"))
    orphan = calling("a", "b")
    stray = results("zzz")
    stored = (user("q0"), orphan, user("q1"), reply("a1"), stray)
    context = compression_context(stored, provider=provider)
    await make_chat(context).send("q2")
    sent = provider.invocations[0].history
    assert sent[:2] == (user("q0"), orphan)
    assert [(r.call_id, r.error) for r in sent[2].tool_results] == [
        ("a", INTERRUPTED_CALL_ERROR),
        ("b", INTERRUPTED_CALL_ERROR),
    ]
    assert sent[3:] == (user("q1"), reply("a1"), user("q2"))
    assert await context.history.messages() == (*stored, user("q2"), reply("ok"))
