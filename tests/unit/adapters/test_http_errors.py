"""The shared request edge: HTTP and transport failures become typed, secret-free errors."""

from __future__ import annotations

import asyncio
import json
import string
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from chatscope.adapters.providers._http import (
    endpoint,
    error_from_response,
    is_event_stream,
    load_json,
    parse_retry_after,
    raise_for_status,
    read_json,
    translate_errors,
)
from chatscope.errors import (
    AuthenticationFailedError,
    ErrorCategory,
    InvalidRequestError,
    MissingProviderRuntimeError,
    ModelNotFoundError,
    ProviderError,
    ProviderNetworkError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
    redact_secrets,
)
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
# Which error class may carry which category (the tree in chatscope.errors).
CLASS_OF_CATEGORY: dict[ErrorCategory, type[ProviderError]] = {
    ErrorCategory.RATE_LIMIT: RateLimitError,
    ErrorCategory.QUOTA: QuotaExceededError,
    ErrorCategory.AUTHENTICATION: AuthenticationFailedError,
    ErrorCategory.PERMISSION: AuthenticationFailedError,
    ErrorCategory.NOT_FOUND: ModelNotFoundError,
    ErrorCategory.INVALID_REQUEST: InvalidRequestError,
    ErrorCategory.CONTEXT_LENGTH: InvalidRequestError,
    ErrorCategory.SERVER: ServerError,
    ErrorCategory.OVERLOADED: ServerError,
    ErrorCategory.NETWORK: ProviderNetworkError,
    ErrorCategory.TIMEOUT: ProviderNetworkError,
    ErrorCategory.PROTOCOL: StreamProtocolError,
}
WORDINGS = {
    "plain": "Something went wrong with this request.",
    "context": "This model's maximum context length is 8192 tokens.",
    "quota": "You exceeded your current quota, please check your plan and billing details.",
}
MESSAGE_LIMIT = 500

Shape = Callable[[str], bytes]
GEMINI_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def _openai_body(message: str) -> bytes:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    return json.dumps({"error": error}).encode()


def _anthropic_body(message: str) -> bytes:
    error = {"type": "invalid_request_error", "message": message}
    return json.dumps({"type": "error", "error": error}).encode()


def _gemini_payload(message: str, *details: dict[str, Any]) -> dict[str, Any]:
    error: dict[str, Any] = {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}
    if details:
        error["details"] = list(details)
    return {"error": error}


def _gemini_body(message: str) -> bytes:
    return json.dumps(_gemini_payload(message)).encode()


def _gemini_list_body(message: str) -> bytes:
    return json.dumps([_gemini_payload(message)]).encode()


def _plain_body(message: str) -> bytes:
    return message.encode()


JSON_SHAPES = (_openai_body, _anthropic_body, _gemini_body, _gemini_list_body)
ALL_SHAPES = (*JSON_SHAPES, _plain_body)


def _error(
    status: int, body: bytes, headers: dict[str, str] | None = None, provider: str = "openai"
) -> ProviderError:
    return error_from_response(provider, status, headers or {}, body)


def _translated(exc: BaseException, secret: str | None = None) -> ProviderError:
    """The error `translate_errors` raises when `exc` escapes the block it guards."""

    async def guarded() -> None:
        async with translate_errors("openai", secret):
            raise exc

    with pytest.raises(ProviderError) as caught:
        asyncio.run(guarded())
    return caught.value


def _invocation(base_url: str | None) -> ModelInvocation:
    return ModelInvocation(
        runtime_id="rt-1",
        provider="openai",
        model="gpt-test",
        base_url=base_url,
        credentials=Credentials(),
        history=(),
    )


def _response(
    status: int, content: bytes = b"", headers: dict[str, str] | None = None
) -> httpx.Response:
    request = httpx.Request("POST", "https://x")
    return httpx.Response(status, content=content, headers=headers, request=request)


