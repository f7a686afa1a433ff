"""Tool call / result pairing: repairing a history so that every call has exactly one result.

Providers that demand pairs refuse a request otherwise: Chat Completions and Responses answer 400
to a call with no output and to an output with no call, Anthropic to a `tool_use` whose
`tool_result` is not in the next user message (and to a result answering nothing), Gemini to
function calls and responses whose counts differ. chatscope stores only whole turns, so its own
histories are paired; an orphan comes from elsewhere (a history stored by an older version or
another writer, a turn cut short outside `ChatSession`). `repair_tool_pairs` is applied to the
history of every request, so such a history never costs a 400.

The rule matches how `ChatSession` stores a turn: the results of an assistant message's calls
are in the TOOL message right after it. Pairing is by call id *within* that neighbourhood, since
ids are only unique per response (several providers number calls `call_0`, `call_1`, ...).
Repair:

- a call with no result gets a synthetic error result (`INTERRUPTED_CALL_ERROR`), appended to the
  TOOL message after it (a new one if there is none), in call order;
- a result that answers no call of the preceding assistant message, or answers one a second
  time, is dropped: no provider accepts it and it has no call to be read against;
- consecutive TOOL messages after one assistant message are joined into one;
- a TOOL message left with no blocks disappears.

A well-paired history comes back as the very same tuple.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from chatscope.services.messages import Block, Message, Role, ToolCallBlock, ToolResultBlock

__all__ = ["INTERRUPTED_CALL_ERROR", "is_well_paired", "repair_tool_pairs"]

INTERRUPTED_CALL_ERROR = "the tool call was interrupted before it returned a result"


def is_well_paired(messages: Sequence[Message]) -> bool:
    """Whether every call is answered exactly once in the TOOL message right after it.

    Also false when a TOOL message follows anything but an assistant message with calls.
    """
    expected: tuple[ToolCallBlock, ...] = ()
    for message in messages:
        if message.role is Role.TOOL:
            if not expected or not _answers_exactly(expected, message):
                return False
            expected = ()
        elif expected:
            return False
        else:
            expected = message.tool_calls if message.role is Role.ASSISTANT else ()
    return not expected


def repair_tool_pairs(messages: Sequence[Message]) -> tuple[Message, ...]:
    """`messages` with every call answered exactly once and every stray result dropped."""
    if is_well_paired(messages):
        return messages if isinstance(messages, tuple) else tuple(messages)
    repaired: list[Message] = []
    index = 0
    while index < len(messages):
        message = messages[index]
        index += 1
        if message.role is Role.TOOL:
            repaired.extend(_without_results(message))
            continue
        repaired.append(message)
        if message.role is Role.ASSISTANT and message.tool_calls:
            run_end = _tool_run_end(messages, index)
            repaired.append(_answer(message.tool_calls, messages[index:run_end]))
            index = run_end
    return tuple(repaired)


def _answers_exactly(calls: tuple[ToolCallBlock, ...], message: Message) -> bool:
    """Sorted lists, not Counters: this runs for every request, on every TOOL message."""
    answers = [block.call_id for block in message.blocks if isinstance(block, ToolResultBlock)]
    return len(answers) == len(calls) and sorted(answers) == sorted(call.id for call in calls)


def _tool_run_end(messages: Sequence[Message], start: int) -> int:
    end = start
    while end < len(messages) and messages[end].role is Role.TOOL:
        end += 1
    return end


def _answer(calls: tuple[ToolCallBlock, ...], run: Sequence[Message]) -> Message:
    """One TOOL message answering each of `calls` once: its own results, then synthetic ones."""
    open_calls = Counter(call.id for call in calls)
    blocks: list[Block] = []
    for block in (block for message in run for block in message.blocks):
        if not isinstance(block, ToolResultBlock):
            blocks.append(block)
        elif open_calls[block.call_id] > 0:
            open_calls[block.call_id] -= 1
            blocks.append(block)
    for call in calls:
        if open_calls[call.id] > 0:
            open_calls[call.id] -= 1
            blocks.append(ToolResultBlock(call.id, call.name, error=INTERRUPTED_CALL_ERROR))
    return Message(Role.TOOL, tuple(blocks))


def _without_results(message: Message) -> tuple[Message, ...]:
    """A TOOL message that follows no call keeps only what is not a result (usually nothing)."""
    kept = tuple(block for block in message.blocks if not isinstance(block, ToolResultBlock))
    return (Message(Role.TOOL, kept),) if kept else ()
