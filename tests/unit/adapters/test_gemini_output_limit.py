"""Gemini's `maxOutputTokens`: the scope's setting, within the model's documented limit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chatscope.adapters.providers.gemini import _request_body
from chatscope.config.ephemeral import EphemeralSettings
from chatscope.services.frozen import deep_freeze
from chatscope.services.messages import Message
from chatscope.services.runtime.invocation import Credentials, ModelInvocation

LIMITS = {
    "gemini-2.5-flash": 65_536,
    "gemini-2.5-pro": 65_536,
    "gemini-3-pro-preview": 65_536,
    "gemini-2.0-flash": 8_192,
    "gemini-2.0-flash-lite": 8_192,
    "models/gemini-1.5-pro": 8_192,
}


def _invocation(model: str, ceiling: int = 65_536, **params: int) -> ModelInvocation:
    return ModelInvocation(
        runtime_id="r",
        provider="gemini",
        model=model,
        base_url="https://g.test/v1beta",
        credentials=Credentials(),
        history=(Message.user("hi"),),
        model_params=deep_freeze(params),
        ephemerals=EphemeralSettings().with_overrides({"maxOutputTokens": ceiling}),
    )


def _sent(invocation: ModelInvocation) -> int:
    tokens: int = _request_body(invocation, "gemini")["generationConfig"]["maxOutputTokens"]
    return tokens


def test_the_seed_default_is_lowered_to_each_known_model_limit() -> None:
    """With the default 65536, the 2.0 and 1.5 families get 8192, which they accept."""
    assert {model: _sent(_invocation(model)) for model in LIMITS} == LIMITS


def test_an_explicit_max_output_tokens_param_is_sent_as_given() -> None:
    """A `maxOutputTokens` model param is the caller's decision and wins over the cap."""
    assert _sent(_invocation("gemini-2.0-flash", maxOutputTokens=20_000)) == 20_000


@given(model=st.sampled_from(sorted(LIMITS)), ceiling=st.integers(1, 10**6))
def test_known_models_never_get_more_than_their_limit_or_the_ceiling(
    model: str, ceiling: int
) -> None:
    """For a known family the value is the smaller of the setting and the model's limit."""
    assert _sent(_invocation(model, ceiling)) == min(ceiling, LIMITS[model])


@given(
    model=st.text(min_size=1).filter(lambda name: "gemini" not in name),
    ceiling=st.integers(1, 10**6),
)
def test_unknown_models_get_the_setting_unchanged(model: str, ceiling: int) -> None:
    """A model chatscope knows no limit for is sent the configured `maxOutputTokens`."""
    assert _sent(_invocation(model, ceiling)) == ceiling
