"""History compression: when a conversation grows long, its middle is replaced by a summary.

Three parts, each replaceable on its own: the middle-out plan (`plan`), the `Summariser` that
turns the middle into text (`summariser`), and, here, `HistoryCompressor`, one per chat
session, which decides when (history tokens reach `compression-threshold` x `context-limit`,
read from the scope's ephemerals), builds head + summary + tail and swaps it in with one
`HistoryStore.replace`. A failed summary leaves history untouched and the chat goes on; after a
failure, or a compression not worth committing, it waits a number of turns (and seconds) before
trying again.
"""

from __future__ import annotations

import asyncio
import enum
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from chatscope.config.settings import CompressionSettings
from chatscope.errors import ChatscopeError
from chatscope.services.chat import repair_tool_pairs
from chatscope.services.history.plan import (
    CompressionPlan,
    compressed_history,
    plan_compression,
    threshold_tokens,
)
from chatscope.services.history.summariser import Summariser, SummaryError
from chatscope.services.messages import estimate_tokens
from chatscope.services.runtime.context import AgentRuntimeContext

__all__ = ["CompressionOutcome", "CompressionRules", "CompressionStatus", "HistoryCompressor"]


class CompressionStatus(enum.StrEnum):
    """What one `maybe_compress` did."""

    NOT_NEEDED = "not_needed"
    DISABLED = "disabled"
    COOLING_DOWN = "cooling_down"
    NOTHING_ELIGIBLE = "nothing_eligible"
    TOO_LITTLE = "too_little"
    HISTORY_CHANGED = "history_changed"
    FAILED = "failed"
    COMPRESSED = "compressed"


@dataclass(frozen=True, slots=True)
class CompressionOutcome:
    """The result of one check: what happened, and the history's tokens before and after.

    `tokens_after` is the projected size of the compressed history when one was built (whether
    committed or not), else `tokens_before`.
    """

    status: CompressionStatus
    tokens_before: int
    tokens_after: int


@dataclass(frozen=True, slots=True)
class _Attempt:
    context: AgentRuntimeContext
    tokens: int
    threshold: float


Clock = Callable[[], float]


