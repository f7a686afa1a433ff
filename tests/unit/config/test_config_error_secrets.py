"""Configuration errors show the offending value, but never a secret (config/loading.py).

A key placed under a misspelt variable (`CHATSCOPE_PROVIDERS__OPENAI__APIKEY`) is refused as an
unknown key; the refusal must not print it. Known secret fields are redacted, also inside a
section given whole, and secret-shaped text is blanked wherever it appears.
"""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.config.loading import load_settings
from chatscope.errors import ConfigurationError

SECTIONS = ("openai", "openai_responses", "anthropic", "gemini", "demo")
KNOWN_FIELDS = ("api_key", "key_file", "base_url", "default_model", "auth_required")

# Every value carries a marker that no message holds by accident.
secrets = st.text(alphabet=string.ascii_letters + string.digits, min_size=8, max_size=24).map(
    "Kq7{}".format
)
shaped_secrets = st.text(alphabet=string.ascii_letters + string.digits, min_size=12).map(
    "sk-proj-Kq7{}".format
)
unknown_keys = st.from_regex(r"[a-z][a-z_]{2,12}", fullmatch=True).filter(
    lambda key: key not in KNOWN_FIELDS
)


def _message(**settings: Any) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(**settings)
    return str(caught.value)


@given(section=st.sampled_from(SECTIONS), key=unknown_keys, value=secrets)
def test_a_value_under_an_unknown_key_is_never_shown(section: str, key: str, value: str) -> None:
    """A misspelt key variable is named, with its env variable, but its value stays hidden."""
    message = _message(providers={section: {key: value}})
    assert "Kq7" not in message
    assert f"providers.{section}.{key}" in message
    assert f"CHATSCOPE_PROVIDERS__{section.upper()}__{key.upper()}" in message
    assert "= [hidden]" in message


@given(section=st.sampled_from(SECTIONS), key=unknown_keys, value=secrets)
def test_a_misspelt_key_variable_in_the_environment_stays_secret(
    monkeypatch: pytest.MonkeyPatch, section: str, key: str, value: str
) -> None:
    """The same through the environment, the way the mistake is usually made."""
    monkeypatch.setenv(f"CHATSCOPE_PROVIDERS__{section.upper()}__{key.upper()}", value)
    assert "Kq7" not in _message()


@given(section=st.sampled_from(SECTIONS), value=st.integers() | st.lists(secrets, min_size=1))
def test_an_invalid_api_key_is_redacted(section: str, value: object) -> None:
    """An `api_key` of the wrong type is reported as such, its value as [REDACTED]."""
    message = _message(providers={section: {"api_key": value}})
    assert "api_key" in message
    assert "[REDACTED]" in message
    assert "Kq7" not in message


@given(section=st.sampled_from(SECTIONS), value=shaped_secrets)
def test_a_secret_given_as_a_whole_section_is_blanked(section: str, value: str) -> None:
    """A key pasted where a section belongs is still recognised by its shape and blanked."""
    message = _message(providers={section: value})
    assert "Kq7" not in message
    assert "[REDACTED]" in message


@given(key=secrets, field=st.sampled_from(["model", "log_level", "max_turns"]))
def test_secret_fields_inside_a_shown_mapping_are_redacted(key: str, field: str) -> None:
    """A mapping given where a plain value belongs is shown with its secret fields redacted."""
    message = _message(**{field: {"api_key": key, "token": key, "name": "kept"}})
    assert "Kq7" not in message
    assert "{'api_key': [REDACTED], 'token': [REDACTED], 'name': 'kept'}" in message
