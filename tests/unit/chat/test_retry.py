"""The retry layer and stream timeouts, against hand-written fake providers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing, suppress
from dataclasses import dataclass, fields
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatscope.errors import (
    AuthenticationFailedError,
    ConfigurationError,
    ErrorCategory,
    InvalidRequestError,
    ModelNotFoundError,
    ProviderError,
    ProviderNetworkError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
)
from chatscope.services.chat.retry import (
    RetryNotice,
    RetryPolicy,
    open_stream,
    should_retry,
    stream_with_retry,
)
from chatscope.services.events import FinishEvent, FinishReason, ProviderEvent, TextDelta
from chatscope.services.messages import Message
from chatscope.services.runtime.invocation import Credentials, ModelInvocation

RETRYABLE = frozenset(
    {
        ErrorCategory.RATE_LIMIT,
        ErrorCategory.SERVER,
        ErrorCategory.OVERLOADED,
        ErrorCategory.NETWORK,
        ErrorCategory.TIMEOUT,
    }
)
TYPICAL_STATUS: dict[ErrorCategory, int | None] = {
    ErrorCategory.RATE_LIMIT: 429,
    ErrorCategory.QUOTA: 429,
    ErrorCategory.AUTHENTICATION: 401,
    ErrorCategory.PERMISSION: 403,
    ErrorCategory.NOT_FOUND: 404,
    ErrorCategory.INVALID_REQUEST: 400,
    ErrorCategory.CONTEXT_LENGTH: 400,
    ErrorCategory.SERVER: 500,
    ErrorCategory.OVERLOADED: 529,
    ErrorCategory.NETWORK: None,
    ErrorCategory.TIMEOUT: None,
    ErrorCategory.PROTOCOL: None,
}
SLOW = 30.0  # a fake's stall; always cut short by a far smaller timeout


# --- fakes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """What one call of a fake provider does: stall, stream events, then maybe fail."""

    events: tuple[ProviderEvent, ...] = (TextDelta("hello"), FinishEvent(FinishReason.STOP))
    error: BaseException | None = None
    first_delay: float = 0.0
    gap_delay: float = 0.0


class ScriptedProvider:
    """Plays one `Attempt` per `stream` call and records calls, closes and inputs."""

    def __init__(self, *attempts: Attempt) -> None:
        self._attempts = attempts
        self.calls = 0
        self.closed = 0
        self.finished = 0
        self.received: list[ModelInvocation] = []
        self.started = asyncio.Event()

    @property
    def name(self) -> str:
        """The fake's provider name."""
        return "fake"

    async def stream(self, invocation: ModelInvocation) -> AsyncGenerator[ProviderEvent, None]:
        """Play the next scripted attempt; `closed` counts every exit, however it happens."""
        self.calls += 1
        self.received.append(invocation)
        self.started.set()
        attempt = self._attempts[min(self.calls, len(self._attempts)) - 1]
        try:
            if attempt.first_delay:
                await asyncio.sleep(attempt.first_delay)
            for index, event in enumerate(attempt.events):
                if index and attempt.gap_delay:
                    await asyncio.sleep(attempt.gap_delay)
                yield event
            if attempt.error is not None:
                raise attempt.error
            self.finished += 1
        finally:
            self.closed += 1


def failing_then_ok(*errors: BaseException) -> ScriptedProvider:
    """A provider that raises `errors` before any event, one per attempt, then succeeds."""
    return ScriptedProvider(*(Attempt(events=(), error=error) for error in errors), Attempt())


def breaking_after(events: Sequence[ProviderEvent], error: BaseException) -> ScriptedProvider:
    """A provider that streams `events` and then fails, on every attempt."""
    return ScriptedProvider(Attempt(events=tuple(events), error=error))


def seeded(seed: int = 0) -> random.Random:
    """A reproducible rng for backoff jitter."""
    return random.Random(seed)  # noqa: S311 - jitter, not cryptography


