"""A scope's history in its adapter's wire format, extended request by request, not redone.

Each request of a conversation sends the whole history, and all but its last few messages were
sent, and so mapped, by the request before: messages are frozen and a history only grows by
appending (compression replaces the whole tuple; a provider switch goes through another
adapter, whose own `SentHistory` this is not). So an adapter keeps the history of its last
request with that request's wire items and, when the next history starts with the very same
message objects, maps only the messages after them. Any other history is mapped from scratch.

The check is identity (`is`), not equality: equal messages may still differ on the wire (tool
arguments `1`, `1.0` and `true` are equal in Python). The items are shared between requests'
bodies, so none is changed once a body holds it: merging into the last kept item (same-role
neighbours) replaces it with a copy (`WireItems.last_to_extend`). The wire form depends on the
messages and the adapter's name only, never on the model, key or URL of a call.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chatscope.services.messages import Message

__all__ = ["AppendMessages", "SentHistory", "WireItems"]

Wire = dict[str, Any]


class WireItems:
    """The wire items of one request's history under construction.

    The first `kept` came from an earlier request, whose body (and the cache) still holds them:
    they are read, never changed.
    """

    __slots__ = ("_kept", "items")

    def __init__(self, items: list[Wire], kept: int) -> None:
        self.items = items
        self._kept = kept

    def add(self, item: Wire) -> None:
        """Append a new item."""
        self.items.append(item)

    def last(self) -> Wire | None:
        """The last item, to read only; `None` when there is none yet."""
        return self.items[-1] if self.items else None

    def last_to_extend(self) -> Wire:
        """The last item, to change in place: first copied (its lists too) if it was kept."""
        if len(self.items) == self._kept:
            item = self.items[-1]
            self.items[-1] = {
                key: list(value) if isinstance(value, list) else value
                for key, value in item.items()
            }
            self._kept -= 1
        return self.items[-1]


AppendMessages = Callable[[WireItems, tuple[Message, ...], str], None]
"""A wire format's mapping: appends the items of some messages to those of the ones before,
for the adapter named by the last argument."""


@dataclass(frozen=True, slots=True)
class _Sent:
    history: tuple[Message, ...]
    items: tuple[Wire, ...]


_NOTHING_SENT = _Sent((), ())


class SentHistory:
    """The history an adapter last sent, with its wire items: what the next request reuses.

    One per adapter object, so per scope (adapters are made fresh for every scope): it dies
    with the scope, and holds only the scope's messages and what was made from them, never a
    model, key or URL.
    """

    __slots__ = ("_sent",)

    def __init__(self) -> None:
        self._sent = _NOTHING_SENT

    def items(
        self, history: tuple[Message, ...], append: AppendMessages, provider: str
    ) -> list[Wire]:
        """The wire items of `history`, as `append` maps them from scratch for `provider` (the
        adapter's own name, which never changes); a new list, the caller's to extend."""
        sent = self._sent
        if len(sent.history) > len(history) or not all(map(operator.is_, sent.history, history)):
            sent = _NOTHING_SENT
        wire = WireItems(list(sent.items), len(sent.items))
        append(wire, history[len(sent.history) :], provider)
        # One attribute, so that no reader ever pairs one request's history with another's
        # items; it is set only once the mapping has succeeded.
        self._sent = _Sent(history, tuple(wire.items))
        return wire.items
