"""An OpenAI Responses stream that reports a failure: `error` events, nested or flat, and retries.

OpenAI streams the code and message of an `error` event nested under `error` (then sends
`response.failed`); the API reference documents them on the event itself. Both are read, the
error is classified by its code, and only transient codes are retried.
"""

from __future__ import annotations

import random
import string
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.adapters.providers.openai.responses import OpenAIResponsesProvider
from chatscope.errors import (
    ErrorCategory,
    InvalidRequestError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
)
from chatscope.services.chat import RetryPolicy, open_stream
from tests.support.adapter_helpers import PROPERTY, make_invocation, mocked_events, sse_body
from tests.support.replay_server import ScriptedResponse, replay_server

NAME = "openai-responses"
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)
CODES: list[tuple[str | None, type[ProviderError], ErrorCategory, bool]] = [
    ("insufficient_quota", QuotaExceededError, ErrorCategory.QUOTA, False),
    ("rate_limit_exceeded", RateLimitError, ErrorCategory.RATE_LIMIT, True),
    ("tokens_per_min_rate_limit_exceeded", RateLimitError, ErrorCategory.RATE_LIMIT, True),
    ("server_error", ServerError, ErrorCategory.SERVER, True),
    ("context_length_exceeded", InvalidRequestError, ErrorCategory.CONTEXT_LENGTH, False),
    ("invalid_prompt", InvalidRequestError, ErrorCategory.INVALID_REQUEST, False),
    (None, ServerError, ErrorCategory.SERVER, True),
]


def error_event(code: str | None, message: str, *, nested: bool) -> dict[str, Any]:
    """An `error` event as OpenAI streams it (`nested`) or as its reference documents it."""
    if nested:
        error = {"type": code or "error", "code": code, "message": message, "param": None}
        return {"type": "error", "sequence_number": 2, "error": error}
    return {"type": "error", "sequence_number": 2, "code": code, "message": message, "param": None}


def failed_event(code: str | None, message: str) -> dict[str, Any]:
    error = {"code": code, "message": message}
    response = {"id": "resp_1", "object": "response", "status": "failed", "error": error}
    return {"type": "response.failed", "sequence_number": 3, "response": response}


def created_event() -> dict[str, Any]:
    response = {"id": "resp_1", "object": "response", "status": "in_progress", "output": []}
    return {"type": "response.created", "sequence_number": 0, "response": response}


def failing_stream(code: str | None, message: str, *, nested: bool) -> bytes:
    """A stream that starts, reports an error event, then fails."""
    return sse_body(
        [created_event(), error_event(code, message, nested=nested), failed_event(code, message)]
    )


async def mocked(body: bytes) -> list[Any]:
    return await mocked_events(OpenAIResponsesProvider, [body], provider=NAME)


async def test_a_nested_quota_error_event_is_a_quota_error_with_its_message() -> None:
    """The stream of the issue: `insufficient_quota` nested under `error`, then failed."""
    body = failing_stream("insufficient_quota", QUOTA_MESSAGE, nested=True)
    with pytest.raises(QuotaExceededError) as caught:
        await mocked(body)
    error = caught.value
    assert error.category is ErrorCategory.QUOTA
    assert not error.retryable
    assert error.provider_message == QUOTA_MESSAGE
    assert "server: error" not in str(error)


@PROPERTY
@given(
    code=st.sampled_from(CODES),
    message=st.text(alphabet=string.ascii_letters + " .,", min_size=1, max_size=40).filter(
        str.strip
    ),
    nested=st.booleans(),
)
async def test_any_error_event_is_classified_by_its_code(
    code: tuple[str | None, type[ProviderError], ErrorCategory, bool], message: str, nested: bool
) -> None:
    """Nested or flat, an `error` event raises the error its code names, with its message."""
    name, kind, category, retryable = code
    with pytest.raises(ProviderError) as caught:
        await mocked(failing_stream(name, message, nested=nested))
    assert type(caught.value) is kind
    assert caught.value.category is category
    assert caught.value.retryable is retryable
    assert caught.value.provider_message == message


async def test_a_quota_error_event_over_a_socket_is_not_retried() -> None:
    """Served by a real server, the quota failure reaches the caller after one request."""
    body = failing_stream("insufficient_quota", QUOTA_MESSAGE, nested=True)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    with replay_server(ScriptedResponse.sse(body), ScriptedResponse.sse(body)) as server:
        async with httpx.AsyncClient() as client:
            invocation = make_invocation(server.url + "/v1", provider=NAME)
            with pytest.raises(QuotaExceededError):
                await open_stream(
                    OpenAIResponsesProvider(client),
                    invocation,
                    RetryPolicy(),
                    rng=random.Random(0),  # noqa: S311 - jitter, not cryptography
                    sleep=sleep,
                )
    assert (len(server.requests), waits) == (1, [])


async def test_a_server_error_event_over_a_socket_is_retried() -> None:
    """A transient `server_error` is tried again, and the second answer gets through."""
    failing = failing_stream("server_error", "try again", nested=True)
    ok = sse_body(
        [
            created_event(),
            {
                "type": "response.completed",
                "response": {"id": "resp_1", "status": "completed", "output": []},
            },
        ]
    )
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    with replay_server(ScriptedResponse.sse(failing), ScriptedResponse.sse(ok)) as server:
        async with httpx.AsyncClient() as client:
            invocation = make_invocation(server.url + "/v1", provider=NAME)
            opened = await open_stream(
                OpenAIResponsesProvider(client),
                invocation,
                RetryPolicy(),
                rng=random.Random(0),  # noqa: S311 - jitter, not cryptography
                sleep=sleep,
            )
            await opened.aclose()
    assert (len(server.requests), len(waits)) == (2, 1)
