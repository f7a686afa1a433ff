"""`check_http_url`: a URL it accepts can be requested; one it refuses says why, as a ValueError."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.config.urls import check_http_url

schemes = st.sampled_from(["http://", "https://", "ftp://", "", "HTTP://", "http:"])
hosts = st.sampled_from(
    ["127.0.0.1", "localhost", "api.example.com", "[::1]", "[::1", "::1]", "", "exa mple.com"]
)
ports = st.one_of(
    st.just(""),
    st.integers(min_value=-5, max_value=100_000).map(lambda port: f":{port}"),
    st.sampled_from([":", ":abc", ":80a"]),
)
paths = st.sampled_from(["", "/", "/v1", "/v1beta/", "/a b", "/v1?x=1"])


def valid(scheme: str, host: str, port: str, path: str) -> bool:
    """Whether the parts make a URL that can be requested (the reference the check must meet)."""
    if scheme not in ("http://", "https://") or host in ("", "[::1", "::1]", "exa mple.com"):
        return False
    if " " in path:
        return False
    if port in ("", ":"):
        return True
    number = port[1:]
    return number.isdigit() and 1 <= int(number) <= 65535


@given(scheme=schemes, host=hosts, port=ports, path=paths)
def test_a_url_is_accepted_exactly_when_it_can_be_requested(
    scheme: str, host: str, port: str, path: str
) -> None:
    """Accepted URLs build a request with a usable port; every other one is a ValueError."""
    url = f"{scheme}{host}{port}{path}"
    if not valid(scheme, host, port, path):
        with pytest.raises(ValueError, match=r"."):
            check_http_url(url)
        return
    assert check_http_url(url) == url
    request = httpx.Request("POST", url.rstrip("/") + "/chat/completions")
    assert request.url.port is None or 1 <= request.url.port <= 65535


@given(text=st.text(max_size=60))
def test_any_text_is_accepted_unchanged_or_refused_with_a_value_error(text: str) -> None:
    """No other exception escapes, whatever the text."""
    try:
        checked = check_http_url(text)
    except ValueError:
        return
    assert checked == text
    assert text.startswith(("http://", "https://"))


def test_unset_is_fine() -> None:
    """No URL is no problem (a provider without a default endpoint)."""
    assert check_http_url(None) is None
