"""Middle-out planning for history compression: what to summarise, and what replaces it.

Pure and deterministic, so it can be tested and reasoned about without a model or a store:

- `plan_compression` chooses what to summarise, middle-out: the first exchange stays, the
  newest `compression-preserve-threshold` share of the tokens stays, the newest
  `compression-min-age` turns stay, the last user message stays, and no cut falls between a
  tool call and its result.
- `compressed_history` builds head + summary + tail from a plan and a summary text.
- `threshold_tokens` is the history size at which compression is due: `compression-threshold`
  x `context-limit`, read from the scope's ephemerals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chatscope.config.ephemeral import EphemeralSettings
from chatscope.services.messages import Message, Role, TextBlock, estimate_tokens

__all__ = [
    "SUMMARY_ACKNOWLEDGEMENT",
    "SUMMARY_INTRO",
    "CompressionPlan",
    "compressed_history",
    "message_tokens",
    "plan_compression",
    "threshold_tokens",
]

SUMMARY_INTRO = "Summary of the earlier conversation (older messages were condensed to save room):"
SUMMARY_ACKNOWLEDGEMENT = "Understood. I will continue from this summary."


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


# --- the threshold -------------------------------------------------------------------------


def threshold_tokens(ephemerals: EphemeralSettings) -> float:
    """Tokens at which history is compressed: `compression-threshold` x `context-limit`."""
    return ephemerals.compression_threshold * ephemerals.context_limit