class RecordingSleep:
    """A `sleep` that records the requested delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def invocation() -> ModelInvocation:
    """A minimal invocation of the fake provider."""
    return ModelInvocation(
        runtime_id="rt-1",
        provider="fake",
        model="fake-model",
        base_url=None,
        credentials=Credentials(),
        history=(Message.user("hi"),),
    )


async def consume(
    provider: ScriptedProvider,
    policy: RetryPolicy,
    sleep: RecordingSleep | None = None,
    *,
    rng: random.Random | None = None,
    on_retry: Callable[[RetryNotice], None] | None = None,
    received: list[ProviderEvent] | None = None,
) -> list[ProviderEvent]:
    """Drain `stream_with_retry`, appending to `received` so a test sees events before a raise."""
    events = [] if received is None else received
    stream = stream_with_retry(
        provider,
        invocation(),
        policy,
        rng=rng or seeded(),
        sleep=sleep or RecordingSleep(),
        on_retry=on_retry,
    )
    async with aclosing(stream):
        async for event in stream:
            events.append(event)
    return events


def rate_limited(retry_after: float | None = None) -> RateLimitError:
    """A 429 rate-limit error."""
    return RateLimitError("slow down", provider="fake", status=429, retry_after=retry_after)


def server_error() -> ServerError:
    """A 500 error."""
    return ServerError("boom", provider="fake", status=500)


def overloaded() -> ServerError:
    """A 529 overloaded error."""
    return ServerError("busy", provider="fake", status=529, category=ErrorCategory.OVERLOADED)


OK_EVENTS = Attempt().events
POLICY = RetryPolicy()


# --- examples ---------------------------------------------------------------------------------


async def test_rate_limit_then_success_retries_once() -> None:
    """A 429 before any output is retried and the caller gets the next attempt's events."""
    provider, sleep = failing_then_ok(rate_limited()), RecordingSleep()
    assert await consume(provider, POLICY, sleep) == list(OK_EVENTS)
    assert (provider.calls, len(sleep.delays)) == (2, 1)


async def test_server_errors_twice_then_success() -> None:
    """Two 500s are retried and the third attempt's events reach the caller."""
    provider, sleep = failing_then_ok(server_error(), server_error()), RecordingSleep()
    assert await consume(provider, POLICY, sleep) == list(OK_EVENTS)
    assert (provider.calls, len(sleep.delays)) == (3, 2)


async def test_overloaded_529_is_retried() -> None:
    """Anthropic's 529 overloaded is transient and retried."""
    provider = failing_then_ok(overloaded())
    assert await consume(provider, POLICY) == list(OK_EVENTS)
    assert provider.calls == 2


async def test_quota_is_not_retried() -> None:
    """A used-up quota comes as a 429 too, but waiting will not refill it."""
    provider = failing_then_ok(QuotaExceededError("quota", provider="fake", status=429))
    sleep = RecordingSleep()
    with pytest.raises(QuotaExceededError):
        await consume(provider, POLICY, sleep)
    assert (provider.calls, sleep.delays) == (1, [])


@pytest.mark.parametrize(
    "error",
    [
        InvalidRequestError("bad", provider="fake", status=400),
        AuthenticationFailedError("who", provider="fake", status=401),
        AuthenticationFailedError(
            "no", provider="fake", status=403, category=ErrorCategory.PERMISSION
        ),
        ModelNotFoundError("gone", provider="fake", status=404),
    ],
    ids=["400", "401", "403", "404"],
)
async def test_client_errors_are_never_retried(error: ProviderError) -> None:
    """400, 401, 403 and 404 fail the same way every time, so the first is raised."""
    provider = failing_then_ok(error)
    with pytest.raises(type(error)) as raised:
        await consume(provider, POLICY)
    assert raised.value is error
    assert provider.calls == 1


async def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    """After `max_attempts` failures the last attempt's error is raised, with no extra call."""
    errors = [server_error() for _ in range(4)]
    provider, sleep = failing_then_ok(*errors), RecordingSleep()
    with pytest.raises(ServerError) as raised:
        await consume(provider, RetryPolicy(max_attempts=3), sleep)
    assert raised.value is errors[2]
    assert (provider.calls, len(sleep.delays)) == (3, 2)


