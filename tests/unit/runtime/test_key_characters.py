"""A key no HTTP header can carry is a configuration error, found before any call.

A line break or a non-ASCII character in a key is a local mistake: sent, it failed as a
network error retried for minutes, or crashed building the request. The resolver refuses it,
naming where the key came from, never the key.
"""

from __future__ import annotations

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import SecretStr

from chatscope.adapters.providers.openai._common import auth_headers
from chatscope.errors import ConfigurationError
from chatscope.services.runtime.auth import AuthResolver, AuthSpec

keys = st.text(min_size=1, max_size=40).filter(lambda key: key.strip() == key and key)


def sendable(key: str) -> bool:
    return key.isascii() and all(0x20 <= ord(character) < 0x7F for character in key)


@given(key=keys)
@example(key="sk-with a space")  # a space is printable ASCII: a header carries it
def test_any_key_from_the_environment_is_sendable_or_refused(key: str) -> None:
    """A key comes back exactly if a header can carry it; else the refusal names the
    variable and never shows the key."""
    resolver = AuthResolver({"OPENAI_API_KEY": key})
    spec = AuthSpec.for_provider("openai")
    if sendable(key):
        secret = resolver.resolve(spec).secret()
        assert secret == key
        httpx.Request("POST", "https://api.test/v1", headers=auth_headers(secret))
        return
    with pytest.raises(ConfigurationError) as raised:
        resolver.resolve(spec)
    assert "$OPENAI_API_KEY" in str(raised.value)
    if len(key) >= 8:
        assert key not in str(raised.value)


control = st.sampled_from(["\r\n", "\n", "\r", "\t", "\x00", "\x1b", "\x7f"])
non_ascii = st.characters(min_codepoint=0x80, codec="utf-8")


@given(
    bad=st.one_of(
        control.map(lambda c: (c, "a line break or another control character")),
        non_ascii.map(lambda c: (c, "a non-ASCII character")),
    ),
    suffix=st.text(alphabet="abcdef0123456789", min_size=8, max_size=20),
)
def test_an_explicit_key_that_cannot_be_sent_is_refused(bad: tuple[str, str], suffix: str) -> None:
    """A scope's own key is checked like one from the environment: the refusal says what is
    wrong, where the key came from and what to check, and shows no part of it."""
    character, problem = bad
    spec = AuthSpec.for_provider("openai", api_key=SecretStr(f"sk-abc{character}{suffix}"))
    with pytest.raises(ConfigurationError) as raised:
        AuthResolver({}).resolve(spec)
    assert str(raised.value) == (
        f"the API key for provider 'openai' from the scope's api_key contains {problem}; "
        "an HTTP header cannot carry it (check the key for pasted extra characters)"
    )
    assert suffix not in str(raised.value)
