"""Properties of history compression: selection, the compressed history, the compressor."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from chatscope.config.settings import CompressionSettings
from chatscope.errors import ServerError
from chatscope.services.chat.tool_pairs import is_well_paired
from chatscope.services.history.compression import CompressionStatus, HistoryCompressor
from chatscope.services.history.plan import (
    CompressionPlan,
    compressed_history,
    message_tokens,
    plan_compression,
    threshold_tokens,
)
from chatscope.services.history.summariser import render_transcript
from chatscope.services.messages import Message, Role, TextBlock, estimate_tokens
from chatscope.services.runtime.context import AgentRuntimeContext
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.testing import FunctionProvider, ScriptedReply
from tests.support.histories import (
    compression_context,
    conversation,
    ephemeral_knobs,
    well_paired_histories,
)
from tests.support.scopes import make_chat

fractions = st.floats(min_value=0.0, max_value=1.0)
ages = st.integers(min_value=0, max_value=6)


def _parts(plan: CompressionPlan) -> tuple[tuple[Message, ...], ...]:
    return (plan.head, plan.middle, plan.tail)


def _last_user(messages: tuple[Message, ...]) -> Message:
    return next(m for m in reversed(messages) if m.role is Role.USER)


# --- selection -----------------------------------------------------------------------------


@given(messages=well_paired_histories(), preserve=fractions, min_age=ages)
def test_a_plan_partitions_the_history_in_order(
    messages: tuple[Message, ...], preserve: float, min_age: int
) -> None:
    """Head, middle and tail are consecutive slices that together are the history, in order."""
    plan = plan_compression(messages, preserve_fraction=preserve, min_age=min_age)
    if plan is not None:
        assert plan.head + plan.middle + plan.tail == messages
        assert plan.head
        assert plan.middle
        assert plan.tail


@given(messages=well_paired_histories(), preserve=fractions, min_age=ages)
def test_a_plan_never_separates_a_call_from_its_results(
    messages: tuple[Message, ...], preserve: float, min_age: int
) -> None:
    """Every part is itself well paired: no part opens with results whose call is elsewhere."""
    plan = plan_compression(messages, preserve_fraction=preserve, min_age=min_age)
    if plan is not None:
        for part in _parts(plan):
            assert part[0].role is not Role.TOOL
            assert is_well_paired(part)


@given(messages=well_paired_histories(min_turns=1), preserve=fractions, min_age=ages)
def test_a_plan_keeps_the_first_exchange_and_the_last_user_message(
    messages: tuple[Message, ...], preserve: float, min_age: int
) -> None:
    """The first prompt and its reply stay in the head; the last user message is in the tail."""
    plan = plan_compression(messages, preserve_fraction=preserve, min_age=min_age)
    if plan is not None:
        assert plan.head[:2] == messages[:2]
        if messages[1].tool_calls:
            assert plan.head[2] == messages[2]
        assert _last_user(plan.tail) == _last_user(messages)


@given(messages=well_paired_histories(), preserve=fractions, min_age=ages)
def test_a_plan_keeps_the_preserved_share_and_the_young_turns(
    messages: tuple[Message, ...], preserve: float, min_age: int
) -> None:
    """The tail holds at least `preserve` of the tokens and at least the newest `min_age` turns."""
    plan = plan_compression(messages, preserve_fraction=preserve, min_age=min_age)
    if plan is not None:
        total = sum(message_tokens(m) for m in messages)
        assert sum(message_tokens(m) for m in plan.tail) >= preserve * total
        turns_in_tail = sum(1 for m in plan.tail if m.role is Role.USER)
        assert turns_in_tail >= min(min_age, sum(1 for m in messages if m.role is Role.USER))


@given(messages=well_paired_histories(), preserve=fractions, min_age=ages)
def test_selection_is_deterministic_and_idempotent(
    messages: tuple[Message, ...], preserve: float, min_age: int
) -> None:
    """The same history always gives the same plan, also rebuilt from the plan's own parts."""
    plan = plan_compression(messages, preserve_fraction=preserve, min_age=min_age)
    again = plan_compression(list(messages), preserve_fraction=preserve, min_age=min_age)
    assert again == plan
    if plan is not None:
        rebuilt = plan.head + plan.middle + plan.tail
        assert plan_compression(rebuilt, preserve_fraction=preserve, min_age=min_age) == plan


