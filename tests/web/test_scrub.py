"""What the web API shows of a failure never carries the caller's key, and a key too short to be
one does not blank its letters all over the message."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chatscope.errors import MIN_SCRUBBED_SECRET_CHARS
from chatscope.web.errors import scrub

_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", max_size=80)


@given(text=_words, secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=7))
def test_a_key_too_short_to_be_one_leaves_the_message_alone(text: str, secret: str) -> None:
    assert len(secret) < MIN_SCRUBBED_SECRET_CHARS
    assert scrub(text, secret) == text


@given(
    before=_words,
    after=_words,
    secret=st.text(alphabet="0123456789ABCDEF", min_size=MIN_SCRUBBED_SECRET_CHARS, max_size=40),
)
def test_a_key_in_the_message_is_never_shown(before: str, after: str, secret: str) -> None:
    shown = scrub(f"{before} {secret} {after}", secret)
    assert secret not in shown
    assert "[REDACTED]" in shown


def test_the_one_letter_key_of_the_bug_report() -> None:
    assert scrub("upstream said: invalid request", "a") == "upstream said: invalid request"
