"""Turns run apart from the response that streams them, counted per tenant.

A turn runs in a task of its own and hands its events to the response through a `TurnFeed`.
If the client goes away, only the response stops: the turn runs to its end and is stored whole
(a chat stores a turn in one transaction once it is complete). If the server stops, turns still
running get the grace period, then are cancelled, and a cancelled turn stores nothing. So a
stored turn is always whole, never half.

`TurnLimiter` and `Turns` belong to one application instance (`create_app` makes them); nothing
here is module state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from chatscope.services.chat import ChatSession
from chatscope.services.events import ChatEvent, CompletedTurn, TurnDone
from chatscope.web.errors import ApiError, api_error_of

__all__ = ["TurnFeed", "TurnLimiter", "TurnSlot", "Turns"]

FeedItem = ChatEvent | ApiError


class TurnSlot:
    """One running turn of a tenant (and of a session); released once, when the turn ends."""

    __slots__ = ("_limiter", "_released", "session_id", "tenant")

    def __init__(self, limiter: TurnLimiter, tenant: str, session_id: str | None) -> None:
        self._limiter = limiter
        self.tenant = tenant
        self.session_id = session_id
        self._released = False

    def release(self) -> None:
        """Give the slot back; again does nothing."""
        if not self._released:
            self._released = True
            self._limiter.release(self.tenant, self.session_id)


class TurnLimiter:
    """How many turns each tenant runs right now, at most `limit` each, and which sessions have
    a turn running (a session takes one turn at a time, so each turn sees the one before)."""

    __slots__ = ("_busy", "_limit", "_running")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._running: dict[str, int] = {}
        self._busy: set[str] = set()

    def acquire(self, tenant: str, session_id: str | None = None) -> TurnSlot:
        """A slot for one more turn of `tenant` (in `session_id`); 429 with `Retry-After` when
        the tenant has none left, 409 while the session has a turn running."""
        if session_id is not None and session_id in self._busy:
            raise ApiError(
                409,
                "a turn of this session is still running; send the next one when it has finished",
                code="session_busy",
                headers={"Retry-After": "1"},
            )
        running = self._running.get(tenant, 0)
        if running >= self._limit:
            raise ApiError(
                429,
                f"this tenant already runs {self._limit} turns at once; "
                "retry when one has finished",
                code="too_many_turns",
                headers={"Retry-After": "1"},
            )
        self._running[tenant] = running + 1
        if session_id is not None:
            self._busy.add(session_id)
        return TurnSlot(self, tenant, session_id)

    def release(self, tenant: str, session_id: str | None = None) -> None:
        """One turn of `tenant` (in `session_id`) has ended."""
        if session_id is not None:
            self._busy.discard(session_id)
        left = self._running.get(tenant, 0) - 1
        if left > 0:
            self._running[tenant] = left
        else:
            self._running.pop(tenant, None)

    def running(self, tenant: str) -> int:
        """Turns `tenant` runs now."""
        return self._running.get(tenant, 0)


class TurnFeed:
    """The events of one turn as it runs, for the one response that shows them.

    It ends with `TurnDone` or an `ApiError` (what the client is told of a failure).
    """

    __slots__ = ("_queue",)

    def __init__(self) -> None:
        self._queue: asyncio.Queue[FeedItem | None] = asyncio.Queue()

    def put(self, item: FeedItem) -> None:
        """Hand on one event or the failure."""
        self._queue.put_nowait(item)

    def close(self) -> None:
        """The turn has ended."""
        self._queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[FeedItem]:
        while (item := await self._queue.get()) is not None:
            yield item

    async def result(self) -> CompletedTurn:
        """The completed turn; its failure is raised as the `ApiError` the client gets."""
        async for item in self:
            if isinstance(item, ApiError):
                raise item
            if isinstance(item, TurnDone):
                return item.turn
        raise ApiError(500, "the turn ended without an answer", code="internal_error")


class Turns:
    """The turns running in one application; waited for (then cancelled) when it stops."""

    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def start(
        self,
        chat: ChatSession,
        prompt: str,
        *,
        slot: TurnSlot,
        secret: str | None = None,
        output_type: object = None,
    ) -> TurnFeed:
        """Run one turn in a task of its own; its slot is released when it ends."""
        feed = TurnFeed()
        turn = _run_turn(chat, prompt, feed, slot, secret=secret, output_type=output_type)
        task = asyncio.create_task(turn)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return feed

    async def drain(self, grace_seconds: float) -> None:
        """Let the running turns finish for up to `grace_seconds`, then cancel the rest."""
        running = set(self._tasks)
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=grace_seconds)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)


async def _run_turn(
    chat: ChatSession,
    prompt: str,
    feed: TurnFeed,
    slot: TurnSlot,
    *,
    secret: str | None,
    output_type: object,
) -> None:
    try:
        async for event in chat.stream(prompt, output_type=output_type):
            feed.put(event)
    except asyncio.CancelledError:
        feed.put(
            ApiError(
                503,
                "the server stopped before this turn finished; nothing of it was stored",
                code="shutting_down",
            )
        )
        raise
    except Exception as exc:  # every failure reaches the client as an ApiError
        feed.put(api_error_of(exc, secret))
    finally:
        slot.release()
        feed.close()