@given(messages=well_paired_histories(min_turns=3), summary=st.text(min_size=1, max_size=80))
def test_the_compressed_history_keeps_head_tail_and_pairs(
    messages: tuple[Message, ...], summary: str
) -> None:
    """Head is a prefix, tail a suffix, the summary between them, every call keeps its result."""
    plan = plan_compression(messages, preserve_fraction=0.3, min_age=1)
    if plan is None:
        return
    compressed = compressed_history(plan, summary)
    assert compressed[: len(plan.head)] == plan.head
    assert compressed[len(compressed) - len(plan.tail) :] == plan.tail
    bridge = compressed[len(plan.head) : len(compressed) - len(plan.tail)]
    assert bridge[0].role is Role.USER
    assert summary in bridge[0].text
    assert is_well_paired(compressed)
    assert _last_user(compressed) == _last_user(messages)
    around = compressed[len(plan.head) - 1 : len(plan.head) + len(bridge) + 1]
    assert all(a.role is not b.role for a, b in itertools.pairwise(around))


# --- the compressor ------------------------------------------------------------------------


@settings(max_examples=60)
@given(
    messages=well_paired_histories(),
    limit_factor=st.floats(min_value=1.0, max_value=2.0),
    threshold=st.floats(min_value=0.3, max_value=1.0),
    preserve=st.floats(min_value=0.0, max_value=0.6),
    min_age=st.integers(min_value=0, max_value=4),
    summary_size=st.integers(min_value=1, max_value=400),
    min_savings=st.floats(min_value=0.0, max_value=0.5),
)
async def test_compression_ends_under_the_threshold_or_changes_nothing(
    messages: tuple[Message, ...],
    limit_factor: float,
    threshold: float,
    preserve: float,
    min_age: int,
    summary_size: int,
    min_savings: float,
) -> None:
    """After a check, history is either exactly as it was or below the threshold, pairs intact.

    The context limit is drawn relative to the history's size, so that every outcome occurs:
    under the threshold, compressed, not worth it, nothing eligible.
    """

    async def summarise(middle: tuple[Message, ...], context: AgentRuntimeContext) -> str:
        return "s" * summary_size

    context = compression_context(
        messages,
        context_limit=max(1, int(estimate_tokens(messages) * limit_factor)),
        compression_threshold=threshold,
        compression_preserve_threshold=preserve,
        compression_min_age=min_age,
    )
    compressor = HistoryCompressor(summarise, settings=CompressionSettings(min_savings=min_savings))
    outcome = await compressor.maybe_compress(context)
    after = await context.history.messages()
    if outcome.status is CompressionStatus.COMPRESSED:
        assert estimate_tokens(after) < threshold_tokens(context.ephemerals)
        assert estimate_tokens(after) < estimate_tokens(messages)
        assert after[:2] == messages[:2]
        assert _last_user(after) == _last_user(messages)
        assert is_well_paired(after)
    else:
        assert after == messages