def _expected_classification(
    status: int, wording: str, hinted: bool
) -> tuple[type[ProviderError], ErrorCategory]:
    """The reference status table, written independently of the source's lookup order."""
    if status == 429:
        if wording == "quota" and not hinted:
            return QuotaExceededError, ErrorCategory.QUOTA
        return RateLimitError, ErrorCategory.RATE_LIMIT
    if status == 413 or (status in (400, 422) and wording == "context"):
        return InvalidRequestError, ErrorCategory.CONTEXT_LENGTH
    fixed = {
        401: (AuthenticationFailedError, ErrorCategory.AUTHENTICATION),
        402: (QuotaExceededError, ErrorCategory.QUOTA),
        403: (AuthenticationFailedError, ErrorCategory.PERMISSION),
        404: (ModelNotFoundError, ErrorCategory.NOT_FOUND),
        408: (ProviderNetworkError, ErrorCategory.TIMEOUT),
        503: (ServerError, ErrorCategory.OVERLOADED),
        529: (ServerError, ErrorCategory.OVERLOADED),
    }
    if status in fixed:
        return fixed[status]
    if status >= 500:
        return ServerError, ErrorCategory.SERVER
    return InvalidRequestError, ErrorCategory.INVALID_REQUEST


texts = st.text(st.characters(codec="utf-8"))
token_chars = string.ascii_letters + string.digits
# (label, secret): the label stays readable, the secret after it must never be shown.
secrets = st.one_of(
    st.tuples(
        st.just(""),
        st.builds(
            "{}{}".format,
            st.sampled_from(["sk-", "sk-proj-", "sk-ant-api03-"]),
            st.text(token_chars + "_-", min_size=20, max_size=48),
        ),
    ),
    st.tuples(
        st.just(""),
        st.builds("AIza{}".format, st.text(token_chars + "_-", min_size=35, max_size=35)),
    ),
    st.tuples(
        st.sampled_from(["Bearer ", "bearer ", "Authorization: Bearer "]),
        st.text(token_chars + "._~+/-", min_size=16, max_size=60),
    ),
    st.tuples(st.sampled_from(["?key=", "&key="]), st.text(token_chars, min_size=16, max_size=40)),
)
non_negative_seconds = st.floats(min_value=0.0, max_value=1e9, allow_nan=False)


# --- error_from_response: status and wording to class and category --------------------------


@pytest.mark.parametrize(
    ("status", "message", "headers", "kind", "category", "retryable"),
    [
        (400, "Invalid 'messages'", {}, InvalidRequestError, "invalid_request", False),
        (400, WORDINGS["context"], {}, InvalidRequestError, "context_length", False),
        (
            400,
            "prompt is too long: 210000 tokens",
            {},
            InvalidRequestError,
            "context_length",
            False,
        ),
        (413, "Request Entity Too Large", {}, InvalidRequestError, "context_length", False),
        (401, "Incorrect API key provided", {}, AuthenticationFailedError, "authentication", False),
        (403, "Permission denied", {}, AuthenticationFailedError, "permission", False),
        (404, "The model does not exist", {}, ModelNotFoundError, "not_found", False),
        (408, "Request Timeout", {}, ProviderNetworkError, "timeout", True),
        (429, "Rate limit reached", {}, RateLimitError, "rate_limit", True),
        (429, WORDINGS["quota"], {}, QuotaExceededError, "quota", False),
        (429, "insufficient_quota", {}, QuotaExceededError, "quota", False),
        (429, WORDINGS["quota"], {"Retry-After": "20"}, RateLimitError, "rate_limit", True),
        (500, "Internal error", {}, ServerError, "server", True),
        (502, "Bad Gateway", {}, ServerError, "server", True),
        (504, "Gateway Timeout", {}, ServerError, "server", True),
        (503, "Service Unavailable", {}, ServerError, "overloaded", True),
        (529, "Overloaded", {}, ServerError, "overloaded", True),
    ],
)
def test_status_and_wording_pick_class_category_and_retryability(
    status: int,
    message: str,
    headers: dict[str, str],
    kind: type[ProviderError],
    category: str,
    retryable: bool,
) -> None:
    """Each documented status (and wording) maps to one error class, category and retry rule."""
    error = _error(status, _openai_body(message), headers)
    assert type(error) is kind
    assert (error.category, error.retryable, error.status) == (category, retryable, status)
    assert error.provider_message == message


