"""Blanking a call's exact key out of error text: only keys long enough to be told apart.

A one-letter key replaced wherever it occurs would turn every "e" of a provider's message into
`[REDACTED]`; a key that short is left alone in text (chatscope itself never writes a key into
a message), while a key of `MIN_SCRUBBED_SECRET_CHARS` or more never survives.
"""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.adapters.providers.openai.chat import OpenAIChatProvider
from chatscope.errors import MIN_SCRUBBED_SECRET_CHARS, AuthenticationFailedError, scrub_secret
from chatscope.services.runtime.observability.telemetry import RecordingSink, RuntimeTelemetry
from chatscope.services.runtime.state import AgentRuntimeState
from tests.support.adapter_helpers import collect, make_invocation, responding_client

MESSAGE = "Incorrect API key provided: e. You can find your API key at the usual place."
SECRET_TEXT = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E))


async def test_a_one_letter_key_leaves_the_provider_message_readable() -> None:
    """A 401 echoing a one-character key keeps every other occurrence of that letter."""

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": MESSAGE, "code": "invalid_api_key"}})

    async with responding_client(respond) as client:
        with pytest.raises(AuthenticationFailedError) as caught:
            await collect(OpenAIChatProvider(client), make_invocation("http://llm/v1", key="e"))
    assert caught.value.provider_message == MESSAGE
    assert "[REDACTED]" not in str(caught.value)


def test_a_one_letter_key_leaves_the_logged_error_readable() -> None:
    """The `api_error` event of a call with a one-character key keeps its text."""
    sink = RecordingSink()
    state = AgentRuntimeState.create(provider="openai", model="m")
    RuntimeTelemetry(sink, state).api_error(
        duration_ms=1.0, error=RuntimeError(MESSAGE), secret="e"
    )
    [event] = sink.named("api_error")
    assert event["error"] == MESSAGE


@given(text=st.text(), secret=SECRET_TEXT.filter(lambda s: len(s) < MIN_SCRUBBED_SECRET_CHARS))
def test_a_short_secret_is_never_substituted(text: str, secret: str) -> None:
    """Below the minimum length the text comes back unchanged."""
    assert scrub_secret(text, secret) == text


@given(
    before=st.text(max_size=30),
    after=st.text(max_size=30),
    secret=SECRET_TEXT.filter(lambda s: len(s) >= MIN_SCRUBBED_SECRET_CHARS),
)
def test_a_long_secret_never_survives(before: str, after: str, secret: str) -> None:
    """At or over the minimum every occurrence goes, and the text around it stays."""
    scrubbed = scrub_secret(f"{before}{secret}{after}{secret}", secret)
    assert secret not in scrubbed
    assert "[REDACTED]" in scrubbed


@given(text=st.text())
def test_no_secret_changes_nothing(text: str) -> None:
    """Without a key there is nothing to blank."""
    assert scrub_secret(text, None) == text
    assert scrub_secret(text, "") == text
