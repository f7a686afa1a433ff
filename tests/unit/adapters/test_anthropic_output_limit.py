"""Anthropic's `max_tokens`: the scope's `maxOutputTokens`, within the model's documented limit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chatscope.adapters.providers.anthropic.messages import _max_tokens, _request_body
from chatscope.config.ephemeral import EphemeralSettings
from chatscope.services.frozen import deep_freeze
from chatscope.services.messages import Message
from chatscope.services.runtime.invocation import Credentials, ModelInvocation

LIMITS = {
    "claude-sonnet-4-5": 64_000,
    "claude-opus-4-1": 32_000,
    "claude-haiku-4-5": 64_000,
    "claude-3-7-sonnet-latest": 64_000,
    "claude-3-5-haiku-latest": 8_192,
    "claude-3-opus-latest": 4_096,
}


def _invocation(model: str, ceiling: int = 65_536, **params: int) -> ModelInvocation:
    return ModelInvocation(
        runtime_id="r",
        provider="anthropic",
        model=model,
        base_url="https://api.test",
        credentials=Credentials(),
        history=(Message.user("hi"),),
        model_params=deep_freeze(params),
        ephemerals=EphemeralSettings().with_overrides({"maxOutputTokens": ceiling}),
    )


def test_the_seed_default_is_lowered_to_each_known_model_limit() -> None:
    """With the default 65536, every known family is sent its own documented limit."""
    sent = {model: _request_body(_invocation(model), "anthropic")["max_tokens"] for model in LIMITS}
    assert sent == LIMITS


def test_an_explicit_max_tokens_param_is_sent_as_given() -> None:
    """A `max_tokens` model param is the caller's decision and wins over the ceiling."""
    body = _request_body(_invocation("claude-sonnet-4-5", max_tokens=1234), "anthropic")
    assert body["max_tokens"] == 1234


@given(model=st.sampled_from(sorted(LIMITS)), ceiling=st.integers(1, 10**6))
def test_known_models_never_get_more_than_their_limit_or_the_ceiling(
    model: str, ceiling: int
) -> None:
    """For a known family the value is the smaller of the setting and the model's limit."""
    assert _max_tokens(model, ceiling) == min(ceiling, LIMITS[model])


@given(
    model=st.text(min_size=1).filter(lambda name: not name.startswith("claude-")),
    ceiling=st.integers(1, 10**6),
)
def test_unknown_models_get_the_setting_unchanged(model: str, ceiling: int) -> None:
    """A model chatscope knows no limit for is sent the configured `maxOutputTokens`."""
    assert _max_tokens(model, ceiling) == ceiling