def test_error_string_names_provider_status_category_and_message() -> None:
    """`str(error)` is one readable line: provider, HTTP status, category, provider's message."""
    error = _error(429, _openai_body("Rate limit reached"), {"retry-after": "3"}, "anthropic")
    assert str(error) == "anthropic HTTP 429 rate_limit: Rate limit reached"
    assert (error.provider, error.retry_after) == ("anthropic", 3.0)


def test_gemini_retry_info_turns_quota_wording_into_rate_limit() -> None:
    """Gemini's per-minute "exceeded your current quota" with a RetryInfo delay is a rate limit."""
    payload = _gemini_payload(WORDINGS["quota"], {"@type": GEMINI_RETRY_INFO, "retryDelay": "34s"})
    error = _error(429, json.dumps(payload).encode(), provider="gemini")
    assert type(error) is RateLimitError
    assert (error.category, error.retry_after, error.retryable) == ("rate_limit", 34.0, True)


# --- error_from_response: the provider's message ---------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_openai_body("You didn't provide an API key."), "You didn't provide an API key."),
        (
            b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
            "Overloaded",
        ),
        (
            b'{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}',
            "API key not valid.",
        ),
        (
            b'[{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}]',
            "The model is overloaded.",
        ),
        (b'{"error": "model crashed"}', "model crashed"),
        (b'{"message": "Not Found"}', "Not Found"),
        (
            b"  upstream connect error or disconnect/reset  \n",
            "upstream connect error or disconnect/reset",
        ),
        (b"<html><body>Bad Gateway</body></html>", "<html><body>Bad Gateway</body></html>"),
        (b'{"error": {"code": 500}}', '{"error": {"code": 500}}'),
        (b"", "(empty response body)"),
        (b"   \n", "(empty response body)"),
    ],
)
def test_provider_message_is_extracted_from_each_body_shape(body: bytes, message: str) -> None:
    """OpenAI, Anthropic, Gemini (bare or in a list), bare strings and plain text all yield it."""
    assert _error(500, body).provider_message == message


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_long_messages_are_truncated(shape: Shape) -> None:
    """A provider message is cut to a bounded length, so a huge HTML page is not echoed."""
    error = _error(500, shape("é" * 5000))
    assert error.provider_message == "é" * MESSAGE_LIMIT


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "Incorrect API key provided: sk-proj-abcdefghijklmnop1234.",
            "Incorrect API key provided: [REDACTED].",
        ),
        (
            "API key not valid: AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
            "API key not valid: [REDACTED]",
        ),
        ("header was Bearer abc.def.ghi-jkl_mno", "header was Bearer [REDACTED]"),
        (
            "GET /v1beta/models?alt=sse&key=hunter2hunter2 failed",
            "GET /v1beta/models?alt=sse&key=[REDACTED] failed",
        ),
        ('{"x-api-key": "plain-secret-value"}', '{"x-api-key": "[REDACTED]"}'),
    ],
)
def test_secrets_in_bodies_are_redacted(text: str, shown: str) -> None:
    """Key-shaped strings in a provider's body never reach the error text."""
    error = _error(401, text.encode(), provider="openai")
    assert error.provider_message == shown
    assert str(error) == f"openai HTTP 401 authentication: {shown}"


def test_a_key_cut_by_truncation_is_not_partly_shown() -> None:
    """A key straddling the message limit does not leave a recognisable prefix behind."""
    key = "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"
    error = _error(400, ("x" * (MESSAGE_LIMIT - 23) + key).encode(), provider="gemini")
    assert key[:12] not in error.provider_message


# --- parse_retry_after ----------------------------------------------------------------------


