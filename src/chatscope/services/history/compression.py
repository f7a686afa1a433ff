"""History compression: when a conversation grows long, its middle is replaced by a summary.

Three parts, each replaceable on its own:

- `plan_compression` (pure, deterministic) chooses what to summarise, middle-out: the first
  exchange stays, the newest `compression-preserve-threshold` share of the tokens stays, the
  newest `compression-min-age` turns stay, the last user message stays, and no cut falls
  between a tool call and its result.
- a `Summariser` turns the middle into text: `ModelSummariser` asks a model (the scope's own, or
  the `compression` settings' provider and model); tests pass a plain async function.
- `HistoryCompressor`, one per chat session, decides when (history tokens reach
  `compression-threshold` x `context-limit`, read from the scope's ephemerals), builds head +
  summary + tail and swaps it in with one `HistoryStore.replace`. A failed summary leaves history
  untouched and the chat goes on; after a failure, or a compression not worth committing, it
  waits a number of turns (and seconds) before trying again.
"""

from __future__ import annotations

import asyncio
import enum
import math
import random
import time
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Protocol, assert_never

from chatscope.config.ephemeral import EphemeralSettings
from chatscope.config.settings import CompressionSettings, Settings
from chatscope.errors import ChatscopeError
from chatscope.services.chat import (
    ResponseAssembler,
    RetryPolicy,
    Sleep,
    repair_tool_pairs,
    stream_with_retry,
)
from chatscope.services.events import FinishReason
from chatscope.services.messages import (
    Block,
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
    estimate_tokens,
)
from chatscope.services.runtime.auth import AuthResolver, AuthSpec
from chatscope.services.runtime.context import AgentRuntimeContext, ProviderCatalog
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.ports import ModelProvider

__all__ = [
    "SUMMARY_ACKNOWLEDGEMENT",
    "SUMMARY_INTRO",
    "SUMMARY_SYSTEM_PROMPT",
    "CompressionOutcome",
    "CompressionPlan",
    "CompressionStatus",
    "HistoryCompressor",
    "ModelSummariser",
    "SummaryError",
    "Summariser",
    "compressed_history",
    "message_tokens",
    "plan_compression",
    "render_transcript",
    "threshold_tokens",
]

SUMMARY_INTRO = "Summary of the earlier conversation (older messages were condensed to save room):"
SUMMARY_ACKNOWLEDGEMENT = "Understood. I will continue from this summary."
SUMMARY_SYSTEM_PROMPT = (
    "You condense the older part of a conversation between a user and an assistant that uses "
    "tools, so that the conversation can go on without it. Write a faithful, compact summary: "
    "the user's goals and constraints, what was decided and done, the facts and tool results "
    "later turns may need (names, paths, values, errors), and what is still open. Use short "
    "paragraphs or bullet points, no preamble, and invent nothing."
)


class SummaryError(ChatscopeError):
    """Summarising produced nothing usable (an empty or cut-off summary)."""


# --- selection -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompressionPlan:
    """A history cut in three: `head + middle + tail` is the history the plan was made from."""

    head: tuple[Message, ...]
    middle: tuple[Message, ...]
    tail: tuple[Message, ...]


def message_tokens(message: Message) -> int:
    """The estimated tokens of one message (the measure the preserve fraction is taken in)."""
    return estimate_tokens((message,))


def plan_compression(
    messages: Sequence[Message], *, preserve_fraction: float, min_age: int
) -> CompressionPlan | None:
    """Choose the middle to summarise, or None when nothing may be.

    The head is the first exchange: the first user message and the reply to it, with that
    reply's tool results. The middle ends no later than the newest `min_age` turns (a turn
    starts at a user message), than the newest `preserve_fraction` of the tokens, and than the
    last user message. No part starts with a TOOL message, so a call and its results (which
    follow it directly) always stay on the same side.
    """
    history = tuple(messages)
    head_end = _first_exchange_end(history)
    if head_end is None:
        return None
    limit = min(
        _age_cut(history, min_age),
        _preserve_cut(history, preserve_fraction),
        _last_user_index(history),
    )
    middle_end = _cut_at_or_before(history, limit)
    if middle_end <= head_end:
        return None
    return CompressionPlan(history[:head_end], history[head_end:middle_end], history[middle_end:])


def _first_exchange_end(history: tuple[Message, ...]) -> int | None:
    first_user = next((i for i, m in enumerate(history) if m.role is Role.USER), None)
    if first_user is None:
        return None
    reply = next(
        (i for i in range(first_user + 1, len(history)) if history[i].role is Role.ASSISTANT),
        None,
    )
    if reply is None:
        return None
    end = reply + 1
    while end < len(history) and history[end].role is Role.TOOL:
        end += 1
    return end


def _age_cut(history: tuple[Message, ...], min_age: int) -> int:
    """Where the newest `min_age` turns begin (0 when there are not that many)."""
    if min_age <= 0:
        return len(history)
    starts = [index for index, message in enumerate(history) if message.role is Role.USER]
    return starts[-min_age] if len(starts) >= min_age else 0


def _preserve_cut(history: tuple[Message, ...], fraction: float) -> int:
    """The latest index from which the messages hold at least `fraction` of the tokens."""
    wanted = fraction * sum(message_tokens(message) for message in history)
    index, kept = len(history), 0
    while index > 0 and kept < wanted:
        index -= 1
        kept += message_tokens(history[index])
    return index


def _last_user_index(history: tuple[Message, ...]) -> int:
    return max((i for i, m in enumerate(history) if m.role is Role.USER), default=0)


