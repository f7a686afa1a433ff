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
from contextlib import aclosing
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
    rng: random.Random,
    sleep: Sleep = asyncio.sleep,
    on_retry: Callable[[RetryNotice], None] | None = None,
    on_attempt: Callable[[int], None] | None = None,
) -> AsyncGenerator[ProviderEvent, None]:
    """Stream `provider.stream(invocation)`, retrying transient failures before any output.

    `on_attempt(n)` runs at the start of every attempt (1-based), so the last call names the
    attempt whose events the caller got. Close this generator (`contextlib.aclosing`) when
    stopping early: that closes the provider's stream, and with it its connection.
    """
    attempt = 1
    while True:
        if on_attempt is not None:
            on_attempt(attempt)
        output_started = False
        try:
            async with aclosing(_one_attempt(provider, invocation, policy)) as events:
                async for event in events:
                    output_started = True
                    yield event
            return
        except ProviderError as error:
            if not should_retry(error, attempt, policy, output_started):
                raise
            delay = policy.delay_for(attempt, error, rng)
            if on_retry is not None:
                on_retry(RetryNotice(attempt, error, delay))
        await sleep(delay)
        attempt += 1


async def _one_attempt(
    provider: ModelProvider, invocation: ModelInvocation, policy: RetryPolicy
) -> AsyncGenerator[ProviderEvent, None]:
    """One call with its timeouts; the provider's stream is closed however this one ends.

    The timeout wraps each `anext` only, never a `yield`: a deadline left running while the
    caller holds an event would cancel the caller's own task.
    """
    events = provider.stream(invocation)
    try:
        timeout, phase = policy.first_byte_timeout, "first event"
        while (event := await _next_event(events, timeout, phase, invocation.provider)) is not None:
            yield event
            timeout, phase = policy.idle_timeout, "next event"
    finally:
        await _close(events)


async def _next_event(
    events: AsyncIterator[ProviderEvent], seconds: float | None, phase: str, provider: str
) -> ProviderEvent | None:
    """The next event, or None at the end; a missed deadline becomes a TIMEOUT provider error.

    A `TimeoutError` the provider raises itself is passed on untouched: only our own deadline
    is worded as one.
    """
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            return await anext(events, None)
    except TimeoutError as exc:
        if not deadline.expired():
            raise
        message = f"no {phase} from the provider within {seconds:g}s"
        raise ProviderNetworkError(
            message, provider=provider, category=ErrorCategory.TIMEOUT
        ) from exc


async def _close(events: AsyncIterator[ProviderEvent]) -> None:
    """Close the provider's stream if it can be closed (async generators and most clients can)."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()
