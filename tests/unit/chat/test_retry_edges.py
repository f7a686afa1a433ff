"""Edges of the retry layer: what its refusals say, the jitter band's ends, and streams
that are not async generators (a provider may return any async iterator)."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.errors import ConfigurationError, ProviderError, ServerError
from chatscope.services.chat.retry import RetryPolicy, open_stream, stream_with_retry
from chatscope.services.events import FinishEvent, FinishReason, ProviderEvent, TextDelta
from chatscope.services.messages import Message
from chatscope.services.runtime.invocation import Credentials, ModelInvocation

EVENTS: tuple[ProviderEvent, ...] = (TextDelta("hi"), FinishEvent(FinishReason.STOP))

ALLOWED = {
    "max_attempts": "an integer of at least 1",
    "initial_delay": "a positive, finite number of seconds",
    "max_delay": "a positive, finite number of seconds",
    "max_server_delay": "a positive, finite number of seconds",
    "first_byte_timeout": "a positive number of seconds or None",
    "multiplier": "a finite number of at least 1",
    "jitter": "a number with 0 <= jitter < 1",
}
INVALID: dict[str, st.SearchStrategy[Any]] = {
    "max_attempts": st.integers(max_value=0),
    "initial_delay": st.floats(max_value=0.0) | st.just(math.inf),
    "max_delay": st.floats(max_value=0.0) | st.just(math.inf),
    "max_server_delay": st.floats(max_value=0.0) | st.just(math.inf),
    "first_byte_timeout": st.floats(max_value=0.0) | st.just(math.inf),
    "multiplier": st.floats(max_value=0.999) | st.just(math.inf),
    "jitter": st.floats(min_value=1.0, allow_infinity=False) | st.floats(max_value=-1e-9),
}


@pytest.mark.parametrize("name", sorted(ALLOWED))
@given(data=st.data())
def test_a_refused_value_says_what_is_allowed(name: str, data: st.DataObject) -> None:
    """The configuration error states the allowed range of the field, word for word."""
    value = data.draw(INVALID[name])
    with pytest.raises(ConfigurationError) as raised:
        RetryPolicy(**{name: value})
    assert str(raised.value).endswith(f"it must be {ALLOWED[name]}")


def test_an_infinite_multiplier_is_refused() -> None:
    """Unbounded growth is not a backoff: the multiplier must be finite."""
    with pytest.raises(ConfigurationError, match="multiplier=inf"):
        RetryPolicy(multiplier=math.inf)


@given(attempt=st.integers(max_value=0))
def test_attempt_numbers_below_one_are_refused_with_the_number(attempt: int) -> None:
    """`base_delay` is 1-based and says so, quoting the bad number."""
    with pytest.raises(ValueError, match=r"^attempt numbers start at 1, got") as raised:
        RetryPolicy().base_delay(attempt)
    assert str(raised.value).endswith(str(attempt))


class _EdgeRandom(random.Random):
    """Draws always land on one end of the requested interval."""

    def __init__(self, upper: bool) -> None:
        super().__init__(0)
        self.upper = upper

    def uniform(self, a: float, b: float) -> float:
        return b if self.upper else a


@given(
    jitter=st.floats(min_value=0.0, max_value=0.99),
    attempt=st.integers(min_value=1, max_value=10),
    upper=st.booleans(),
)
def test_the_jitter_band_is_centred_on_the_base_delay(
    jitter: float, attempt: int, upper: bool
) -> None:
    """The drawn factor spans exactly [1 - jitter, 1 + jitter] around the base delay."""
    policy = RetryPolicy(jitter=jitter)
    error = ServerError("boom", provider="fake", status=500)
    delay = policy.delay_for(attempt, error, _EdgeRandom(upper))
    factor = 1.0 + jitter if upper else 1.0 - jitter
    assert delay == pytest.approx(policy.base_delay(attempt) * factor)


class _Stream:
    """A provider stream that is a plain async iterator (not a generator), with `aclose`."""

    def __init__(self, events: tuple[ProviderEvent, ...], error: BaseException | None) -> None:
        self._events = list(events)
        self._error = error
        self.closed = 0

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> ProviderEvent:
        if self._events:
            return self._events.pop(0)
        if self._error is not None:
            raise self._error
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.closed += 1


class _BareStream:
    """A provider stream without `aclose` at all."""

    def __init__(self, events: tuple[ProviderEvent, ...]) -> None:
        self._events = list(events)

    def __aiter__(self) -> _BareStream:
        return self

    async def __anext__(self) -> ProviderEvent:
        if not self._events:
            raise StopAsyncIteration
        return self._events.pop(0)


class _Provider:
    """Hands out the given streams, one per call."""

    name = "fake"

    def __init__(self, *streams: AsyncIterator[ProviderEvent]) -> None:
        self.streams = list(streams)

    def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
        return self.streams.pop(0)


def _invocation() -> ModelInvocation:
    return ModelInvocation(
        runtime_id="rt-1",
        provider="fake",
        model="fake-model",
        base_url=None,
        credentials=Credentials(),
        history=(Message.user("hi"),),
    )


async def _no_wait(delay: float) -> None:
    return None


def _fast(max_attempts: int = 6) -> RetryPolicy:
    return RetryPolicy(max_attempts=max_attempts, initial_delay=0.001, max_delay=0.001)


@given(failures=st.integers(min_value=1, max_value=4))
async def test_each_failed_attempt_closes_its_stream(failures: int) -> None:
    """A retried attempt's stream is closed before the next attempt starts (no leaked body)."""
    failed = [
        _Stream((), ServerError("boom", provider="fake", status=503)) for _ in range(failures)
    ]
    good = _Stream(EVENTS, None)
    opened = await open_stream(_Provider(*failed, good), _invocation(), _fast(), sleep=_no_wait)
    assert [stream.closed for stream in failed] == [1] * failures
    assert (opened.first, opened.attempt, good.closed) == (EVENTS[0], failures + 1, 0)
    await opened.aclose()
    assert good.closed == 1


