"""The summary call in detail: where it goes, which key it carries, how it is retried, what it
reports, and what the compressor says when it fails.

Compression runs unattended before a turn, so what an operator can see of it is the summary
request on the wire and the telemetry events; these tests pin both.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.config.settings import ExplicitSettings
from chatscope.errors import AuthenticationRequiredError, RateLimitError, ServerError
from chatscope.services.chat.retry import RetryPolicy
from chatscope.services.events import FinishReason
from chatscope.services.history.compression import HistoryCompressor
from chatscope.services.history.summariser import ModelSummariser, SummaryError, render_transcript
from chatscope.services.messages import Message, Role, TextBlock, ToolResultBlock
from chatscope.services.runtime.auth import AuthResolver
from chatscope.services.runtime.context import AgentRuntimeContext, ProviderCatalog
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.testing import FunctionProvider, ScriptedProvider, ScriptedReply
from tests.support.histories import (
    FakeClock,
    calling,
    compression_context,
    conversation,
    reply,
    user,
)

TWELVE = conversation(12)  # 499 estimated tokens
LOW_LIMIT = {"context_limit": 800, "compression_threshold": 0.5}  # threshold: 400 tokens
JITTERED = RetryPolicy(initial_delay=1.0, max_delay=8.0, jitter=0.3, first_byte_timeout=5.0)


def _summariser(
    settings: ExplicitSettings,
    *providers: ScriptedProvider | FunctionProvider,
    environ: dict[str, str] | None = None,
    **options: object,
) -> ModelSummariser:
    return ModelSummariser(
        auth_resolver=AuthResolver(environ or {}),
        retry_policy=JITTERED,
        provider_catalog=ProviderCatalog.of(*providers),
        settings=settings,
        **options,  # type: ignore[arg-type]
    )


def _at(context: AgentRuntimeContext, base_url: str) -> AgentRuntimeContext:
    """The same scope, reached at `base_url` (a self-hosted server, say)."""
    return dataclasses.replace(context, state=context.state.with_updates(base_url=base_url))


# --- the route and the key -------------------------------------------------------------------


async def test_the_scope_route_keeps_the_scopes_runtime_id_provider_and_endpoint() -> None:
    """By default the summary call is the scope's own: its runtime id, provider and base URL."""
    provider = ScriptedProvider([ScriptedReply(text="gist")], name="openai")
    context = _at(compression_context(provider=provider), "http://127.0.0.1:8080/v1")
    assert await _summariser(ExplicitSettings(), provider)((user("x"),), context) == "gist"
    [invocation] = provider.invocations
    assert invocation.runtime_id == context.runtime_id
    assert (invocation.provider, invocation.base_url) == ("openai", "http://127.0.0.1:8080/v1")


async def test_another_providers_section_key_wins_over_its_variable() -> None:
    """A configured compression provider uses the key of its own settings section first."""
    other = ScriptedProvider([ScriptedReply(text="gist")], name="openai")
    settings = ExplicitSettings(
        compression={"provider": "openai"},
        providers={"openai": {"api_key": "sk-section-openai-1111"}},
    )
    environ = {"OPENAI_API_KEY": "sk-env-openai-0000"}
    summarise = _summariser(settings, ScriptedProvider([]), other, environ=environ)
    await summarise((user("x"),), compression_context())
    [invocation] = other.invocations
    assert invocation.credentials.secret() == "sk-section-openai-1111"
    assert invocation.model == settings.providers.openai.default_model


async def test_another_providers_key_file_is_read(tmp_path: Path) -> None:
    """Without a section key, the section's key file comes before the environment."""
    key_file = tmp_path / "openai.key"
    key_file.write_text("sk-file-openai-2222\n", encoding="utf-8")
    other = ScriptedProvider([ScriptedReply(text="gist")], name="openai")
    settings = ExplicitSettings(
        compression={"provider": "openai"}, providers={"openai": {"key_file": str(key_file)}}
    )
    environ = {"OPENAI_API_KEY": "sk-env-openai-0000"}
    await _summariser(settings, ScriptedProvider([]), other, environ=environ)(
        (user("x"),), compression_context()
    )
    assert other.invocations[0].credentials.secret() == "sk-file-openai-2222"


async def test_another_provider_that_requires_a_key_refuses_to_run_without_one() -> None:
    """No key anywhere for a provider that needs one: a typed error naming it, no request."""
    other = ScriptedProvider([ScriptedReply(text="gist")], name="openai")
    settings = ExplicitSettings(compression={"provider": "openai"})
    with pytest.raises(AuthenticationRequiredError, match="openai"):
        await _summariser(settings, ScriptedProvider([]), other)(
            (user("x"),), compression_context()
        )
    assert other.invocations == []


async def test_another_provider_without_auth_is_called_without_a_key() -> None:
    """A section with `auth_required = false` (a local server) is called keyless."""
    other = ScriptedProvider([ScriptedReply(text="gist")], name="openai")
    settings = ExplicitSettings(
        compression={"provider": "openai"}, providers={"openai": {"auth_required": False}}
    )
    await _summariser(settings, ScriptedProvider([]), other)((user("x"),), compression_context())
    assert other.invocations[0].credentials.secret() is None


