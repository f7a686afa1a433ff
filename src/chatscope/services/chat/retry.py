"""Retries and the first-byte timeout around any provider's streamed call.

A call is retried only while nothing of its response has reached the caller: once an event is
yielded, trying again would duplicate output, so a later failure is raised as it is. The layer is
provider-neutral because adapters already turn every wire failure into a `ProviderError` whose
category says whether a retry can help.

The idle timeout between events is not kept here but by the transport (the HTTP client's read
timeout, `http.idle_stream_timeout`): it counts bytes, so the keep-alive pings a provider sends
while a model thinks for minutes keep a healthy stream open, while a dead one still times out.
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
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.ports import ModelProvider

__all__ = [
    "OpenedStream",
    "RetryNotice",
    "RetryPolicy",
    "Sleep",
    "is_transient",
    "open_stream",
    "should_retry",
    "stream_with_retry",
]

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

    def __post_init__(self) -> None:
        attempts = self.max_attempts
        if not (_is_number(attempts) and isinstance(attempts, int) and attempts >= 1):
            _invalid("max_attempts", attempts, "an integer of at least 1")
        for name in ("initial_delay", "max_delay", "max_server_delay"):
            _require_positive(name, getattr(self, name), "a positive, finite number of seconds")
        if self.first_byte_timeout is not None:
            _require_positive(
                "first_byte_timeout",
                self.first_byte_timeout,
                "a positive number of seconds or None",
            )
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
    return is_transient(error)


def is_transient(error: BaseException) -> bool:
    """Whether `error` is a provider failure that another attempt (or, once a member's own
    attempts are spent, another member of a fallback chain) may get past."""
    if not isinstance(error, ProviderError):
        return False
    return error.retryable and error.status not in _NEVER_RETRIED_STATUSES


@dataclass(frozen=True, slots=True)
class OpenedStream:
    """A provider stream past its first event (or ended empty): retrying is over for it.

    The caller handles `first`, then iterates `rest` directly (no wrapping layer per event), and
    must `aclose` it however it stops.
    """

    first: ProviderEvent | None
    rest: AsyncIterator[ProviderEvent]
    attempt: int

    async def aclose(self) -> None:
        """Close the provider's stream, and with it its connection."""
        await _close(self.rest)


async def open_stream(
    provider: ModelProvider,
    invocation: ModelInvocation,
    policy: RetryPolicy,
    *,
    rng: random.Random | None = None,
    sleep: Sleep = asyncio.sleep,
    on_retry: Callable[[RetryNotice], None] | None = None,
) -> OpenedStream:
    """Attempt the call until one attempt yields its first event (or ends empty).

    Failures before that are retried by the policy; `rng` draws the jitter (a fresh one is made
    on the first retry when none is given).
    """
    attempt = 1
    while True:
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
        return OpenedStream(first, events, attempt)


async def stream_with_retry(
    provider: ModelProvider,
    invocation: ModelInvocation,
    policy: RetryPolicy,
    *,
    rng: random.Random | None = None,
    sleep: Sleep = asyncio.sleep,
    on_retry: Callable[[RetryNotice], None] | None = None,
) -> AsyncGenerator[ProviderEvent, None]:
    """`open_stream`, then every event of the attempt that got through, as one iterator.

    Close it (`contextlib.aclosing`) when stopping early: that closes the provider's stream.
    """
    opened = await open_stream(
        provider, invocation, policy, rng=rng, sleep=sleep, on_retry=on_retry
    )
    try:
        if opened.first is None:
            return
        yield opened.first
        async for event in opened.rest:
            yield event
    finally:
        await opened.aclose()


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
        raise ProviderNetworkError(
            f"no first event from the provider within {seconds:g}s",
            provider=provider,
            category=ErrorCategory.TIMEOUT,
        ) from exc


async def _close(events: AsyncIterator[ProviderEvent]) -> None:
    """Close the provider's stream if it can be closed (async generators and most clients can)."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()