async def test_error_after_the_first_event_is_not_retried() -> None:
    """Once an event reached the caller, a failure is raised: a retry would repeat output."""
    provider = breaking_after([TextDelta("par")], server_error())
    received: list[ProviderEvent] = []
    with pytest.raises(ServerError):
        await consume(provider, POLICY, received=received)
    assert received == [TextDelta("par")]
    assert provider.calls == 1


async def test_server_retry_after_is_honoured() -> None:
    """A server-suggested delay replaces the backoff, unjittered."""
    provider, sleep = failing_then_ok(rate_limited(retry_after=7.5)), RecordingSleep()
    await consume(provider, POLICY, sleep)
    assert sleep.delays == [7.5]


async def test_server_retry_after_is_capped_at_300_seconds() -> None:
    """An hour-long Retry-After is cut to `max_server_delay` (300 s by default)."""
    provider, sleep = failing_then_ok(rate_limited(retry_after=3600.0)), RecordingSleep()
    await consume(provider, POLICY, sleep)
    assert sleep.delays == [300.0]


async def test_backoff_without_hint_doubles_up_to_the_cap() -> None:
    """Without jitter the default waits are 5, 10, 20, 30, 30 seconds."""
    provider, sleep = failing_then_ok(*[server_error() for _ in range(5)]), RecordingSleep()
    await consume(provider, RetryPolicy(jitter=0.0), sleep)
    assert sleep.delays == [5.0, 10.0, 20.0, 30.0, 30.0]


async def test_first_byte_timeout_is_retried_then_succeeds() -> None:
    """A stalled first event becomes a TIMEOUT error, retried because nothing was shown yet."""
    provider = ScriptedProvider(Attempt(first_delay=SLOW), Attempt())
    notices: list[RetryNotice] = []
    policy = RetryPolicy(first_byte_timeout=0.01)
    assert await consume(provider, policy, on_retry=notices.append) == list(OK_EVENTS)
    (notice,) = notices
    assert isinstance(notice.error, ProviderNetworkError)
    assert (notice.error.category, notice.error.provider) == (ErrorCategory.TIMEOUT, "fake")
    assert (provider.calls, provider.closed) == (2, 2)


async def test_provider_own_timeout_error_is_not_reworded() -> None:
    """A builtin TimeoutError raised by the provider itself is not mistaken for our deadline."""
    provider = failing_then_ok(TimeoutError("socket"))
    with pytest.raises(TimeoutError, match="socket"):
        await consume(provider, POLICY)
    assert provider.calls == 1


async def test_non_provider_errors_are_not_retried() -> None:
    """A bug in an adapter (a plain exception) is raised at once, not retried."""
    provider = failing_then_ok(ValueError("bug"))
    with pytest.raises(ValueError, match="bug"):
        await consume(provider, POLICY)
    assert provider.calls == 1


async def test_cancellation_while_sleeping_propagates_and_stops_retrying() -> None:
    """Cancelling during the backoff raises CancelledError and makes no further attempt."""
    provider, sleeping = failing_then_ok(server_error()), asyncio.Event()

    async def never_wakes(delay: float) -> None:
        sleeping.set()
        await asyncio.Event().wait()

    stream = stream_with_retry(provider, invocation(), POLICY, rng=seeded(), sleep=never_wakes)
    task = asyncio.create_task(anext(stream))
    await sleeping.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (provider.calls, provider.closed) == (1, 1)


async def test_cancellation_while_streaming_closes_the_provider() -> None:
    """Cancelling while waiting for an event closes the provider's stream and is not retried."""
    provider = ScriptedProvider(Attempt(first_delay=SLOW), Attempt())
    task = asyncio.create_task(consume(provider, POLICY))
    await provider.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (provider.calls, provider.closed, provider.finished) == (1, 1, 0)


async def test_breaking_out_early_closes_the_provider_stream() -> None:
    """A caller that stops after one event and closes the stream closes the provider's too."""
    provider = ScriptedProvider(Attempt(events=(TextDelta("a"), TextDelta("b"))))
    stream = stream_with_retry(provider, invocation(), POLICY, rng=seeded())
    async with aclosing(stream):
        async for _event in stream:
            break
    assert (provider.closed, provider.finished) == (1, 0)