# --- retries -----------------------------------------------------------------------------------


@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
async def test_a_failed_first_attempt_waits_the_jittered_delay_of_its_rng(seed: int) -> None:
    """The summariser's own `rng` and `sleep` drive the retry: same seed, same wait."""
    failure = ServerError("overloaded", provider="demo", status=503)
    attempts: list[ModelInvocation] = []

    def flaky(invocation: ModelInvocation) -> ScriptedReply:
        attempts.append(invocation)
        if len(attempts) == 1:
            raise failure
        return ScriptedReply(text="gist")

    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    summarise = _summariser(
        ExplicitSettings(),
        ScriptedProvider([]),
        rng=random.Random(seed),  # noqa: S311 - jitter
        sleep=record,
    )
    context = compression_context(provider=FunctionProvider(flaky))
    assert await summarise((user("x"),), context) == "gist"
    assert len(attempts) == 2
    assert waits == [JITTERED.delay_for(1, failure, random.Random(seed))]  # noqa: S311


async def test_a_rate_limit_hint_is_waited_through_the_given_sleep() -> None:
    """A 429 with Retry-After is honoured by the summary call like by any other."""
    calls: list[int] = []

    def limited(invocation: ModelInvocation) -> ScriptedReply:
        calls.append(1)
        if len(calls) == 1:
            raise RateLimitError("slow down", provider="demo", status=429, retry_after=7.0)
        return ScriptedReply(text="gist")

    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    summarise = _summariser(ExplicitSettings(), ScriptedProvider([]), sleep=record)
    await summarise((user("x"),), compression_context(provider=FunctionProvider(limited)))
    assert waits == [7.0]


# --- errors and reports ------------------------------------------------------------------------


async def test_a_cut_off_summary_names_the_setting_and_its_value() -> None:
    """The error says which setting capped the summary, and at how much."""
    provider = ScriptedProvider([ScriptedReply(text="half a", finish=FinishReason.LENGTH)])
    settings = ExplicitSettings(compression={"max_summary_tokens": 1234})
    with pytest.raises(SummaryError) as raised:
        await _summariser(settings, provider)((user("x"),), compression_context(provider=provider))
    assert str(raised.value) == ("the summary was cut off at compression.max_summary_tokens (1234)")


async def test_an_empty_summary_is_reported_as_such() -> None:
    """A blank summary fails with a message saying so, not a generic error."""
    sink = RecordingSink()

    async def blank(messages: tuple[Message, ...], context: AgentRuntimeContext) -> str:
        return "  \n "

    context = compression_context(TWELVE, sink=sink, knobs=LOW_LIMIT)
    await HistoryCompressor(blank).maybe_compress(context)
    [event] = sink.named("compression_failed")
    assert (event["error_type"], event["error"]) == (
        "SummaryError",
        "the summariser returned an empty summary",
    )


async def test_a_provider_failure_is_reported_with_its_own_message() -> None:
    """A failed summary call reports the provider's error, not a made-up timeout."""
    sink = RecordingSink()

    async def down(messages: tuple[Message, ...], context: AgentRuntimeContext) -> str:
        raise ServerError("summary service down", provider="demo", status=503)

    context = compression_context(TWELVE, sink=sink, knobs=LOW_LIMIT)
    await HistoryCompressor(down).maybe_compress(context)
    [event] = sink.named("compression_failed")
    assert event["error_type"] == "ServerError"
    assert "summary service down" in event["error"]


@given(seconds=st.floats(min_value=0.01, max_value=120.0), fails=st.booleans())
async def test_the_reported_duration_is_the_summarys_time_in_milliseconds(
    seconds: float, fails: bool
) -> None:
    """`duration_ms` of both outcomes is the compressor's clock time across the attempt."""
    clock, sink = FakeClock(), RecordingSink()
    start = clock.now

    async def timed(messages: tuple[Message, ...], context: AgentRuntimeContext) -> str:
        clock.now += seconds
        if fails:
            raise ServerError("down", provider="demo")
        return "the gist"

    compressor = HistoryCompressor(timed, clock=clock)
    await compressor.maybe_compress(compression_context(TWELVE, sink=sink, knobs=LOW_LIMIT))
    [event] = sink.named("compression_failed" if fails else "history_compressed")
    expected = ((start + seconds) - start) * 1000
    assert event["duration_ms"] == pytest.approx(round(expected, 3), abs=1e-3)


# --- the transcript ----------------------------------------------------------------------------


def test_the_transcript_marks_failed_tools_and_drops_empty_texts() -> None:
    """A failed tool reads `failed` with its error; an empty text block leaves no line."""
    call = calling("c1", text="")
    messages = (
        Message(Role.USER, (TextBlock(""), TextBlock("look it up"))),
        call,
        Message(Role.TOOL, (ToolResultBlock("c1", "t_c1", error="no such file"),)),
        reply("it failed"),
    )
    assert render_transcript(messages) == "\n\n".join(
        (
            "[user] look it up",
            '[assistant called t_c1] {"n":0}',
            "[t_c1 failed] Error: no such file",
            "[assistant] it failed",
        )
    )