def test_retry_after_ms_wins_over_retry_after() -> None:
    """OpenAI's `retry-after-ms` is the more precise hint and is preferred."""
    assert parse_retry_after({"Retry-After": "30", "retry-after-ms": "1500"}) == 1.5


def test_garbage_retry_after_ms_falls_back_to_retry_after() -> None:
    """An unparsable `retry-after-ms` does not hide a valid `Retry-After`."""
    assert parse_retry_after({"retry-after-ms": "soon", "Retry-After": "4"}) == 4.0


def test_retry_after_as_http_date_is_seconds_from_now() -> None:
    """An HTTP-date `Retry-After` becomes the seconds between now and then."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    delay = parse_retry_after({"Retry-After": when})
    assert delay is not None
    assert 118.0 <= delay <= 120.0


def test_retry_after_date_in_the_past_is_zero() -> None:
    """A date already gone means "retry now", never a negative wait."""
    when = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert parse_retry_after({"Retry-After": when}) == 0.0


@pytest.mark.parametrize("value", ["soon", "", "   ", "tomorrow", "12 parsecs"])
def test_garbage_retry_after_is_none(value: str) -> None:
    """A header that is neither seconds nor a date is no hint at all."""
    assert parse_retry_after({"Retry-After": value}) is None


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "1e999"])
def test_non_finite_retry_after_is_none(value: str) -> None:
    """`NaN` or infinity is not a number of seconds (HTTP allows digits only)."""
    assert parse_retry_after({"Retry-After": value}) is None


def test_no_hint_anywhere_is_none() -> None:
    """No header and no payload: no hint."""
    assert parse_retry_after({}) is None
    assert parse_retry_after({"content-type": "application/json"}, {"error": {}}) is None


def test_gemini_retry_info_delay_is_read_from_the_payload() -> None:
    """Gemini's `RetryInfo.retryDelay` ("34.4s") is a hint when no header gives one."""
    payload = _gemini_payload(
        "slow down",
        {"@type": "type.googleapis.com/google.rpc.Help", "links": []},
        {"@type": GEMINI_RETRY_INFO, "retryDelay": "34.4s"},
    )
    assert parse_retry_after({}, payload) == 34.4
    assert parse_retry_after({}, [payload]) == 34.4
    assert parse_retry_after({"Retry-After": "2"}, payload) == 2.0


def test_gemini_retry_info_without_a_delay_is_none() -> None:
    """A RetryInfo whose delay cannot be read gives no hint."""
    payload = _gemini_payload("slow down", {"@type": GEMINI_RETRY_INFO, "retryDelay": "later"})
    assert parse_retry_after({}, payload) is None


# --- raise_for_status -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 204, 301, 304, 399])
async def test_raise_for_status_ignores_success_and_redirects(status: int) -> None:
    """Below 400 nothing is raised, whatever the body holds."""
    response = _response(status, _openai_body("not an error"))
    await raise_for_status(response, "openai")


async def test_raise_for_status_raises_the_typed_error() -> None:
    """An error response raises what `error_from_response` builds, with headers and body."""
    response = _response(429, _openai_body("Rate limit reached"), {"Retry-After": "7"})
    with pytest.raises(RateLimitError) as caught:
        await raise_for_status(response, "openai")
    assert (caught.value.status, caught.value.retry_after) == (429, 7.0)
    assert caught.value.provider_message == "Rate limit reached"


