"""Compression at its exact limits: a middle of exactly `min_savings`, a saving of exactly
`min_savings`, a result landing exactly on the threshold, a preserved share one token short.

Every rule of the compressor is "at most" or "at least"; these histories are sized in whole
tokens (4 characters each) so that each rule is met with equality, where an off-by-one in the
code changes the outcome.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from chatscope.config.settings import CompressionSettings
from chatscope.services.history.compression import (
    CompressionOutcome,
    CompressionStatus,
    HistoryCompressor,
)
from chatscope.services.history.plan import (
    SUMMARY_ACKNOWLEDGEMENT,
    SUMMARY_INTRO,
    compressed_history,
    plan_compression,
)
from chatscope.services.messages import Message, estimate_tokens
from tests.support.histories import Summaries, compression_context, conversation, reply, user

# Summarise everything between the first exchange and the last one.
LAST_TURN_ONLY = {"compression_preserve_threshold": 0.0, "compression_min_age": 1}
BRIDGE_CHARS = len(SUMMARY_INTRO) + len("\n\n") + len(SUMMARY_ACKNOWLEDGEMENT)


def _history(head: int, middle: int, tail: int) -> tuple[Message, ...]:
    """u0 a0 | u1 a1 u2 a2 | u3 a3, each part holding that many characters in all."""
    return (
        user("h" * (head // 2)),
        reply("h" * (head - head // 2)),
        *(user("m" * (middle // 4)), reply("m" * (middle // 4))) * 2,
        user("t" * (tail // 2)),
        reply("t" * (tail - tail // 2)),
    )


def _summary_length_for(after_tokens: int, head: int, tail: int) -> int:
    """The summary length that makes the compressed history exactly `after_tokens` long."""
    return 4 * after_tokens - (head + BRIDGE_CHARS + tail)


async def _compress_with_quarter_savings(
    head: int, middle: int
) -> tuple[CompressionOutcome, Summaries]:
    """A 400-token history (`tail` filling it up) checked once with min_savings 0.25."""
    history = _history(head=head, middle=middle, tail=1600 - head - middle)
    assert estimate_tokens(history) == 400
    summaries = Summaries("s" * 10)
    compressor = HistoryCompressor(summaries, settings=CompressionSettings(min_savings=0.25))
    context = compression_context(
        history, context_limit=800, compression_threshold=0.5, knobs=LAST_TURN_ONLY
    )
    return await compressor.maybe_compress(context), summaries


async def test_a_middle_of_exactly_min_savings_is_not_summarised() -> None:
    """Middle = 100 of 400 tokens with min_savings 0.25: not worth a model call."""
    outcome, summaries = await _compress_with_quarter_savings(head=200, middle=400)
    assert outcome.status is CompressionStatus.TOO_LITTLE
    assert summaries.calls == []


async def test_a_middle_one_token_over_min_savings_is_summarised() -> None:
    """Middle = 101 of 400 tokens with min_savings 0.25: the model is asked for a summary."""
    outcome, summaries = await _compress_with_quarter_savings(head=196, middle=404)
    assert len(summaries.calls) == 1
    # Summarised, then judged: 196 + 129 + 10 + 1000 characters save too little to commit.
    assert (outcome.status, outcome.tokens_after) == (CompressionStatus.TOO_LITTLE, 333)


@given(
    after=st.integers(min_value=233, max_value=399),
    min_savings=st.sampled_from([0.0, 0.125, 0.25]),
    context_limit=st.integers(min_value=400, max_value=800),
)
@example(after=300, min_savings=0.25, context_limit=800)  # saves exactly min_savings
@example(after=299, min_savings=0.25, context_limit=800)  # one token more saved
@example(after=300, min_savings=0.0, context_limit=600)  # lands exactly on the threshold
@example(after=299, min_savings=0.0, context_limit=600)  # one token under it
async def test_a_result_is_committed_exactly_when_it_saves_enough_and_ends_under_the_threshold(
    after: int, min_savings: float, context_limit: int
) -> None:
    """Committed iff saved > min_savings x before and the result < the threshold; else kept."""
    head, tail = 200, 600
    history = _history(head=head, middle=800, tail=tail)
    before = estimate_tokens(history)
    summaries = Summaries("s" * _summary_length_for(after, head, tail))
    compressor = HistoryCompressor(summaries, settings=CompressionSettings(min_savings=min_savings))
    context = compression_context(
        history, context_limit=context_limit, compression_threshold=0.5, knobs=LAST_TURN_ONLY
    )
    outcome = await compressor.maybe_compress(context)
    threshold = 0.5 * context_limit
    worth_it = before - after > min_savings * before and after < threshold
    assert outcome.tokens_after == after
    assert outcome.status is (
        CompressionStatus.COMPRESSED if worth_it else CompressionStatus.TOO_LITTLE
    )
    plan = plan_compression(history, preserve_fraction=0.0, min_age=1)
    assert plan is not None
    expected = compressed_history(plan, summaries.text) if worth_it else history
    assert await context.history.messages() == expected


def test_a_message_that_brings_the_preserved_share_over_the_fraction_is_kept() -> None:
    """The tail holds at least the fraction: 60 tokens kept of 60.5 wanted take one more message."""
    history = conversation(4)  # 8 messages of 83 characters: 20 tokens each, 160 in all
    fraction = 60.5 / 160
    plan = plan_compression(history, preserve_fraction=fraction, min_age=0)
    assert plan is not None
    assert (plan.middle, plan.tail) == (history[2:4], history[4:])


def test_a_preserved_share_met_exactly_keeps_no_more() -> None:
    """60 tokens wanted and the newest three messages hold 60: the cut is right before them."""
    history = conversation(4)
    plan = plan_compression(history, preserve_fraction=60 / 160, min_age=0)
    assert plan is not None
    assert (plan.middle, plan.tail) == (history[2:5], history[5:])