async def test_on_retry_and_the_opened_attempt_report_the_right_numbers() -> None:
    """on_retry sees failed attempts 1 and 2 with the slept delays; attempt 3 is the one opened."""
    errors = (server_error(), rate_limited(retry_after=2.0))
    provider, sleep = failing_then_ok(*errors), RecordingSleep()
    notices: list[RetryNotice] = []
    opened = await open_stream(
        provider, invocation(), POLICY, rng=seeded(), sleep=sleep, on_retry=notices.append
    )
    await opened.aclose()
    assert opened.attempt == 3
    assert [(n.attempt, n.error) for n in notices] == [(1, errors[0]), (2, errors[1])]
    assert [n.delay for n in notices] == sleep.delays
    assert sleep.delays[1] == 2.0


async def test_every_attempt_gets_the_same_invocation() -> None:
    """A retry sends the very same frozen invocation, not a rebuilt one."""
    provider = failing_then_ok(server_error(), server_error())
    call = invocation()
    stream = stream_with_retry(provider, call, POLICY, rng=seeded(), sleep=RecordingSleep())
    async with aclosing(stream):
        _ = [event async for event in stream]
    assert provider.received == [call, call, call]
    assert all(item is call for item in provider.received)


def test_default_policy_matches_the_documented_values() -> None:
    """Defaults: 6 attempts, 5 s doubling to 30 s, ±30 %, 300 s server cap, 60 s first byte."""
    assert RetryPolicy() == RetryPolicy(6, 5.0, 2.0, 30.0, 0.3, 300.0, 60.0)


async def test_disabled_timeout_waits_as_long_as_the_provider_needs() -> None:
    """With no first-byte timeout, slow first and later events are waited for, not cut off."""
    events = (TextDelta("a"), TextDelta("b"))
    provider = ScriptedProvider(Attempt(events=events, first_delay=0.05, gap_delay=0.05))
    policy = RetryPolicy(max_attempts=1, first_byte_timeout=None)
    assert await consume(provider, policy) == list(events)


# --- properties -------------------------------------------------------------------------------

attempts_st = st.integers(min_value=1, max_value=60)
jitters = st.floats(min_value=0.0, max_value=0.99)
seconds = st.floats(min_value=0.001, max_value=1000.0)
policies = st.builds(
    RetryPolicy,
    max_attempts=st.integers(min_value=1, max_value=8),
    initial_delay=seconds,
    multiplier=st.floats(min_value=1.0, max_value=10.0),
    max_delay=seconds,
    jitter=jitters,
    max_server_delay=seconds,
)
categories = st.sampled_from(list(ErrorCategory))


def provider_error(category: ErrorCategory, retry_after: float | None = None) -> ProviderError:
    """A provider error of `category` with the status an HTTP API would send with it."""
    status = TYPICAL_STATUS[category]
    return ProviderError(
        "x", provider="fake", category=category, status=status, retry_after=retry_after
    )


@given(policy=policies, attempt=attempts_st, rng=st.randoms(use_true_random=False))
def test_delay_stays_within_the_jitter_band_of_the_base(
    policy: RetryPolicy, attempt: int, rng: random.Random
) -> None:
    """Without a server hint the delay is the base delay times a factor in [1-j, 1+j]."""
    base = policy.base_delay(attempt)
    delay = policy.delay_for(attempt, server_error(), rng)
    assert (
        base * (1 - policy.jitter) * (1 - 1e-9) <= delay <= base * (1 + policy.jitter) * (1 + 1e-9)
    )


@given(policy=policies, attempt=attempts_st, rng=st.randoms(use_true_random=False))
def test_delay_without_hint_never_exceeds_the_jittered_cap(
    policy: RetryPolicy, attempt: int, rng: random.Random
) -> None:
    """However many attempts failed, no backoff exceeds max_delay * (1 + jitter)."""
    delay = policy.delay_for(attempt, server_error(), rng)
    assert 0 < delay <= policy.max_delay * (1 + policy.jitter) * (1 + 1e-9)


