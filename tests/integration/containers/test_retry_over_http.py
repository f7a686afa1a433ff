"""The retry layer over a real 127.0.0.1 socket, with status codes and faults from a live server."""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import aclosing

import httpx
import pytest

from chatscope.adapters.providers._http import endpoint, raise_for_status, translate_errors
from chatscope.adapters.providers._sse import sse_stream
from chatscope.errors import (
    ErrorCategory,
    InvalidRequestError,
    ProviderNetworkError,
)
from chatscope.services.chat.retry import RetryNotice, RetryPolicy, stream_with_retry
from chatscope.services.events import FinishEvent, FinishReason, ProviderEvent, TextDelta
from chatscope.services.messages import Message
from chatscope.services.runtime.invocation import Credentials, ModelInvocation
from tests.support.replay_server import ReplayServer, ScriptedResponse, replay_server

SSE_BODY = b"data: hello\n\ndata: world\n\n"
STREAMED = [TextDelta("hello"), TextDelta("world"), FinishEvent(FinishReason.STOP)]
FAST = RetryPolicy(initial_delay=0.001, max_delay=0.01, first_byte_timeout=5.0)


class SSEProvider:
    """A minimal streaming adapter: POST, typed errors for >= 400, one TextDelta per SSE event."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    @property
    def name(self) -> str:
        """The provider name errors carry."""
        return "replay"

    async def stream(self, invocation: ModelInvocation) -> AsyncGenerator[ProviderEvent, None]:
        """Stream one response, translating wire failures into chatscope errors."""
        url = endpoint(invocation, "/v1/stream")
        async with (
            translate_errors(self.name, invocation.credentials.secret()),
            self._client.stream("POST", url, json={"model": invocation.model}) as resp,
        ):
            await raise_for_status(resp, self.name)
            async with sse_stream(resp) as batches:
                async for batch in batches:
                    for _, data in batch:
                        yield TextDelta(data)
        yield FinishEvent(FinishReason.STOP)


class RecordingSleep:
    """A `sleep` that records the requested delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    """A live replay server, stopped after the test."""
    with replay_server() as live:
        yield live


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client that ignores proxy settings, so 127.0.0.1 is reached directly."""
    async with httpx.AsyncClient(trust_env=False, timeout=10.0) as http:
        yield http


async def collect(
    client: httpx.AsyncClient,
    server: ReplayServer,
    policy: RetryPolicy = FAST,
    sleep: RecordingSleep | None = None,
    received: list[ProviderEvent] | None = None,
    notices: list[RetryNotice] | None = None,
) -> list[ProviderEvent]:
    """Stream through `stream_with_retry`, appending to `received` as events arrive."""
    events = [] if received is None else received
    call = ModelInvocation(
        runtime_id="rt-http",
        provider="replay",
        model="m",
        base_url=server.url,
        credentials=Credentials(),
        history=(Message.user("hi"),),
    )
    stream = stream_with_retry(
        SSEProvider(client),
        call,
        policy,
        rng=random.Random(0),  # noqa: S311 - backoff jitter, not cryptography
        sleep=sleep or RecordingSleep(),
        on_retry=None if notices is None else notices.append,
    )
    async with aclosing(stream):
        async for event in stream:
            events.append(event)
    return events


def error_json(status: int, **headers: str) -> ScriptedResponse:
    """An error response shaped like the providers' `{"error": {"message": ...}}`."""
    return ScriptedResponse.json_body({"error": {"message": f"status {status}"}}, status, **headers)


async def test_429_with_retry_after_zero_then_success(
    server: ReplayServer, client: httpx.AsyncClient
) -> None:
    """A 429 saying `Retry-After: 0` is retried at once and the second response is streamed."""
    server.enqueue(error_json(429, **{"Retry-After": "0"}), ScriptedResponse.sse(SSE_BODY))
    sleep = RecordingSleep()
    assert await collect(client, server, sleep=sleep) == STREAMED
    assert sleep.delays == [0.0]
    assert len(server.requests) == 2


async def test_500_twice_then_success(server: ReplayServer, client: httpx.AsyncClient) -> None:
    """Two 500 responses are retried and the third request's stream reaches the caller."""
    server.enqueue(error_json(500), error_json(500), ScriptedResponse.sse(SSE_BODY))
    sleep = RecordingSleep()
    assert await collect(client, server, sleep=sleep) == STREAMED
    assert len(sleep.delays) == 2
    assert len(server.requests) == 3


async def test_529_overloaded_then_success(server: ReplayServer, client: httpx.AsyncClient) -> None:
    """Anthropic's 529 overloaded is classified as retryable and retried."""
    server.enqueue(error_json(529), ScriptedResponse.sse(SSE_BODY))
    notices: list[RetryNotice] = []
    assert await collect(client, server, notices=notices) == STREAMED
    assert [notice.error.category for notice in notices] == [ErrorCategory.OVERLOADED]
    assert len(server.requests) == 2


async def test_400_is_not_retried(server: ReplayServer, client: httpx.AsyncClient) -> None:
    """A 400 is raised at once: the server sees exactly one request."""
    server.enqueue(error_json(400), ScriptedResponse.sse(SSE_BODY))
    with pytest.raises(InvalidRequestError) as raised:
        await collect(client, server)
    assert raised.value.status == 400
    assert len(server.requests) == 1


async def test_slow_first_byte_is_retried_then_succeeds(
    server: ReplayServer, client: httpx.AsyncClient
) -> None:
    """A response stalled past first_byte_timeout is abandoned and the next one is streamed."""
    slow = ScriptedResponse.sse(SSE_BODY, first_byte_delay=1.0)
    server.enqueue(slow, ScriptedResponse.sse(SSE_BODY))
    notices: list[RetryNotice] = []
    policy = RetryPolicy(initial_delay=0.001, first_byte_timeout=0.2)
    assert await collect(client, server, policy, notices=notices) == STREAMED
    assert [notice.error.category for notice in notices] == [ErrorCategory.TIMEOUT]
    assert len(server.requests) == 2


async def test_connection_dropped_after_output_is_raised_not_retried(
    server: ReplayServer, client: httpx.AsyncClient
) -> None:
    """A socket closed mid-stream after an event reached the caller is raised, never retried."""
    server.enqueue(ScriptedResponse.sse(SSE_BODY, drop_after=1), ScriptedResponse.sse(SSE_BODY))
    received: list[ProviderEvent] = []
    with pytest.raises(ProviderNetworkError) as raised:
        await collect(client, server, received=received)
    assert raised.value.category == ErrorCategory.NETWORK
    assert received == [TextDelta("hello")]
    assert len(server.requests) == 1


async def test_a_stream_idle_past_the_read_timeout_fails_as_timeout_not_retried(
    server: ReplayServer,
) -> None:
    """A stream that stalls after output hits the transport's idle (read) timeout, unretried."""
    server.enqueue(ScriptedResponse.sse(SSE_BODY, chunk_delay=1.0), ScriptedResponse.sse(SSE_BODY))
    received: list[ProviderEvent] = []
    timeouts = httpx.Timeout(5.0, read=0.2)
    async with httpx.AsyncClient(trust_env=False, timeout=timeouts) as idle_client:
        with pytest.raises(ProviderNetworkError) as raised:
            await collect(idle_client, server, received=received)
    assert raised.value.category == ErrorCategory.TIMEOUT
    assert received == [TextDelta("hello")]
    assert len(server.requests) == 1