@given(
    messages=well_paired_histories(min_turns=2),
    knobs=ephemeral_knobs(),
    turns=st.integers(min_value=1, max_value=12),
    cooldown=st.integers(min_value=0, max_value=4),
)
async def test_a_failing_summariser_changes_nothing_and_is_not_asked_every_turn(
    messages: tuple[Message, ...],
    knobs: dict[str, float | int],
    turns: int,
    cooldown: int,
) -> None:
    """Whatever fails, history stays; over n checks it is asked ceil(n / (cooldown + 1)) times."""
    asked: list[int] = []

    async def summarise(middle: tuple[Message, ...], context: AgentRuntimeContext) -> str:
        asked.append(len(middle))
        raise ServerError("overloaded", provider="demo", status=529)

    context = compression_context(messages, knobs=knobs | {"compression_threshold": 0.0})
    policy = CompressionSettings(failure_cooldown_turns=cooldown, failure_cooldown_seconds=0)
    compressor = HistoryCompressor(summarise, settings=policy)
    outcomes = [(await compressor.maybe_compress(context)).status for _ in range(turns)]
    assert await context.history.messages() == messages
    if asked:
        assert len(asked) == outcomes.count(CompressionStatus.FAILED) == -(-turns // (cooldown + 1))
        assert outcomes[1 : cooldown + 1] == [CompressionStatus.COOLING_DOWN] * min(
            cooldown, turns - 1
        )
    else:
        assert CompressionStatus.FAILED not in outcomes


@given(
    narrow=st.tuples(fractions, ages),
    wide=st.tuples(fractions, ages),
    messages=well_paired_histories(),
)
def test_keeping_more_never_shrinks_the_tail(
    narrow: tuple[float, int], wide: tuple[float, int], messages: tuple[Message, ...]
) -> None:
    """A larger preserve share and min-age keep at least as long a tail (or leave nothing to do)."""
    low = (min(narrow[0], wide[0]), min(narrow[1], wide[1]))
    high = (max(narrow[0], wide[0]), max(narrow[1], wide[1]))
    small = plan_compression(messages, preserve_fraction=low[0], min_age=low[1])
    large = plan_compression(messages, preserve_fraction=high[0], min_age=high[1])
    if large is not None:
        assert small is not None
        assert len(small.tail) <= len(large.tail)
        assert small.head == large.head


@given(messages=well_paired_histories())
def test_the_transcript_holds_every_visible_part_and_no_reasoning(
    messages: tuple[Message, ...],
) -> None:
    """Each text, call and result reaches the summariser; thinking never does."""
    transcript = render_transcript(messages)
    for message in messages:
        assert message.text in transcript
        for call in message.tool_calls:
            assert f"[assistant called {call.name}] {call.arguments_json()}" in transcript
        for result in message.tool_results:
            assert result.content in transcript
    assert "-think:" not in transcript


@given(
    messages=well_paired_histories(),
    threshold=fractions,
    limit=st.integers(min_value=1, max_value=4000),
)
async def test_the_summariser_is_asked_only_at_the_threshold(
    messages: tuple[Message, ...], threshold: float, limit: int
) -> None:
    """Below threshold x limit nothing happens; at or above it, a check goes past the trigger."""
    asked: list[int] = []

    async def summarise(middle: tuple[Message, ...], context: AgentRuntimeContext) -> str:
        asked.append(len(middle))
        return "gist"

    context = compression_context(messages, compression_threshold=threshold, context_limit=limit)
    outcome = await HistoryCompressor(summarise).maybe_compress(context)
    below = estimate_tokens(messages) < threshold * limit
    assert (outcome.status is CompressionStatus.NOT_NEEDED) == below
    if below:
        assert asked == []
        assert await context.history.messages() == messages


@given(
    failure_turns=st.integers(min_value=0, max_value=3),
    failure_seconds=st.integers(min_value=0, max_value=40),
    ineffective_turns=st.integers(min_value=0, max_value=3),
    steps=st.lists(st.tuples(st.integers(0, 25), st.booleans()), min_size=1, max_size=14),
)
async def test_retries_follow_the_cooldown_rules(
    failure_turns: int,
    failure_seconds: int,
    ineffective_turns: int,
    steps: list[tuple[int, bool]],
) -> None:
    """Against a reference model: after a failure wait n turns and s seconds, after a useless one
    wait m turns; otherwise every check over the threshold asks the summariser."""
    clock = [0.0]
    failing = [False]

    async def summarise(middle: tuple[Message, ...], context: AgentRuntimeContext) -> str:
        if failing[0]:
            raise ServerError("down", provider="demo")
        return "z" * 100_000

    policy = CompressionSettings(
        failure_cooldown_turns=failure_turns,
        failure_cooldown_seconds=failure_seconds,
        ineffective_cooldown_turns=ineffective_turns,
    )
    compressor = HistoryCompressor(summarise, settings=policy, clock=lambda: clock[0])
    context = compression_context(conversation(12), context_limit=800, compression_threshold=0.5)
    next_turn, next_time = 1, 0.0
    for turn, (advance, fails) in enumerate(steps, start=1):
        clock[0] += advance
        failing[0] = fails
        outcome = await compressor.maybe_compress(context)
        if turn < next_turn or clock[0] < next_time:
            assert outcome.status is CompressionStatus.COOLING_DOWN
        elif fails:
            assert outcome.status is CompressionStatus.FAILED
            next_turn, next_time = turn + failure_turns + 1, clock[0] + failure_seconds
        else:
            assert outcome.status is CompressionStatus.TOO_LITTLE
            next_turn, next_time = turn + ineffective_turns + 1, clock[0]
    assert await context.history.messages() == conversation(12)


@settings(max_examples=30)
@given(
    messages=well_paired_histories(min_turns=1),
    fails=st.booleans(),
    threshold=st.floats(min_value=0.0, max_value=0.6),
)
async def test_a_turn_appends_to_the_old_or_the_compressed_history_only(
    messages: tuple[Message, ...], fails: bool, threshold: float
) -> None:
    """After a turn, history is the old one or its compression, followed by exactly that turn."""

    async def summarise(middle: tuple[Message, ...], context: AgentRuntimeContext) -> str:
        if fails:
            raise ServerError("down", provider="demo")
        return "gist"

    provider = FunctionProvider(lambda invocation: ScriptedReply(text="ok"))
    context = compression_context(
        messages,
        provider=provider,
        context_limit=max(1, estimate_tokens(messages)),
        compression_threshold=threshold,
        compression_min_age=1,
    )
    await make_chat(context, compressor=HistoryCompressor(summarise)).send("next")
    stored = await context.history.messages()
    assert stored[-2:] == (Message.user("next"), Message(Role.ASSISTANT, (TextBlock("ok"),)))
    plan = plan_compression(messages, preserve_fraction=0.3, min_age=1)
    allowed = [messages]
    if plan is not None and not fails:
        allowed.append(compressed_history(plan, "gist"))
    assert stored[:-2] in allowed
    assert provider.invocations[0].history == (*stored[:-2], Message.user("next"))


@settings(max_examples=30)
@given(
    secret=st.from_regex(r"sk-[A-Za-z0-9]{24}", fullmatch=True),
    fails=st.booleans(),
)
async def test_compression_events_carry_the_scope_and_no_secret(secret: str, fails: bool) -> None:
    """Every compression event has the scope's metadata; an error's key never reaches it."""
    sink = RecordingSink()

    async def summarise(middle: tuple[Message, ...], context: AgentRuntimeContext) -> str:
        if fails:
            raise ServerError(f"upstream rejected key {secret}", provider="demo")
        return "gist"

    context = compression_context(
        conversation(12), sink=sink, context_limit=800, compression_threshold=0.5
    )
    compressor = HistoryCompressor(
        summarise,
        settings=CompressionSettings(failure_cooldown_turns=0, failure_cooldown_seconds=0),
    )
    for _ in range(2):
        await compressor.maybe_compress(context)
    names = [name for name, _ in sink.events]
    assert names == (["compression_failed"] * 2 if fails else ["history_compressed"])
    for _, fields in sink.events:
        assert {k: fields[k] for k in context.telemetry.metadata} == dict(
            context.telemetry.metadata
        )
        assert secret not in repr(fields)