@given(
    attempt=attempts_st,
    hint=st.floats(min_value=0.0, max_value=1e6),
    rng=st.randoms(use_true_random=False),
)
def test_server_hint_wins_capped_at_300(attempt: int, hint: float, rng: random.Random) -> None:
    """With a server hint the default policy waits exactly min(hint, 300)."""
    assert POLICY.delay_for(attempt, rate_limited(retry_after=hint), rng) == min(hint, 300.0)


@given(policy=policies, category=categories, hint=seconds, rng=st.randoms(use_true_random=False))
def test_server_hint_is_capped_by_any_policy(
    policy: RetryPolicy, category: ErrorCategory, hint: float, rng: random.Random
) -> None:
    """Whatever the category and policy, a hint becomes min(hint, max_server_delay)."""
    delay = policy.delay_for(1, provider_error(category, retry_after=hint), rng)
    assert delay == min(hint, policy.max_server_delay)


@given(policy=policies, count=st.integers(min_value=1, max_value=80))
def test_unjittered_delays_are_non_decreasing_and_capped(policy: RetryPolicy, count: int) -> None:
    """The base delays grow (or stay) from attempt to attempt and never pass max_delay."""
    delays = [policy.base_delay(attempt) for attempt in range(1, count + 1)]
    assert delays == sorted(delays)
    assert all(delay <= policy.max_delay for delay in delays)
    assert delays[0] == min(policy.initial_delay, policy.max_delay)


@given(policy=policies, attempt=attempts_st, seed=st.integers())
def test_delay_is_a_pure_function_of_its_inputs(
    policy: RetryPolicy, attempt: int, seed: int
) -> None:
    """The same seed gives the same delay: all randomness comes from the passed rng."""
    first = policy.delay_for(attempt, server_error(), seeded(seed))
    assert first == policy.delay_for(attempt, server_error(), seeded(seed))


@given(policy=policies, attempt=attempts_st, rng=st.randoms(use_true_random=False))
def test_zero_jitter_gives_the_base_delay(
    policy: RetryPolicy, attempt: int, rng: random.Random
) -> None:
    """With jitter 0 the delay is exactly the exponential base delay."""
    unjittered = RetryPolicy(**{**_as_kwargs(policy), "jitter": 0.0})
    assert unjittered.delay_for(attempt, server_error(), rng) == unjittered.base_delay(attempt)


@given(policy=policies, category=categories, attempt=attempts_st)
def test_never_retried_once_output_started(
    policy: RetryPolicy, category: ErrorCategory, attempt: int
) -> None:
    """No error of any category is retried after an event reached the caller."""
    assert not should_retry(provider_error(category), attempt, policy, output_started=True)


@given(policy=policies, category=categories, extra=st.integers(min_value=0, max_value=10))
def test_never_retried_past_max_attempts(
    policy: RetryPolicy, category: ErrorCategory, extra: int
) -> None:
    """The attempt numbered max_attempts (or later) is the last one."""
    attempt = policy.max_attempts + extra
    assert not should_retry(provider_error(category), attempt, policy, output_started=False)


@given(policy=policies, category=categories, data=st.data())
def test_retry_decision_follows_the_category(
    policy: RetryPolicy, category: ErrorCategory, data: st.DataObject
) -> None:
    """Before output and within the budget, exactly the transient categories are retried."""
    attempt = data.draw(st.integers(min_value=1, max_value=policy.max_attempts))
    expected = category in RETRYABLE and attempt < policy.max_attempts
    assert should_retry(provider_error(category), attempt, policy, False) is expected


@given(
    policy=policies,
    error=st.sampled_from(
        [ValueError("v"), asyncio.CancelledError(), TimeoutError(), KeyboardInterrupt(), OSError()]
    ),
)
def test_non_provider_errors_are_never_retried(policy: RetryPolicy, error: BaseException) -> None:
    """Cancellation, interrupts and plain bugs are never retried."""
    assert not should_retry(error, 1, policy, output_started=False)


@given(policy=policies)
def test_valid_policies_construct(policy: RetryPolicy) -> None:
    """Every value in the allowed ranges is accepted unchanged."""
    assert RetryPolicy(**_as_kwargs(policy)) == policy


