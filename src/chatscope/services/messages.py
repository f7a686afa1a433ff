"""Provider-neutral conversation messages, as stored in history and sent to every adapter.

Adapters map these to and from their wire formats; a block kind an adapter cannot express is an
error there, never a silent drop.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chatscope.services.frozen import FrozenDict, deep_freeze, thaw

__all__ = [
    "Block",
    "Message",
    "Role",
    "TextBlock",
    "ThinkingBlock",
    "ToolCallBlock",
    "ToolResultBlock",
    "Usage",
    "estimate_tokens",
]

_CHARS_PER_TOKEN = 4


class Role(enum.StrEnum):
    """Who a message is from; the system prompt travels beside history, not in it."""

    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


@dataclass(frozen=True, slots=True)
class TextBlock:
    """Visible text. `signature` keeps a Gemini thought signature attached to a text part."""

    text: str
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class ThinkingBlock:
    """Model reasoning; `signature` / `redacted_data` must be sent back unchanged to its provider.

    `provider` names the adapter that produced it: signatures are only meaningful there.
    """

    text: str
    signature: str | None = None
    redacted_data: str | None = None
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallBlock:
    """A request from the model to run a tool; `arguments` is deeply frozen.

    `provider` names the adapter that produced the call; `signature` (a Gemini thought
    signature) and `item_id` (an OpenAI Responses `fc_...` item id) are only meaningful there.
    `arguments_error` says why the model's arguments could not be read (they were not a JSON
    object): such a call has no arguments, and running it tells the model what to correct.
    """

    id: str
    name: str
    arguments: FrozenDict = field(default_factory=FrozenDict)
    signature: str | None = None
    item_id: str | None = None
    provider: str | None = None
    arguments_error: str | None = None

    @classmethod
    def create(
        cls, id: str, name: str, arguments: Mapping[str, Any], **origin: str | None
    ) -> ToolCallBlock:
        """Build a call, freezing the arguments; `origin` is signature, item_id, provider
        (and `arguments_error`)."""
        return cls(id=id, name=name, arguments=deep_freeze(arguments), **origin)

    @classmethod
    def from_json(cls, id: str, name: str, raw: str, **origin: str | None) -> ToolCallBlock:
        """A call from its arguments as JSON text, as the model wrote them; empty means none.

        Text that is not a JSON object gives a call with no arguments and an `arguments_error`
        (the tool is not run; the model is told), never an exception: bad input of the model's
        is the model's to correct, like any other.
        """
        if not raw:
            return cls.create(id, name, {}, **origin)
        try:
            arguments = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            problem = f"not valid JSON ({exc})" if isinstance(exc, ValueError) else "too deep"
            return cls.create(id, name, {}, arguments_error=_unreadable(raw, problem), **origin)
        if not isinstance(arguments, dict):
            problem = f"a JSON {type(arguments).__name__}, not a JSON object"
            return cls.create(id, name, {}, arguments_error=_unreadable(raw, problem), **origin)
        return cls.create(id, name, arguments, **origin)

    def arguments_json(self) -> str:
        """The arguments as compact JSON, as OpenAI-style wire formats want them."""
        return json.dumps(thaw(self.arguments), separators=(",", ":"), ensure_ascii=False)


_SHOWN_ARGUMENT_CHARS = 200


def _unreadable(raw: str, problem: str) -> str:
    """Why arguments `raw` cannot be read, with (the start of) what the model sent."""
    shown = raw if len(raw) <= _SHOWN_ARGUMENT_CHARS else raw[:_SHOWN_ARGUMENT_CHARS] + "..."
    return f"{problem}; received {shown!r}"


@dataclass(frozen=True, slots=True)
class ToolResultBlock:
    """The outcome of one tool call: exactly one of `result` and `error` is set."""

    call_id: str
    name: str
    result: str | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if (self.result is None) == (self.error is None):
            raise ValueError("a tool result holds exactly one of result and error")

    @property
    def is_error(self) -> bool:
        """Whether the tool failed."""
        return self.error is not None

    @property
    def content(self) -> str:
        """What the model reads: the result, or the error text."""
        return self.result if self.result is not None else f"Error: {self.error}"


Block = TextBlock | ThinkingBlock | ToolCallBlock | ToolResultBlock


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a conversation."""

    role: Role
    blocks: tuple[Block, ...]

    @classmethod
    def user(cls, text: str) -> Message:
        """A plain user message."""
        return cls(Role.USER, (TextBlock(text),))

    @property
    def text(self) -> str:
        """The visible text of the message, blocks joined."""
        return "".join(block.text for block in self.blocks if isinstance(block, TextBlock))

    @property
    def tool_calls(self) -> tuple[ToolCallBlock, ...]:
        """The tool calls this message makes."""
        return tuple(block for block in self.blocks if isinstance(block, ToolCallBlock))

    @property
    def tool_results(self) -> tuple[ToolResultBlock, ...]:
        """The tool results this message carries."""
        return tuple(block for block in self.blocks if isinstance(block, ToolResultBlock))


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one or more API calls."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


def estimate_tokens(messages: tuple[Message, ...] | list[Message]) -> int:
    """A cheap estimate (4 characters a token) used until the API reports real usage."""
    return sum(_message_chars(message) for message in messages) // _CHARS_PER_TOKEN


def _message_chars(message: Message) -> int:
    return sum(_block_chars(block) for block in message.blocks)


def _block_chars(block: Block) -> int:
    match block:
        case TextBlock(text=text) | ThinkingBlock(text=text):
            return len(text)
        case ToolCallBlock():
            return len(block.name) + len(block.arguments_json())
        case ToolResultBlock():
            return len(block.content)