async def test_model_not_found_code_on_400_is_model_not_found() -> None:
    """The Responses API's 400 with code `model_not_found` is a `ModelNotFoundError`."""
    error = {
        "message": "The requested model 'gpt-9' does not exist.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    response = _response(400, json.dumps({"error": error}).encode())
    with pytest.raises(ModelNotFoundError) as caught:
        await raise_for_status(response, "openai-responses")
    assert caught.value.category == ErrorCategory.NOT_FOUND
    assert (caught.value.status, caught.value.retryable) == (400, False)
    assert caught.value.provider_message == "The requested model 'gpt-9' does not exist."
    assert caught.value.provider == "openai-responses"


async def test_other_400_codes_stay_invalid_request() -> None:
    """Only the `model_not_found` code changes the class of a 400."""
    body = json.dumps({"error": {"message": "bad", "code": "invalid_value"}}).encode()
    with pytest.raises(InvalidRequestError):
        await raise_for_status(_response(400, body), "openai")


# --- translate_errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
        httpx.WriteTimeout("write timed out"),
        httpx.PoolTimeout("pool exhausted"),
    ],
)
def test_timeouts_become_retryable_timeout_errors(exc: httpx.TimeoutException) -> None:
    """Every httpx timeout is a `ProviderNetworkError` of category timeout."""
    error = _translated(exc)
    assert type(error) is ProviderNetworkError
    assert (error.category, error.retryable) == (ErrorCategory.TIMEOUT, True)
    assert error.provider_message == f"request timed out ({type(exc).__name__})"
    assert error.__cause__ is exc


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadError("connection reset"),
        httpx.RemoteProtocolError("peer closed connection"),
        httpx.ProxyError("proxy refused"),
        httpx.UnsupportedProtocol("ftp:// is not supported"),
    ],
)
def test_other_transport_errors_become_network_errors(exc: httpx.TransportError) -> None:
    """Any other transport failure is a retryable network error chained to its cause."""
    error = _translated(exc)
    assert type(error) is ProviderNetworkError
    assert (error.category, error.retryable) == (ErrorCategory.NETWORK, True)
    assert error.provider_message == f"connection failed ({type(exc).__name__}): {exc}"
    assert error.__cause__ is exc


def test_decoding_errors_become_protocol_errors() -> None:
    """A body httpx cannot decode is the provider's protocol fault."""
    exc = httpx.DecodingError("invalid gzip")
    error = _translated(exc)
    assert type(error) is StreamProtocolError
    assert (error.category, error.retryable) == (ErrorCategory.PROTOCOL, False)
    assert error.provider_message == "undecodable response body: invalid gzip"
    assert error.__cause__ is exc


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (KeyError("choices"), "unexpected payload shape (KeyError: 'choices')"),
        (TypeError("list indices"), "unexpected payload shape (TypeError: list indices)"),
        (AttributeError("no get"), "unexpected payload shape (AttributeError: no get)"),
    ],
)
def test_payload_shape_errors_become_protocol_errors(exc: Exception, message: str) -> None:
    """A payload missing a documented key or of the wrong type is a protocol error, not a crash."""
    error = _translated(exc)
    assert type(error) is StreamProtocolError
    assert error.provider_message == message
    assert error.__cause__ is exc


def test_provider_errors_pass_through_unchanged() -> None:
    """A typed error raised inside the block is re-raised as it is."""
    original = RateLimitError("slow down", provider="openai", status=429, retry_after=2.0)
    assert _translated(original, "hunter2hunter2") is original


def test_unrelated_exceptions_propagate() -> None:
    """Our own bugs (here a ValueError) are not disguised as provider errors."""

    async def guarded() -> None:
        async with translate_errors("openai", None):
            raise ValueError("ours")

    with pytest.raises(ValueError, match="ours"):
        asyncio.run(guarded())


def test_a_clean_block_raises_nothing() -> None:
    """Without a failure the context manager is transparent."""

    async def guarded() -> int:
        async with translate_errors("openai", "hunter2hunter2"):
            return 42

    assert asyncio.run(guarded()) == 42


def test_verbatim_secret_in_a_transport_error_is_replaced_and_unchained() -> None:
    """An oddly shaped key echoed in an error is scrubbed and its cause is dropped."""
    secret = "my-local-proxy-token-42"
    error = _translated(httpx.ConnectError(f"proxy rejected {secret}"), secret)
    assert error.provider_message == "connection failed (ConnectError): proxy rejected [REDACTED]"
    assert error.__cause__ is None
    assert error.__suppress_context__ is True
    assert secret not in "".join(traceback.format_exception(error))