INVALID_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "max_attempts": st.integers(max_value=0) | st.floats(allow_nan=False) | st.just(True),
    "initial_delay": st.floats(max_value=0.0) | st.just(float("inf")) | st.just("5"),
    "multiplier": st.floats(max_value=0.999) | st.just(float("nan")),
    "max_delay": st.floats(max_value=0.0) | st.just(float("nan")),
    "jitter": st.floats(min_value=1.0) | st.floats(max_value=-1e-9),
    "max_server_delay": st.floats(max_value=0.0),
    "first_byte_timeout": st.floats(max_value=0.0) | st.just(float("inf")),
}


@pytest.mark.parametrize("name", sorted(INVALID_VALUES))
@given(data=st.data())
def test_invalid_policy_values_are_refused_naming_the_field(name: str, data: st.DataObject) -> None:
    """A bad value raises ConfigurationError naming the field, the value and what is allowed."""
    value = data.draw(INVALID_VALUES[name])
    with pytest.raises(ConfigurationError) as raised:
        RetryPolicy(**{name: value})
    assert f"{name}={value!r}" in str(raised.value)
    assert "must be" in str(raised.value)


def _as_kwargs(policy: RetryPolicy) -> dict[str, Any]:
    return {field.name: getattr(policy, field.name) for field in fields(policy)}


# --- stream properties ------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """One failing attempt of a script: `emitted` events, then an error of `category`."""

    category: ErrorCategory
    emitted: int
    hint: float | None


failures = st.builds(
    Failure,
    category=categories,
    emitted=st.sampled_from([0, 0, 0, 1, 2]),
    hint=st.none() | st.floats(min_value=0.0, max_value=1000.0),
)
scripts = st.lists(failures, max_size=7)


def tagged_events(attempt: int, count: int) -> tuple[ProviderEvent, ...]:
    """Events that say which attempt produced them."""
    return tuple(TextDelta(f"{attempt}:{index}") for index in range(count))


def script_provider(script: list[Failure], success_events: int) -> ScriptedProvider:
    """A fake playing `script`'s failures in order, then a successful attempt."""
    attempts = [
        Attempt(events=tagged_events(number, f.emitted), error=provider_error(f.category, f.hint))
        for number, f in enumerate(script, start=1)
    ]
    done = len(script) + 1
    success = (*tagged_events(done, success_events), FinishEvent(FinishReason.STOP, raw=str(done)))
    return ScriptedProvider(*attempts, Attempt(events=success))


def expected_attempts(script: list[Failure], max_attempts: int) -> tuple[int, Failure | None]:
    """How many attempts the rules allow, and the failure that ends the call (None: success)."""
    for number, failure in enumerate(script, start=1):
        transient = failure.category in RETRYABLE and failure.emitted == 0
        if not transient or number == max_attempts:
            return number, failure
    return len(script) + 1, None


async def run_script(
    provider: ScriptedProvider, policy: RetryPolicy, sleep: RecordingSleep, rng: random.Random
) -> tuple[list[ProviderEvent], BaseException | None]:
    """Drain the stream, returning what the caller received and what was raised."""
    received: list[ProviderEvent] = []
    try:
        await consume(provider, policy, sleep, rng=rng, received=received)
    except ProviderError as error:
        return received, error
    return received, None


stream_settings = settings(deadline=None)


@stream_settings
@given(
    script=scripts,
    policy=policies,
    success_events=st.integers(0, 4),
    rng=st.randoms(use_true_random=False),
)
async def test_attempt_count_follows_the_rules(
    script: list[Failure], policy: RetryPolicy, success_events: int, rng: random.Random
) -> None:
    """For any script of errors, the number of calls and the outcome are what the rules dictate."""
    provider, sleep = script_provider(script, success_events), RecordingSleep()
    _, raised = await run_script(provider, policy, sleep, rng)
    count, failure = expected_attempts(script, policy.max_attempts)
    assert provider.calls == count
    assert len(sleep.delays) == count - 1
    assert (raised is None) == (failure is None)
    if failure is not None:
        assert isinstance(raised, ProviderError)
        assert raised.category == failure.category


