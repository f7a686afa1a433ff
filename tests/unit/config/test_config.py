"""Settings: seed defaults, environment and .env reading, and clear validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.config import EphemeralSettings, ExplicitSettings, load_settings
from chatscope.errors import ConfigurationError

SEED_DEFAULTS = {
    "compression-threshold": 0.6,
    "compression-preserve-threshold": 0.3,
    "context-limit": 60000,
    "compression-min-age": 4,
    "maxOutputTokens": 65536,
    "tool-format-override": None,
}


def test_ephemeral_defaults_are_the_seed_values() -> None:
    """Every ephemeral setting defaults to the value REQ-STAT6-002.2 names."""
    ephemerals = EphemeralSettings()
    assert {name: ephemerals.get(name) for name in SEED_DEFAULTS} == SEED_DEFAULTS


def test_unknown_ephemeral_name_is_a_key_error_listing_known_names() -> None:
    """Asking for a setting that does not exist names the ones that do."""
    with pytest.raises(KeyError, match="compression-threshold"):
        EphemeralSettings().get("compression-treshold")


def test_environment_variables_override_nested_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """`CHATSCOPE_A__B` reaches settings section `a.b`, keeping the section's other defaults."""
    monkeypatch.setenv("CHATSCOPE_EPHEMERAL__CONTEXT_LIMIT", "80000")
    monkeypatch.setenv("CHATSCOPE_PROVIDERS__OPENAI__DEFAULT_MODEL", "gpt-x")
    settings = load_settings()
    assert settings.ephemeral.context_limit == 80000
    assert settings.providers.openai.default_model == "gpt-x"
    assert settings.providers.openai.base_url == "https://api.openai.com/v1"


def test_env_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `.env` file given on the command line supplies settings."""
    monkeypatch.delenv("CHATSCOPE_PROVIDER", raising=False)
    env_file = tmp_path / "chat.env"
    env_file.write_text("CHATSCOPE_PROVIDER=anthropic\nCHATSCOPE_MODEL=claude-x\n")
    settings = load_settings(env_file)
    assert (settings.provider, settings.model) == ("anthropic", "claude-x")


def test_missing_env_file_is_a_configuration_error(tmp_path: Path) -> None:
    """A named `.env` file that does not exist is reported, not silently skipped."""
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(tmp_path / "nope.env")


def test_invalid_value_names_key_env_variable_value_and_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An out-of-range setting fails naming the seed key, the env variable, value and limit."""
    monkeypatch.setenv("CHATSCOPE_EPHEMERAL__COMPRESSION_THRESHOLD", "1.5")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert "ephemeral.compression-threshold" in message
    assert "CHATSCOPE_EPHEMERAL__COMPRESSION_THRESHOLD" in message
    assert "'1.5'" in message
    assert "less than or equal to 1" in message


def test_invalid_provider_lists_the_allowed_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown provider name fails with the list of known providers."""
    monkeypatch.setenv("CHATSCOPE_PROVIDER", "openia")
    with pytest.raises(ConfigurationError, match="'openai'"):
        load_settings()


def test_secrets_never_appear_in_validation_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """A section that fails validation does not echo the API key it carried."""
    monkeypatch.setenv("CHATSCOPE_PROVIDERS__OPENAI__API_KEY", "sk-very-secret-key-123456")
    monkeypatch.setenv("CHATSCOPE_PROVIDERS__OPENAI__BASE_URL", "ftp://nowhere")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "sk-very-secret" not in str(caught.value)
    assert "must start with http:// or https://" in str(caught.value)


def test_explicit_settings_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`ExplicitSettings` reads only what it is given, so tests are not steered by the env."""
    monkeypatch.setenv("CHATSCOPE_PROVIDER", "gemini")
    assert ExplicitSettings().provider == "demo"


def test_api_key_is_redacted_in_repr() -> None:
    """A configured key never shows in a settings repr."""
    settings = ExplicitSettings(providers={"openai": {"api_key": "sk-abcdefghijklmnop"}})
    assert "sk-abcdefghijklmnop" not in repr(settings)
    assert settings.providers.openai.api_key is not None


@given(
    threshold=st.floats(min_value=0.0, max_value=1.0),
    preserve=st.floats(min_value=0.0, max_value=1.0),
    limit=st.integers(min_value=10_000, max_value=200_000),
    min_age=st.integers(min_value=0, max_value=1000),
)
def test_ephemeral_overrides_round_trip(
    threshold: float, preserve: float, limit: int, min_age: int
) -> None:
    """Any valid value set under its seed name reads back unchanged (REQ-STAT6-002.2)."""
    overrides = {
        "compression-threshold": threshold,
        "compression-preserve-threshold": preserve,
        "context-limit": limit,
        "compression-min-age": min_age,
    }
    ephemerals = EphemeralSettings().with_overrides(overrides)
    assert {name: ephemerals.get(name) for name in overrides} == overrides


@given(threshold=st.floats(min_value=1.0, exclude_min=True, allow_nan=False))
def test_thresholds_above_one_are_always_rejected(threshold: float) -> None:
    """A compression threshold above 1 never validates, whatever its size."""
    with pytest.raises(ValueError, match="compression-threshold"):
        EphemeralSettings().with_overrides({"compression-threshold": threshold})


@given(overrides=st.dictionaries(st.sampled_from(list(SEED_DEFAULTS)[:4]), st.just(1), max_size=4))
def test_overrides_leave_the_original_snapshot_unchanged(overrides: dict[str, int]) -> None:
    """Applying overrides returns a new snapshot; the one it came from keeps its values."""
    original = EphemeralSettings()
    original.with_overrides(overrides)
    assert original == EphemeralSettings()
