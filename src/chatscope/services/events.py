"""Typed events: what a provider streams, and what a chat streams to its caller."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from chatscope.services.messages import ToolCallBlock, ToolResultBlock, Usage

__all__ = [
    "AnsweredBy",
    "ChatEvent",
    "CompletedTurn",
    "FinishEvent",
    "FinishReason",
    "ProviderEvent",
    "TextDelta",
    "ThinkingDelta",
    "ToolCallEvent",
    "ToolResultEvent",
    "TurnDone",
    "UsageEvent",
]


class FinishReason(enum.StrEnum):
    """Why a model response, or a whole turn, ended."""

    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    MAX_TURNS = "max_turns"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of visible text; `signature` closes the block with a provider signature."""

    text: str
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    """A piece of reasoning; a signature or redacted payload arrives on its own delta."""

    text: str
    signature: str | None = None
    redacted_data: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallEvent:
    """A complete tool call, its streamed argument pieces already assembled and parsed."""

    call: ToolCallBlock


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """Token usage reported by the API; several events in one response are summed."""

    usage: Usage


@dataclass(frozen=True, slots=True)
class FinishEvent:
    """The end of one model response; `raw` keeps the provider's own word for it."""

    reason: FinishReason
    raw: str | None = None


ProviderEvent = TextDelta | ThinkingDelta | ToolCallEvent | UsageEvent | FinishEvent


@dataclass(frozen=True, slots=True)
class ToolResultEvent:
    """A tool ran (or failed) and its result goes back to the model."""

    result: ToolResultBlock


@dataclass(frozen=True, slots=True)
class AnsweredBy:
    """The endpoint that answered a turn (its last model call): provider and model, and with a
    fallback chain the member's position in it (0: the scope's own endpoint)."""

    provider: str
    model: str
    member: int | None = None


@dataclass(frozen=True, slots=True)
class CompletedTurn:
    """What `ChatSession.send` returns: one user prompt answered, tools and all.

    `output` is the validated answer of a turn sent with an `output_type` (an instance of that
    type, or the parsed JSON for a JSON-schema dict); None without one, or when the turn hit
    its turn limit before answering. `text` leaves out answers that failed validation.
    `answered_by` is the endpoint that answered (with a fallback chain, not always the
    scope's own).
    """

    text: str
    tool_calls: tuple[ToolCallBlock, ...]
    tool_results: tuple[ToolResultBlock, ...]
    usage: Usage
    finish_reason: FinishReason
    model_calls: int
    output: Any = None
    answered_by: AnsweredBy | None = None


@dataclass(frozen=True, slots=True)
class TurnDone:
    """The last event of a streamed turn; history now holds the turn."""

    turn: CompletedTurn


ChatEvent = TextDelta | ThinkingDelta | ToolCallEvent | ToolResultEvent | UsageEvent | TurnDone
