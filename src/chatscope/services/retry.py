"""Retries and stream timeouts around any provider's streamed call.

A call is retried only while nothing of its response has reached the caller: once an event is
yielded, trying again would duplicate output, so a later failure is raised as it is. The layer is
provider-neutral because adapters already turn every wire failure into a `ProviderError` whose
category says whether a retry can help.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn

from chatscope.errors import ConfigurationError, ErrorCategory, ProviderError, ProviderNetworkError
from chatscope.services.events import ProviderEvent
from chatscope.services.invocation import ModelInvocation
from chatscope.services.ports import ModelProvider

__all__ = ["RetryNotice", "RetryPolicy", "Sleep", "should_retry", "stream_with_retry"]

Sleep = Callable[[float], Awaitable[None]]
"""How the layer waits between attempts; tests pass a recorder that returns at once."""

# Refused whatever category an adapter gave them: the same request fails the same way again.
_NEVER_RETRIED_STATUSES = frozenset({400, 401, 403, 404})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a streamed call is tried.

    Delays grow exponentially with jitter so that many clients hit by one outage do not retry in
    lockstep; a delay the server asks for (Retry-After, retry-after-ms, Gemini RetryInfo) wins,
    capped so that a hostile or buggy header cannot park a session for hours.
    """

    max_attempts: int = 6
    initial_delay: float = 5.0
    multiplier: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.3
    max_server_delay: float = 300.0
    first_byte_timeout: float | None = 60.0
    idle_timeout: float | None = 60.0

    def __post_init__(self) -> None:
        attempts = self.max_attempts
        if not (_is_number(attempts) and isinstance(attempts, int) and attempts >= 1):
            _invalid("max_attempts", attempts, "an integer of at least 1")
        for name in ("initial_delay", "max_delay", "max_server_delay"):
            _require_positive(name, getattr(self, name), "a positive, finite number of seconds")
        for name in ("first_byte_timeout", "idle_timeout"):
            if getattr(self, name) is not None:
                _require_positive(name, getattr(self, name), "a positive number of seconds or None")
        if not (_is_number(self.multiplier) and 1.0 <= self.multiplier < math.inf):
            _invalid("multiplier", self.multiplier, "a finite number of at least 1")
        if not (_is_number(self.jitter) and 0.0 <= self.jitter < 1.0):
            _invalid("jitter", self.jitter, "a number with 0 <= jitter < 1")

    def base_delay(self, attempt: int) -> float:
        """The un-jittered backoff after failed attempt `attempt` (1-based), capped at max_delay."""
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt}")
        try:
            raw = self.initial_delay * self.multiplier ** (attempt - 1)
        except OverflowError:
            return self.max_delay
        return min(raw, self.max_delay)

    def delay_for(self, attempt: int, error: ProviderError, rng: random.Random) -> float:
        """Seconds to wait after failed attempt `attempt`: the server's hint, else jittered backoff.

        Pure apart from drawing from `rng`, so the same seed always gives the same delay.
        """
        hint = _server_hint(error)
        if hint is not None:
            return min(hint, self.max_server_delay)
        factor = rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)
        return self.base_delay(attempt) * factor


def _require_positive(name: str, value: float, allowed: str) -> None:
    if not (_is_number(value) and 0.0 < value < math.inf):
        _invalid(name, value, allowed)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _invalid(name: str, value: object, allowed: str) -> NoReturn:
    raise ConfigurationError(f"retry policy {name}={value!r} is invalid; it must be {allowed}")


def _server_hint(error: ProviderError) -> float | None:
    """The server-suggested delay: NaN is no hint at all, a negative one means "now"."""
    hint = error.retry_after
    if hint is None or math.isnan(hint):
        return None
    return max(hint, 0.0)


@dataclass(frozen=True, slots=True)
class RetryNotice:
    """Told to `on_retry` before the wait: which attempt failed, why, and how long we wait."""

    attempt: int
    error: ProviderError
    delay: float


def should_retry(
    error: BaseException, attempt: int, policy: RetryPolicy, output_started: bool
) -> bool:
    """Whether failed attempt `attempt` may be tried again.

    Only transient provider failures qualify, never once output reached the caller (a retry
    would repeat it) and never past `max_attempts`. Cancellation is not a `ProviderError`, so it
    always propagates.
    """
    if output_started or attempt >= policy.max_attempts:
        return False
    if not isinstance(error, ProviderError):
        return False
    return error.retryable and error.status not in _NEVER_RETRIED_STATUSES