def test_verbatim_secret_in_a_provider_error_keeps_its_type_and_status() -> None:
    """Scrubbing a typed error keeps its class, category, status and retry hint."""
    secret = "my-local-proxy-token-42"
    original = AuthenticationFailedError(
        f"key {secret} rejected", provider="openai", status=401, retry_after=1.0
    )
    error = _translated(original, secret)
    assert type(error) is AuthenticationFailedError
    assert error.provider_message == "key [REDACTED] rejected"
    assert (error.category, error.status, error.retry_after) == ("authentication", 401, 1.0)
    assert error.__cause__ is None


def test_secret_only_in_the_timeout_cause_is_unchained() -> None:
    """A timeout's message omits the cause's text; a cause holding the key is dropped too."""
    secret = "my-local-proxy-token-42"
    error = _translated(httpx.ReadTimeout(f"reading from {secret}"), secret)
    assert error.provider_message == "request timed out (ReadTimeout)"
    assert error.__cause__ is None
    assert secret not in "".join(traceback.format_exception(error))


# --- endpoint, JSON and content type --------------------------------------------------------


def test_endpoint_without_base_url_names_the_missing_part() -> None:
    """There is no default host: a runtime without `base_url` fails naming it."""
    with pytest.raises(MissingProviderRuntimeError) as caught:
        endpoint(_invocation(None), "/chat/completions")
    assert caught.value.missing == ("base_url",)
    assert caught.value.runtime_id == "rt-1"
    assert str(caught.value) == "runtime context for runtime rt-1 is missing: base_url"


def test_endpoint_joins_without_doubling_slashes() -> None:
    """A base URL with a trailing slash does not produce `//` before the path."""
    assert endpoint(_invocation("https://api.example.com/v1/"), "/chat/completions") == (
        "https://api.example.com/v1/chat/completions"
    )
    assert endpoint(_invocation("http://127.0.0.1:11434/v1"), "/models") == (
        "http://127.0.0.1:11434/v1/models"
    )


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/event-stream", True),
        ("text/event-stream; charset=utf-8", True),
        ("application/json", False),
        (None, False),
    ],
)
def test_event_stream_is_decided_by_the_response_content_type(
    content_type: str | None, expected: bool
) -> None:
    """SSE is recognised from what came back, with or without parameters."""
    headers = {} if content_type is None else {"content-type": content_type}
    assert is_event_stream(_response(200, b"", headers)) is expected


def test_invalid_json_is_a_protocol_error() -> None:
    """Garbage where JSON belongs is a `StreamProtocolError` chained to the parse error."""
    with pytest.raises(StreamProtocolError, match="invalid JSON from provider") as caught:
        load_json("{not json", "anthropic")
    assert caught.value.provider == "anthropic"
    assert isinstance(caught.value.__cause__, json.JSONDecodeError)


async def test_read_json_returns_an_object_body() -> None:
    """A non-streamed JSON object body is returned parsed."""
    response = _response(200, b'{"id": "resp_1", "output": []}')
    assert await read_json(response, "openai") == {"id": "resp_1", "output": []}


async def test_read_json_rejects_a_body_that_is_not_an_object() -> None:
    """A JSON array or scalar where an object belongs is a protocol error."""
    with pytest.raises(StreamProtocolError, match="not a JSON object"):
        await read_json(_response(200, b"[1, 2]"), "openai")


# --- properties -----------------------------------------------------------------------------


@given(status=st.integers(min_value=400, max_value=599), body=st.binary(max_size=200))
def test_retryable_iff_category_is_transient(status: int, body: bytes) -> None:
    """For every error status the class carries its category, retryable exactly when transient."""
    error = _error(status, body)
    assert isinstance(error, CLASS_OF_CATEGORY[error.category])
    assert error.retryable is (error.category in RETRYABLE)
    assert error.status == status


