"""A conversation's successive requests, for the tests of what is kept from one to the next.

A history moves on between two requests in one of a few ways: messages are appended (a turn,
or a step of one), it is compressed (a summary, then a tail of the very same message objects),
it is rewound (a turn failed and is not stored; the next one goes on from earlier), its last
message that is not a TOOL message is taken back and results for the calls before it follow,
or it is read back as equal but distinct objects (which may still differ on the wire: `1` and
`1.0`).
`steps()` draws such moves; `next_history` applies one. `sent_body` is what an adapter puts on
the wire for one invocation, from a server that refuses everything (only the request matters).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import httpx
from hypothesis import strategies as st

from chatscope.adapters.providers.anthropic.messages import AnthropicProvider
from chatscope.adapters.providers.gemini import GeminiProvider
from chatscope.adapters.providers.openai.chat import OpenAIChatProvider
from chatscope.adapters.providers.openai.responses import OpenAIResponsesProvider
from chatscope.errors import ProviderError
from chatscope.services.frozen import FrozenDict
from chatscope.services.messages import (
    Block,
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)
from chatscope.services.runtime.invocation import ModelInvocation
from tests.support.adapter_helpers import collect
from tests.support.histories import messy_histories, well_paired_histories
from tests.support.message_strategies import messages as any_messages

__all__ = [
    "FORMATS",
    "Adapter",
    "Step",
    "equal_twin",
    "next_history",
    "refusing_client",
    "sent_body",
    "steps",
]

Adapter = OpenAIChatProvider | OpenAIResponsesProvider | AnthropicProvider | GeminiProvider
FORMATS: dict[str, Callable[..., Adapter]] = {
    "openai": OpenAIChatProvider,
    "openai-responses": OpenAIResponsesProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
}

Step = tuple[str, tuple[Message, ...], int]
"""(move, messages it brings, a number: how much tail compression keeps, where a rewind goes)."""

_MOVES = ("append", "append", "append", "compress", "rewind", "retract", "twin")
_small_texts = st.text(max_size=8)


@st.composite
def _signed_reply(draw: st.DrawFn) -> tuple[Message, ...]:
    """An assistant message with provider-owned reasoning, signatures and integer arguments
    (whose equal twins differ on the wire), its calls usually answered."""
    provider = draw(st.sampled_from([*FORMATS, None]))
    ids = draw(st.lists(st.sampled_from(["call_0", "call_1", "x" * 50]), max_size=2, unique=True))
    blocks: list[Block] = [
        ThinkingBlock(
            draw(_small_texts),
            signature=draw(st.none() | _small_texts),
            redacted_data=draw(st.none() | _small_texts),
            provider=provider,
        ),
        TextBlock(draw(_small_texts), signature=draw(st.none() | _small_texts)),
    ]
    for call_id in ids:
        arguments = {"n": draw(st.integers(-(2**40), 2**40)), "flag": draw(st.booleans())}
        origin = {"item_id": draw(st.none() | _small_texts), "provider": provider}
        blocks.append(ToolCallBlock.create(call_id, "lookup", arguments, **origin))
    reply = Message(Role.ASSISTANT, tuple(draw(st.permutations(blocks))))
    if not ids or not draw(st.booleans()):
        return (reply,)
    results = tuple(ToolResultBlock(i, "lookup", result=draw(_small_texts)) for i in ids)
    return (reply, Message(Role.TOOL, results))


# Mostly what chatscope stores; sometimes orphans and strays, sometimes anything at all (which a
# wire format may refuse: then the refusal must be the same as well).
_CHUNKS = st.one_of(
    well_paired_histories(max_turns=3),
    messy_histories(),
    messy_histories().map(lambda messages: messages[:2]),  # a step of a turn
    _signed_reply(),
    st.lists(any_messages, max_size=2).map(tuple),
)


def steps(max_size: int = 8) -> st.SearchStrategy[list[Step]]:
    """Successive moves of one conversation's history."""
    step = st.tuples(st.sampled_from(_MOVES), _CHUNKS, st.integers(min_value=0, max_value=40))
    return st.lists(step, min_size=1, max_size=max_size)


def next_history(history: tuple[Message, ...], step: Step) -> tuple[Message, ...]:
    """The history of the next request, `step` applied to that of the last."""
    move, new, number = step
    if move == "compress":
        kept = history[len(history) - min(number, len(history)) :]
        return (Message.user("A summary of what came before."), *kept, *new)
    if move == "rewind":
        return (*history[: number % (len(history) + 1)], *new)
    if move == "retract":
        kept = history[: _last_non_tool(history)]
        return (*kept, *_answers(kept), *new)
    if move == "twin":
        return tuple(equal_twin(message) for message in history)
    return (*history, *new)


def _last_non_tool(history: tuple[Message, ...]) -> int:
    return max((i for i, m in enumerate(history) if m.role is not Role.TOOL), default=0)


def _answers(history: tuple[Message, ...]) -> tuple[Message, ...]:
    """A TOOL message answering the calls of the last message that is not one, if it has any."""
    if not history:
        return ()
    calls = history[_last_non_tool(history)].tool_calls
    results = tuple(ToolResultBlock(call.id, call.name, result="late") for call in calls)
    return (Message(Role.TOOL, results),) if results else ()


def equal_twin(message: Message) -> Message:
    """A distinct message equal to `message`, whose integer arguments are floats (`1.0`)."""
    return dataclasses.replace(message, blocks=tuple(_twin(block) for block in message.blocks))


def _twin(block: Block) -> Block:
    if not isinstance(block, ToolCallBlock):
        return dataclasses.replace(block)
    return dataclasses.replace(block, arguments=_floated(block.arguments))


def _floated(value: Any) -> Any:
    if isinstance(value, FrozenDict):
        return FrozenDict({key: _floated(item) for key, item in value.items()})
    if isinstance(value, tuple):
        return tuple(_floated(item) for item in value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= 2**53:
        return float(value)
    return value


def refusing_client(seen: list[httpx.Request]) -> httpx.AsyncClient:
    """A client whose server records each request and refuses it (400)."""

    def refuse(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(400, json={"error": {"message": "recorded, not answered"}})

    return httpx.AsyncClient(transport=httpx.MockTransport(refuse))


async def sent_body(
    adapter: Adapter, invocation: ModelInvocation, seen: list[httpx.Request]
) -> bytes | str:
    """The body `adapter` sends for `invocation` (its client records into `seen`), or, when it
    refuses to send one, the error it raised."""
    before = len(seen)
    try:
        await collect(adapter, invocation)
    except ProviderError as error:
        if len(seen) == before:
            return f"not sent: {type(error).__name__}: {error}"
    assert len(seen) == before + 1
    return seen[-1].content