class HistoryCompressor:
    """Keeps one chat's history under its compression threshold; one instance per chat session.

    Its only state is when it may try again, counted in its own calls (one per turn) and in
    seconds of `clock`, which also times each attempt for telemetry.
    """

    __slots__ = ("_clock", "_retry_time", "_retry_turn", "_settings", "_summarise", "_turn")

    def __init__(
        self,
        summariser: Summariser,
        *,
        settings: CompressionSettings | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self._summarise = summariser
        self._settings = settings if settings is not None else CompressionSettings()
        self._clock = clock
        self._turn = 0
        self._retry_turn = 0
        self._retry_time = -math.inf

    async def maybe_compress(self, context: AgentRuntimeContext) -> CompressionOutcome:
        """Compress `context`'s history if it reached the threshold; call once before a turn.

        A failed summary (any `ChatscopeError`, or the summary timeout) is reported and
        swallowed: history is left exactly as it was.
        """
        self._turn += 1
        if not self._settings.enabled:
            return CompressionOutcome(CompressionStatus.DISABLED, 0, 0)
        tokens = await context.history.token_count()
        attempt = _Attempt(context, tokens, threshold_tokens(context.ephemerals))
        if tokens < attempt.threshold:
            return CompressionOutcome(CompressionStatus.NOT_NEEDED, tokens, tokens)
        if self._turn < self._retry_turn or self._clock() < self._retry_time:
            return self._skip(attempt, CompressionStatus.COOLING_DOWN, back_off=False)
        started = self._clock()
        try:
            return await self._compress(attempt, started)
        except (ChatscopeError, TimeoutError) as error:
            return self._fail(attempt, error, started)

    async def _compress(self, attempt: _Attempt, started: float) -> CompressionOutcome:
        history, ephemerals = attempt.context.history, attempt.context.ephemerals
        original = await history.messages()
        plan = plan_compression(
            repair_tool_pairs(original),
            preserve_fraction=ephemerals.compression_preserve_threshold,
            min_age=ephemerals.compression_min_age,
        )
        if plan is None:
            return self._skip(attempt, CompressionStatus.NOTHING_ELIGIBLE)
        before = estimate_tokens(original)
        if estimate_tokens(plan.middle) <= self._settings.min_savings * before:
            return self._skip(attempt, CompressionStatus.TOO_LITTLE)
        compressed = compressed_history(plan, await self._summary(plan, attempt.context))
        after = estimate_tokens(compressed)
        projected = attempt.tokens - before + after
        if before - after <= self._settings.min_savings * before or projected >= attempt.threshold:
            return self._skip(attempt, CompressionStatus.TOO_LITTLE, projected=projected)
        if await history.messages() != original:
            return self._skip(attempt, CompressionStatus.HISTORY_CHANGED, back_off=False)
        await history.replace(compressed)
        self._retry_turn, self._retry_time = 0, -math.inf
        attempt.context.telemetry.history_compressed(
            tokens_before=attempt.tokens,
            tokens_after=projected,
            messages_before=len(original),
            messages_after=len(compressed),
            summarised_messages=len(plan.middle),
            duration_ms=self._elapsed_ms(started),
        )
        return CompressionOutcome(CompressionStatus.COMPRESSED, attempt.tokens, projected)

    async def _summary(self, plan: CompressionPlan, context: AgentRuntimeContext) -> str:
        async with asyncio.timeout(self._settings.summary_timeout):
            summary = (await self._summarise(plan.middle, context)).strip()
        if not summary:
            raise SummaryError("the summariser returned an empty summary")
        return summary

    def _skip(
        self,
        attempt: _Attempt,
        status: CompressionStatus,
        *,
        back_off: bool = True,
        projected: int | None = None,
    ) -> CompressionOutcome:
        """History stays; a plan that was not worth it is not tried again for a while."""
        wait = self._settings.ineffective_cooldown_turns if back_off else 0
        if back_off:
            self._back_off(wait, 0.0)
        attempt.context.telemetry.compression_skipped(
            reason=str(status),
            tokens=attempt.tokens,
            threshold_tokens=math.ceil(attempt.threshold),
            retry_after_turns=wait,
        )
        after = attempt.tokens if projected is None else projected
        return CompressionOutcome(status, attempt.tokens, after)

    def _fail(
        self, attempt: _Attempt, error: ChatscopeError | TimeoutError, started: float
    ) -> CompressionOutcome:
        wait = self._settings.failure_cooldown_turns
        self._back_off(wait, self._settings.failure_cooldown_seconds)
        if not isinstance(error, ChatscopeError):  # the summary timeout
            error = TimeoutError(f"no summary within {self._settings.summary_timeout:g}s")
        attempt.context.telemetry.compression_failed(
            duration_ms=self._elapsed_ms(started),
            error=error,
            retry_after_turns=wait,
        )
        return CompressionOutcome(CompressionStatus.FAILED, attempt.tokens, attempt.tokens)

    def _elapsed_ms(self, started: float) -> float:
        """Milliseconds of `clock` since `started` (the durations telemetry reports)."""
        return (self._clock() - started) * 1000

    def _back_off(self, turns: int, seconds: float) -> None:
        """Skip the next `turns` checks, and any check before `seconds` from now."""
        self._retry_turn = self._turn + turns + 1
        self._retry_time = self._clock() + seconds


@dataclass(frozen=True, slots=True)
class CompressionRules:
    """What the compressors of an application's chats share: the summariser and settings."""

    summariser: Summariser
    settings: CompressionSettings

    def compressor(self) -> HistoryCompressor:
        """A compressor for one chat; when it may try again is its own."""
        return HistoryCompressor(self.summariser, settings=self.settings)
