"""In-memory history, one per scope, behind the `HistoryStore` port."""

from __future__ import annotations

from collections.abc import Sequence

from chatscope.services.messages import Message, Usage, estimate_tokens

__all__ = ["InMemoryHistory"]


class InMemoryHistory:
    """Stores whole turns; the tuple is replaced, never edited, so readers see a consistent view.

    Token accounting: the API-reported size after the last turn that had usage, plus an
    estimate for messages stored since (or an estimate of everything when no usage is known).
    """

    __slots__ = ("_measured_tokens", "_measured_upto", "_messages", "session_id")

    def __init__(
        self,
        messages: Sequence[Message] = (),
        *,
        session_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        owner: str | None = None,
    ) -> None:
        """`provider`, `model` and `owner` are accepted for the `HistoryOpener` contract; memory
        keeps no record of them."""
        self.session_id = session_id
        self._messages: tuple[Message, ...] = tuple(messages)
        self._measured_tokens = 0
        self._measured_upto = 0

    async def messages(self) -> tuple[Message, ...]:
        """Every stored message, oldest first."""
        return self._messages

    async def append_turn(self, messages: Sequence[Message], usage: Usage | None = None) -> None:
        """Store one completed turn; `usage` is the last model call's usage, when known."""
        self._messages = (*self._messages, *messages)
        if usage is not None and usage.total_tokens:
            self._measured_tokens = usage.total_tokens
            self._measured_upto = len(self._messages)

    async def token_count(self) -> int:
        """Tokens the history costs, API-reported where known."""
        unmeasured = self._messages[self._measured_upto :]
        return self._measured_tokens + estimate_tokens(unmeasured)

    async def replace(self, messages: Sequence[Message]) -> None:
        """Replace everything stored; the new history's size is an estimate until the next usage."""
        self._messages = tuple(messages)
        self._measured_tokens = 0
        self._measured_upto = 0
