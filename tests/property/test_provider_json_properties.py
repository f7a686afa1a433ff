"""`parse_json`, the providers' JSON parser, is `json.loads`: same values, same errors, faster."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from chatscope.adapters.providers._http import parse_json

# Any character, lone surrogates included (`st.text()` leaves them out by default).
_characters = st.characters(codec=None, exclude_categories=())
_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()
    | st.text(_characters),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(_characters), inner),
    max_leaves=20,
)
# Pieces of JSON and near-JSON: what a broken or unusual payload is made of.
_words = ["true", "false", "null", "NaN", "Infinity", "\\u", "\\ud83d", "\\ude00", "\\n", "01"]
_characters_of_json = "{}[]:,\"' \\0123456789.eE+-\t\n\r\x0c\x00\x1f\u2028\ud800é😀"
_pieces = st.sampled_from([*_characters_of_json, *_words, "1e999"])


def _outcome(parse: Any, data: str | bytes) -> tuple[str, str]:
    """What parsing gave: the value's repr (NaN is not equal to itself), or the error."""
    try:
        return "value", repr(parse(data))
    except (ValueError, TypeError, RecursionError) as exc:
        return type(exc).__name__, str(exc)


@given(value=_values, ensure_ascii=st.booleans(), as_bytes=st.booleans())
def test_any_json_document_parses_to_what_json_gives(
    value: object, ensure_ascii: bool, as_bytes: bool
) -> None:
    """Every document `json.dumps` writes, as text or UTF-8 bytes, reads back as `json.loads`
    reads it; lone surrogates are escaped, or raw when not ASCII-only."""
    text = json.dumps(value, ensure_ascii=ensure_ascii)
    data: str | bytes = text.encode("utf-8", "surrogatepass") if as_bytes else text
    assert _outcome(parse_json, data) == _outcome(json.loads, data)


@given(text=st.lists(_pieces, max_size=24).map("".join))
def test_any_text_gives_json_s_value_or_json_s_error(text: str) -> None:
    """Valid or not, a payload gives exactly what `json.loads` gives: the same value, or the
    same exception with the same message (which a provider's protocol error quotes)."""
    assert _outcome(parse_json, text) == _outcome(json.loads, text)


def test_an_escaped_lone_surrogate_is_read_as_json_reads_it() -> None:
    """The case pydantic-core's parser refuses and `json` accepts."""
    assert parse_json('{"t": "a\\ud800b"}') == {"t": "a\ud800b"}