@given(error=st.sampled_from([RuntimeError("bug"), KeyError("k"), ValueError("v")]))
async def test_a_stream_failing_with_a_non_provider_error_is_closed(error: Exception) -> None:
    """A bug in the provider propagates unchanged, and its stream is still closed."""
    stream = _Stream((), error)
    with pytest.raises(type(error)) as raised:
        await open_stream(_Provider(stream), _invocation(), _fast(), sleep=_no_wait)
    assert raised.value is error
    assert stream.closed == 1


async def test_the_last_failed_attempt_is_closed_too() -> None:
    """When retrying gives up, the final attempt's stream is closed before the error is raised."""
    streams = [_Stream((), ServerError("boom", provider="fake", status=500)) for _ in range(2)]
    with pytest.raises(ProviderError):
        await open_stream(_Provider(*streams), _invocation(), _fast(2), sleep=_no_wait)
    assert [stream.closed for stream in streams] == [1, 1]


async def test_an_empty_stream_opens_with_no_first_event() -> None:
    """A provider that ends at once gives `first=None`, not an error."""
    stream = _Stream((), None)
    opened = await open_stream(_Provider(stream), _invocation(), _fast(), sleep=_no_wait)
    assert opened.first is None
    assert opened.attempt == 1


@given(count=st.integers(min_value=0, max_value=len(EVENTS)))
async def test_streams_without_aclose_are_fine(count: int) -> None:
    """An iterator with no `aclose` is iterated to its end; closing it is simply skipped."""
    stream = stream_with_retry(
        _Provider(_BareStream(EVENTS[:count])), _invocation(), _fast(), sleep=_no_wait
    )
    async with aclosing(stream):
        received = [event async for event in stream]
    assert received == list(EVENTS[:count])


@given(
    attempt=st.integers(min_value=2_000, max_value=10**9),
    multiplier=st.floats(min_value=2.0, max_value=100.0),
    max_delay=st.floats(min_value=0.5, max_value=600.0),
)
def test_a_huge_attempt_number_gives_the_cap_not_an_overflow(
    attempt: int, multiplier: float, max_delay: float
) -> None:
    """Exponential growth past float range is the capped delay, never an OverflowError."""
    policy = RetryPolicy(multiplier=multiplier, max_delay=max_delay, jitter=0.0)
    assert policy.base_delay(attempt) == max_delay
    error = ServerError("boom", provider="fake", status=500)
    assert policy.delay_for(attempt, error, random.Random(0)) == max_delay  # noqa: S311