@given(
    status=st.integers(min_value=400, max_value=599),
    wording=st.sampled_from(sorted(WORDINGS)),
    hinted=st.booleans(),
    shape=st.sampled_from(ALL_SHAPES),
)
def test_classification_matches_the_status_table(
    status: int, wording: str, hinted: bool, shape: Shape
) -> None:
    """Status, wording and a retry hint decide class and category as the reference table says."""
    headers = {"retry-after": "5"} if hinted else {}
    error = _error(status, shape(WORDINGS[wording]), headers)
    kind, category = _expected_classification(status, wording, hinted)
    assert (type(error), error.category) == (kind, category)
    assert error.retry_after == (5.0 if hinted else None)


@given(seconds=non_negative_seconds)
def test_retry_after_seconds_round_trip(seconds: float) -> None:
    """Any non-negative `Retry-After` in seconds reads back as that number."""
    assert parse_retry_after({"Retry-After": str(seconds)}) == seconds


@given(millis=non_negative_seconds)
def test_retry_after_ms_is_converted_to_seconds(millis: float) -> None:
    """Any non-negative `retry-after-ms` reads back as that many thousandths of a second."""
    assert parse_retry_after({"retry-after-ms": str(millis)}) == millis / 1000


@given(
    seconds=st.floats(max_value=0.0, exclude_max=True, allow_nan=False, allow_infinity=False),
    name=st.sampled_from(["Retry-After", "retry-after-ms"]),
)
def test_negative_retry_after_is_zero(seconds: float, name: str) -> None:
    """A negative hint means "now", never a negative sleep."""
    assert parse_retry_after({name: str(seconds)}) == 0.0


@given(
    millis=non_negative_seconds,
    seconds=non_negative_seconds,
    flips=st.lists(st.booleans(), min_size=14, max_size=14),
)
def test_retry_after_header_names_are_case_insensitive(
    millis: float, seconds: float, flips: list[bool]
) -> None:
    """However the names are cased, `retry-after-ms` is found and preferred."""

    def cased(name: str) -> str:
        return "".join(c.upper() if flip else c for c, flip in zip(name, flips, strict=False))

    headers = {cased("retry-after"): str(seconds), cased("retry-after-ms"): str(millis)}
    assert parse_retry_after(headers) == millis / 1000
    assert parse_retry_after({cased("retry-after"): str(seconds)}) == seconds


@given(delay=non_negative_seconds, wrapped=st.booleans())
def test_gemini_retry_delay_round_trips(delay: float, wrapped: bool) -> None:
    """Any `retryDelay` of the form "<seconds>s" is read as those seconds, bare or in a list."""
    payload = _gemini_payload("slow", {"@type": GEMINI_RETRY_INFO, "retryDelay": f"{delay}s"})
    assert parse_retry_after({}, [payload] if wrapped else payload) == delay


@given(seconds=st.integers(min_value=1, max_value=3600))
def test_http_date_retry_after_is_about_the_same_many_seconds(seconds: int) -> None:
    """A `Retry-After` date N seconds ahead is read as (just under) N seconds."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)
    parsed = parse_retry_after({"Retry-After": when})
    assert parsed is not None
    assert seconds - 2.0 <= parsed <= seconds


@given(message=st.text(), status=st.integers(min_value=400, max_value=599))
def test_every_body_shape_yields_the_same_provider_message(message: str, status: int) -> None:
    """OpenAI, Anthropic, Gemini and list-wrapped Gemini bodies give one identical message."""
    messages = {_error(status, shape(message)).provider_message for shape in JSON_SHAPES}
    assert messages == {redact_secrets(message[:MESSAGE_LIMIT])}


@given(message=st.text(max_size=2 * MESSAGE_LIMIT))
def test_unremarkable_messages_are_kept_and_truncated_exactly(message: str) -> None:
    """A message holding nothing key-like is shown as its first 500 characters, unaltered."""
    assume(redact_secrets(message) == message)
    for shape in JSON_SHAPES:
        assert _error(400, shape(message)).provider_message == message[:MESSAGE_LIMIT]


@given(
    prefix=texts.filter(lambda text: len(text) <= 200),
    suffix=texts,
    labelled_secret=secrets,
    shape=st.sampled_from([_plain_body, _openai_body, _gemini_list_body]),
    status=st.integers(min_value=400, max_value=599),
)
def test_secrets_never_reach_the_error_text(
    prefix: str,
    suffix: str,
    labelled_secret: tuple[str, str],
    shape: Shape,
    status: int,
) -> None:
    """A key of any known shape anywhere in a body is shown as [REDACTED], never itself."""
    label, secret = labelled_secret
    assume(secret not in prefix and secret not in suffix)
    error = _error(status, shape(f"{prefix} {label}{secret} {suffix}"), provider="gemini")
    assert secret not in error.provider_message
    assert secret not in str(error)
    assert "[REDACTED]" in error.provider_message


@example(secret="translate_er", before="", after="", kind=httpx.ConnectError)
@given(
    secret=st.text(token_chars + "-_.~", min_size=12, max_size=40),
    before=texts,
    after=texts,
    kind=st.sampled_from([httpx.ConnectError, httpx.ReadError, httpx.DecodingError, KeyError]),
)
def test_a_verbatim_secret_never_survives_translation(
    secret: str, before: str, after: str, kind: type[Exception]
) -> None:
    """Whatever the failure text, the call's key is neither shown nor printed in a traceback."""
    assume(secret not in before and secret not in after)
    error = _translated(kind(f"{before}{secret}{after}"), secret)
    assert secret not in str(error)
    assert secret not in _printed_exceptions(error)
    assert error.__cause__ is None


