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

`ToolPairRepairer` gives the same answer for one conversation's successive requests while
checking only what is new: repair never joins anything across a message that is not a TOOL
message (the run of results after a call ends there), so the repaired history before the last
such message is final, however the history goes on.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from chatscope.services.messages import Block, Message, Role, ToolCallBlock, ToolResultBlock

__all__ = ["INTERRUPTED_CALL_ERROR", "ToolPairRepairer", "is_well_paired", "repair_tool_pairs"]

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
    return _repaired(messages)[0]


class ToolPairRepairer:
    """`repair_tool_pairs` for the successive requests of one conversation, redoing only what
    is new.

    History only grows between requests (a turn appends its messages; compression replaces the
    whole tuple). The repaired form of the messages before a *cut*, the last message that is
    not a TOOL message, is kept with the messages it came from; the next request whose history
    starts with those very objects (`is`, not `==`: equal arguments may still differ on the
    wire, `1` and `1.0`) repairs only from the cut on. Any other history is repaired from
    scratch. One repairer per chat session: it lives and dies with it, and holds nothing that
    is not in the session's own history.
    """

    __slots__ = ("_kept",)

    def __init__(self) -> None:
        self._kept = _NOTHING_KEPT

    def repair(self, messages: tuple[Message, ...]) -> tuple[Message, ...]:
        """Equal to `repair_tool_pairs(messages)`, and `messages` itself when well paired."""
        kept = self._kept
        if not kept.continues_in(messages):
            kept = _NOTHING_KEPT
        cut = _last_cut(messages, kept.cut)
        middle, middle_paired = _repaired(messages[kept.cut : cut])
        tail, tail_paired = _repaired(messages[cut:])
        paired = kept.paired and middle_paired
        # One attribute, so a reader never sees the history of one request with the repair of
        # another.
        self._kept = _Kept(messages[:cut], cut, kept.repaired + middle, paired=paired)
        if paired and tail_paired:
            return messages
        return self._kept.repaired + tail


@dataclass(frozen=True, slots=True)
class _Kept:
    """`source` (a history's messages before its cut) and `repaired`, their repair; `paired`
    when they were well paired already."""

    source: tuple[Message, ...]
    cut: int
    repaired: tuple[Message, ...]
    paired: bool

    def continues_in(self, messages: tuple[Message, ...]) -> bool:
        """Whether `messages` starts with the very same messages and has a cut where they end,
        so their repair stands."""
        if self.cut == 0:
            return True
        if len(messages) <= self.cut or messages[self.cut].role is Role.TOOL:
            return False
        return all(map(operator.is_, self.source, messages))


_NOTHING_KEPT = _Kept((), 0, (), paired=True)


def _last_cut(messages: tuple[Message, ...], start: int) -> int:
    """The index of the last message from `start` on that is not a TOOL message, else `start`."""
    for index in range(len(messages) - 1, start, -1):
        if messages[index].role is not Role.TOOL:
            return index
    return start


def _repaired(messages: Sequence[Message]) -> tuple[tuple[Message, ...], bool]:
    """The repaired messages, and whether they were well paired (then they come back as is)."""
    if is_well_paired(messages):
        return (messages if isinstance(messages, tuple) else tuple(messages)), True
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
    return tuple(repaired), False


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