@stream_settings
@given(
    script=scripts,
    policy=policies,
    success_events=st.integers(0, 4),
    rng=st.randoms(use_true_random=False),
)
async def test_events_come_from_one_attempt_without_loss_or_duplicates(
    script: list[Failure], policy: RetryPolicy, success_events: int, rng: random.Random
) -> None:
    """The caller gets exactly the events of the last attempt, in order, and none of others."""
    provider = script_provider(script, success_events)
    received, raised = await run_script(provider, policy, RecordingSleep(), rng)
    count, failure = expected_attempts(script, policy.max_attempts)
    if failure is None:
        done = FinishEvent(FinishReason.STOP, raw=str(count))
        assert received == [*tagged_events(count, success_events), done]
    else:
        assert received == list(tagged_events(count, failure.emitted))
    assert raised is not None or received[-1] == FinishEvent(FinishReason.STOP, raw=str(count))


@stream_settings
@given(script=scripts, policy=policies, rng=st.randoms(use_true_random=False))
async def test_on_retry_reports_every_failed_attempt_and_wait(
    script: list[Failure], policy: RetryPolicy, rng: random.Random
) -> None:
    """on_retry sees attempts 1..n-1 with exactly the delays that were slept."""
    provider, sleep = script_provider(script, 1), RecordingSleep()
    notices: list[RetryNotice] = []
    with suppress(ProviderError):
        await consume(provider, policy, sleep, rng=rng, on_retry=notices.append)
    assert [notice.attempt for notice in notices] == list(range(1, provider.calls))
    assert [notice.delay for notice in notices] == sleep.delays


@stream_settings
@given(script=scripts, policy=policies, rng=st.randoms(use_true_random=False))
async def test_waits_respect_the_hint_or_the_cap(
    script: list[Failure], policy: RetryPolicy, rng: random.Random
) -> None:
    """Each wait is the capped server hint of the failed attempt, or a bounded backoff."""
    provider, sleep = script_provider(script, 1), RecordingSleep()
    await run_script(provider, policy, sleep, rng)
    for failure, delay in zip(script, sleep.delays, strict=False):
        if failure.hint is not None:
            assert delay == min(failure.hint, policy.max_server_delay)
        else:
            assert 0 < delay <= policy.max_delay * (1 + policy.jitter) * (1 + 1e-9)


@stream_settings
@given(script=scripts, policy=policies, seed=st.integers())
async def test_same_seed_gives_the_same_waits(
    script: list[Failure], policy: RetryPolicy, seed: int
) -> None:
    """Two runs with equally seeded rngs wait the same: no hidden randomness."""
    first, second = RecordingSleep(), RecordingSleep()
    await run_script(script_provider(script, 1), policy, first, seeded(seed))
    await run_script(script_provider(script, 1), policy, second, seeded(seed))
    assert first.delays == second.delays


@stream_settings
@given(
    script=scripts,
    policy=policies,
    stop_after=st.integers(0, 5),
    rng=st.randoms(use_true_random=False),
)
async def test_every_provider_stream_is_closed_exactly_once(
    script: list[Failure], policy: RetryPolicy, stop_after: int, rng: random.Random
) -> None:
    """Whether the call succeeds, fails or the caller stops early, each stream opened is closed."""
    provider = script_provider(script, 3)
    stream = stream_with_retry(provider, invocation(), policy, rng=rng, sleep=RecordingSleep())
    try:
        async with aclosing(stream):
            seen = 0
            async for _event in stream:
                seen += 1
                if seen > stop_after:
                    break
    except ProviderError:
        pass
    assert provider.closed == provider.calls


@stream_settings
@given(
    emitted=st.integers(1, 5),
    category=categories,
    policy=policies,
    rng=st.randoms(use_true_random=False),
)
async def test_failure_after_output_delivers_then_raises(
    emitted: int, category: ErrorCategory, policy: RetryPolicy, rng: random.Random
) -> None:
    """After k events any failure, even a transient one, is raised after exactly those k events."""
    error = provider_error(category)
    provider = breaking_after(tagged_events(1, emitted), error)
    received, raised = await run_script(provider, policy, RecordingSleep(), rng)
    assert raised is error
    assert received == list(tagged_events(1, emitted))
    assert provider.calls == 1