def _printed_exceptions(error: BaseException) -> str:
    """What a printed traceback of `error` shows of it and of every exception chained to it:
    their types, messages and notes. (The rest of a traceback is file names and source lines,
    which a drawn key may happen to match: `translate_er` is in a line of this module.)"""
    shown: traceback.TracebackException | None = traceback.TracebackException.from_exception(error)
    lines: list[str] = []
    while shown is not None:
        lines += shown.format_exception_only()
        shown = shown.__cause__ or (None if shown.__suppress_context__ else shown.__context__)
    return "".join(lines)


@given(status=st.integers(min_value=400, max_value=599), message=st.text(max_size=80))
def test_raise_for_status_raises_what_error_from_response_builds(status: int, message: str) -> None:
    """The status check and the classifier agree on every error status."""
    body = _anthropic_body(message)
    expected = _error(status, body, provider="anthropic")
    with pytest.raises(ProviderError) as caught:
        asyncio.run(raise_for_status(_response(status, body), "anthropic"))
    assert type(caught.value) is type(expected)
    assert (caught.value.category, caught.value.status) == (expected.category, status)
    assert str(caught.value) == str(expected)


@given(
    host=st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,5}){1,2}", fullmatch=True),
    prefix=st.from_regex(r"(/[a-z0-9]{1,8}){0,3}", fullmatch=True),
    slashes=st.integers(min_value=0, max_value=3),
    path=st.from_regex(r"(/[a-z:]{1,12}){1,3}", fullmatch=True),
)
def test_endpoint_is_base_without_trailing_slashes_plus_path(
    host: str, prefix: str, slashes: int, path: str
) -> None:
    """For any base URL and path the join has exactly one slash between them."""
    url = endpoint(_invocation(f"https://{host}{prefix}{'/' * slashes}"), path)
    assert url == f"https://{host}{prefix}{path}"
    assert url.count("//") == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(value=json_values, as_bytes=st.booleans())
def test_load_json_round_trips(value: Any, as_bytes: bool) -> None:
    """Whatever JSON a provider sends, as text or bytes, parses back to the same value."""
    data = json.dumps(value)
    assert load_json(data.encode() if as_bytes else data, "openai") == value


@given(value=json_values)
def test_read_json_accepts_exactly_objects(value: Any) -> None:
    """A body is returned only when it is a JSON object; anything else is a protocol error."""
    response = _response(200, json.dumps(value).encode())
    if isinstance(value, dict):
        assert asyncio.run(read_json(response, "openai")) == value
    else:
        with pytest.raises(StreamProtocolError):
            asyncio.run(read_json(response, "openai"))