def _cut_at_or_before(history: tuple[Message, ...], index: int) -> int:
    """The nearest cut at or before `index` that does not put a TOOL message first."""
    while 0 < index < len(history) and history[index].role is Role.TOOL:
        index -= 1
    return index


# --- the new history -----------------------------------------------------------------------


def compressed_history(plan: CompressionPlan, summary: str) -> tuple[Message, ...]:
    """Head, the summary as a user message, then the tail.

    When the tail opens with a user message an assistant acknowledgement goes between, so roles
    still alternate for the formats that want it (Anthropic, Gemini) rather than relying on
    adapters to merge two user turns; a tail opening with an assistant message follows the
    summary directly. After a head that ends in tool results, the summary shares their user
    turn, as a prompt after a turn cut at `max_turns` does.
    """
    bridge: tuple[Message, ...] = (Message.user(f"{SUMMARY_INTRO}\n\n{summary}"),)
    if plan.tail and plan.tail[0].role is Role.USER:
        bridge += (Message(Role.ASSISTANT, (TextBlock(SUMMARY_ACKNOWLEDGEMENT),)),)
    return (*plan.head, *bridge, *plan.tail)


def render_transcript(messages: Sequence[Message]) -> str:
    """The messages as plain text for a summariser; reasoning is left out."""
    lines = (_render_block(m.role, b) for m in messages for b in m.blocks)
    return "\n\n".join(line for line in lines if line)


def _render_block(role: Role, block: Block) -> str | None:
    match block:
        case TextBlock(text=text):
            return f"[{role}] {text}" if text else None
        case ThinkingBlock():
            return None
        case ToolCallBlock():
            return f"[assistant called {block.name}] {block.arguments_json()}"
        case ToolResultBlock():
            outcome = "failed" if block.is_error else "returned"
            return f"[{block.name} {outcome}] {block.content}"
        case _:
            assert_never(block)


# --- summarisers ---------------------------------------------------------------------------


class Summariser(Protocol):
    """Condenses messages of `context`'s history into a summary text."""

    async def __call__(self, messages: tuple[Message, ...], context: AgentRuntimeContext, /) -> str:
        """The summary of `messages`; raises a `ChatscopeError` when it cannot be made."""
        ...


@dataclass(frozen=True, slots=True)
class _SummaryRoute:
    adapter: ModelProvider
    provider: str
    model: str
    base_url: str | None
    auth: AuthSpec


class ModelSummariser:
    """Summarises with one model call, retried like any other and keyed per call.

    The model is the scope's own provider and model unless the `compression` settings name
    others. The call carries no tools and no model params (a thinking budget could exceed the
    summary's output cap), and `maxOutputTokens` is capped at `max_summary_tokens`.
    """

    __slots__ = ("_auth", "_catalog", "_retry", "_rng", "_settings", "_sleep")

    def __init__(
        self,
        *,
        auth_resolver: AuthResolver,
        retry_policy: RetryPolicy,
        provider_catalog: ProviderCatalog,
        settings: Settings,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._auth = auth_resolver
        self._retry = retry_policy
        self._catalog = provider_catalog
        self._settings = settings
        self._rng = rng
        self._sleep = sleep

    async def __call__(self, messages: tuple[Message, ...], context: AgentRuntimeContext) -> str:
        """Ask the model for a summary of `messages`."""
        route = self._route(context)
        invocation = self._invocation(route, messages, context)
        assembler = ResponseAssembler(route.provider)
        events = stream_with_retry(
            route.adapter, invocation, self._retry, rng=self._rng, sleep=self._sleep
        )
        async with aclosing(events):
            async for event in events:
                assembler.add(event)
        if assembler.finish_reason is FinishReason.LENGTH:
            raise SummaryError(
                "the summary was cut off at compression.max_summary_tokens "
                f"({self._settings.compression.max_summary_tokens})"
            )
        return assembler.message().text.strip()

    def _route(self, context: AgentRuntimeContext) -> _SummaryRoute:
        wanted = self._settings.compression
        state = context.state
        if wanted.provider is None or wanted.provider == state.provider:
            adapter = context.provider.get_active_provider()
            model = wanted.model or state.model
            return _SummaryRoute(adapter, state.provider, model, state.base_url, context.auth)
        section = self._settings.providers.get(wanted.provider)
        auth = AuthSpec.for_provider(
            wanted.provider,
            api_key=section.api_key,
            key_file=section.key_file,
            required=section.auth_required,
        )
        model = wanted.model or section.default_model
        adapter = self._catalog.create(wanted.provider)
        return _SummaryRoute(adapter, wanted.provider, model, section.base_url, auth)

    def _invocation(
        self, route: _SummaryRoute, messages: tuple[Message, ...], context: AgentRuntimeContext
    ) -> ModelInvocation:
        cap = min(
            context.ephemerals.max_output_tokens, self._settings.compression.max_summary_tokens
        )
        request = f"Summarise this part of the conversation:\n\n{render_transcript(messages)}"
        return ModelInvocation(
            runtime_id=context.runtime_id,
            provider=route.provider,
            model=route.model,
            base_url=route.base_url,
            credentials=self._auth.resolve(route.auth),
            history=(Message.user(request),),
            ephemerals=context.ephemerals.with_overrides({"maxOutputTokens": cap}),
            system_prompt=SUMMARY_SYSTEM_PROMPT,
        )


# --- the compressor ------------------------------------------------------------------------


def threshold_tokens(ephemerals: EphemeralSettings) -> float:
    """Tokens at which history is compressed: `compression-threshold` x `context-limit`."""
    return ephemerals.compression_threshold * ephemerals.context_limit


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
