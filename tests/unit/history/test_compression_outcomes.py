"""What `HistoryCompressor` reports for each decision, and when it tries again.

The outcome's token figures and the telemetry fields are what an operator sees of
compression; these tests pin them for every status, and the cooldown rules around a race and
around a success.
"""

from __future__ import annotations

import asyncio
import math

from hypothesis import given
from hypothesis import strategies as st

from chatscope.config.settings import CompressionSettings
from chatscope.errors import ServerError
from chatscope.services.history.compression import (
    CompressionOutcome,
    CompressionStatus,
    HistoryCompressor,
)
from chatscope.services.messages import Message, estimate_tokens
from chatscope.services.runtime.context import AgentRuntimeContext
from chatscope.services.runtime.observability.telemetry import RecordingSink
from tests.support.histories import compression_context, conversation, reply, user

TWELVE = conversation(12)  # 499 estimated tokens
LOW_LIMIT = {"context_limit": 800, "compression_threshold": 0.5}  # threshold: 400 tokens


async def _gist(messages: tuple[Message, ...], context: AgentRuntimeContext) -> str:
    return "the gist"


async def _failing(messages: tuple[Message, ...], context: AgentRuntimeContext) -> str:
    raise ServerError("down", provider="demo")


@given(turns=st.integers(min_value=0, max_value=12))
async def test_disabled_reports_zero_tokens_both_ways(turns: int) -> None:
    """Switched off, nothing is measured: 0 before, 0 after."""
    compressor = HistoryCompressor(_gist, settings=CompressionSettings(enabled=False))
    outcome = await compressor.maybe_compress(compression_context(conversation(turns)))
    assert outcome == CompressionOutcome(CompressionStatus.DISABLED, 0, 0)


@given(turns=st.integers(min_value=0, max_value=8))
async def test_under_the_threshold_both_figures_are_the_history_size(turns: int) -> None:
    """Not needed: before and after are the history's tokens, unchanged."""
    history = conversation(turns)
    outcome = await HistoryCompressor(_gist).maybe_compress(compression_context(history))
    tokens = estimate_tokens(history)
    assert outcome == CompressionOutcome(CompressionStatus.NOT_NEEDED, tokens, tokens)


@given(cooldown=st.integers(min_value=0, max_value=9))
async def test_a_failure_reports_unchanged_tokens_and_its_cooldown(cooldown: int) -> None:
    """Failed: before == after == the history's tokens; the report says how long it waits."""
    sink = RecordingSink()
    settings = CompressionSettings(failure_cooldown_turns=cooldown)
    context = compression_context(TWELVE, sink=sink, knobs=LOW_LIMIT)
    outcome = await HistoryCompressor(_failing, settings=settings).maybe_compress(context)
    assert outcome == CompressionOutcome(CompressionStatus.FAILED, 499, 499)
    [event] = sink.named("compression_failed")
    assert event["retry_after_turns"] == cooldown
    assert 0 <= event["duration_ms"] < 60_000


async def test_a_timeout_is_reported_with_the_configured_limit() -> None:
    """A summary that takes too long fails with a message naming the time allowed."""
    sink = RecordingSink()

    async def stuck(messages: tuple[Message, ...], context: AgentRuntimeContext) -> str:
        await asyncio.sleep(10)
        return "late"

    settings = CompressionSettings(summary_timeout=0.02)
    context = compression_context(TWELVE, sink=sink, knobs=LOW_LIMIT)
    await HistoryCompressor(stuck, settings=settings).maybe_compress(context)
    [event] = sink.named("compression_failed")
    assert event["error_type"] == "TimeoutError"
    assert "no summary within 0.02s" in event["error"]


async def test_a_skip_reports_tokens_threshold_and_wait() -> None:
    """A skipped compression reports the reason, the history and threshold sizes, the wait."""
    sink = RecordingSink()
    settings = CompressionSettings(ineffective_cooldown_turns=4)
    context = compression_context(
        conversation(3), sink=sink, context_limit=100, compression_threshold=0.51
    )
    outcome = await HistoryCompressor(_gist, settings=settings).maybe_compress(context)
    assert outcome.status is CompressionStatus.NOTHING_ELIGIBLE
    [event] = sink.named("compression_skipped")
    assert event["reason"] == "nothing_eligible"
    assert event["tokens"] == outcome.tokens_before == outcome.tokens_after
    assert event["threshold_tokens"] == math.ceil(100 * 0.51)
    assert event["retry_after_turns"] == 4


async def test_a_race_with_another_writer_is_tried_again_at_once() -> None:
    """History changed under the summary: reported with no wait, and the next check retries."""
    sink = RecordingSink()
    context = compression_context(TWELVE, sink=sink, knobs=LOW_LIMIT)
    calls = 0

    async def racing_once(messages: tuple[Message, ...], ctx: AgentRuntimeContext) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await ctx.history.append_turn([user("late"), reply("arrival")])
        return "gist"

    compressor = HistoryCompressor(racing_once)
    first = await compressor.maybe_compress(context)
    assert first.status is CompressionStatus.HISTORY_CHANGED
    assert sink.named("compression_skipped")[0]["retry_after_turns"] == 0
    second = await compressor.maybe_compress(context)
    assert second.status is CompressionStatus.COMPRESSED
    assert calls == 2


async def test_after_a_success_the_next_overflow_compresses_again() -> None:
    """A successful compression clears any cooldown: history that grows back is compressed."""
    context = compression_context(TWELVE, knobs=LOW_LIMIT)
    compressor = HistoryCompressor(_gist)
    assert (await compressor.maybe_compress(context)).status is CompressionStatus.COMPRESSED
    await context.history.append_turn(conversation(12, size=90))
    assert (await compressor.maybe_compress(context)).status is CompressionStatus.COMPRESSED