async def stream_with_retry(
    provider: ModelProvider,
    invocation: ModelInvocation,
    policy: RetryPolicy,
    *,
    rng: random.Random | None = None,
    sleep: Sleep = asyncio.sleep,
    on_retry: Callable[[RetryNotice], None] | None = None,
    on_attempt: Callable[[int], None] | None = None,
) -> AsyncGenerator[ProviderEvent, None]:
    """Stream `provider.stream(invocation)`, retrying transient failures before any output.

    `on_attempt(n)` runs at the start of every attempt (1-based), so the last call names the
    attempt whose events the caller got. `rng` draws the jitter (a fresh one is made on the
    first retry when none is given). Close this generator (`contextlib.aclosing`) when
    stopping early: that closes the provider's stream, and with it its connection.
    """
    events, first = await _open_with_retry(
        provider, invocation, policy, rng=rng, sleep=sleep, on_retry=on_retry, on_attempt=on_attempt
    )
    try:
        if first is None:
            return
        yield first
        with _IdleWatchdog(policy.idle_timeout, invocation.provider) as watchdog:
            try:
                watchdog.waiting()
                async for event in events:
                    watchdog.holding()
                    yield event
                    watchdog.waiting()
            except asyncio.CancelledError as exc:
                if not watchdog.fired_on_us():
                    raise
                raise watchdog.timeout_error() from exc
    finally:
        await _close(events)


async def _open_with_retry(
    provider: ModelProvider,
    invocation: ModelInvocation,
    policy: RetryPolicy,
    *,
    rng: random.Random | None,
    sleep: Sleep,
    on_retry: Callable[[RetryNotice], None] | None,
    on_attempt: Callable[[int], None] | None,
) -> tuple[AsyncIterator[ProviderEvent], ProviderEvent | None]:
    """Attempts until one yields its first event (or ends empty); that attempt's stream stays open.

    Only here is anything retried: nothing has reached the caller yet.
    """
    attempt = 1
    while True:
        if on_attempt is not None:
            on_attempt(attempt)
        events = provider.stream(invocation)
        try:
            first = await _first_event(events, policy.first_byte_timeout, invocation.provider)
        except ProviderError as error:
            await _close(events)
            if not should_retry(error, attempt, policy, output_started=False):
                raise
            rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
            delay = policy.delay_for(attempt, error, rng)
            if on_retry is not None:
                on_retry(RetryNotice(attempt, error, delay))
            await sleep(delay)
            attempt += 1
            continue
        except BaseException:
            await _close(events)
            raise
        return events, first


async def _first_event(
    events: AsyncIterator[ProviderEvent], seconds: float | None, provider: str
) -> ProviderEvent | None:
    """The first event (None for an empty stream) within the first-byte timeout."""
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            return await anext(events, None)
    except TimeoutError as exc:
        if not deadline.expired():
            raise
        raise _timeout_error("first event", seconds, provider) from exc


class _IdleWatchdog:
    """The idle timeout: one timer for the whole stream instead of a timeout context per event.

    A context per event cost more than parsing the event. The clock only runs while we wait for
    the provider; while the caller holds an event it is stopped, so the caller's own work is
    never cancelled.
    """

    __slots__ = ("_fired", "_handle", "_loop", "_provider", "_seconds", "_task", "_waiting_since")

    def __init__(self, seconds: float | None, provider: str) -> None:
        self._seconds = seconds
        self._provider = provider
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._waiting_since: float | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._fired = False

    def __enter__(self) -> _IdleWatchdog:
        if self._seconds is not None:
            self._handle = self._loop.call_later(self._seconds, self._check)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.cancel()

    def waiting(self) -> None:
        """The clock runs: we are waiting for the provider."""
        self._waiting_since = self._loop.time()

    def holding(self) -> None:
        """The clock stops: an event is on its way to the caller."""
        self._waiting_since = None

    def fired_on_us(self) -> bool:
        """Whether a cancellation is the watchdog's own; if so it is withdrawn from the task."""
        return self._fired and self._task is not None and self._task.uncancel() == 0

    def timeout_error(self) -> ProviderNetworkError:
        """The error that replaces the watchdog's cancellation."""
        return _timeout_error("next event", self._seconds, self._provider)

    def _check(self) -> None:
        assert self._seconds is not None  # noqa: S101 - only scheduled with a timeout
        now, since = self._loop.time(), self._waiting_since
        if since is not None and now - since >= self._seconds:
            self._fired = True
            if self._task is not None:
                self._task.cancel()
            return
        start = since if since is not None else now
        self._handle = self._loop.call_at(start + self._seconds, self._check)


def _timeout_error(phase: str, seconds: float | None, provider: str) -> ProviderNetworkError:
    return ProviderNetworkError(
        f"no {phase} from the provider within {seconds:g}s",
        provider=provider,
        category=ErrorCategory.TIMEOUT,
    )


async def _close(events: AsyncIterator[ProviderEvent]) -> None:
    """Close the provider's stream if it can be closed (async generators and most clients can)."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()
