"""Key files that cannot be used as keys: the error names the file and never its content."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.errors import ConfigurationError
from chatscope.services.runtime.auth import AuthResolver, AuthSpec

names = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=12)
# Bytes that can never start valid UTF-8 (continuation bytes and 0xF8-0xFF), then a marker.
invalid_utf8 = st.binary(min_size=1, max_size=8).map(lambda tail: b"\xff" + tail + b"Kq7MARK")


@given(name=names, content=invalid_utf8)
def test_a_non_utf8_key_file_error_names_the_file_not_the_bytes(
    tmp_path: Path, name: str, content: bytes
) -> None:
    """The refusal quotes the file's path and says why; the bytes never appear."""
    key_file = tmp_path / name
    key_file.write_bytes(content)
    with pytest.raises(ConfigurationError) as raised:
        AuthResolver({}).resolve(AuthSpec.for_provider("openai", key_file=key_file))
    assert str(raised.value) == f"cannot read key file {str(key_file)!r}: not UTF-8 text"
    assert "Kq7MARK" not in str(raised.value)
    assert raised.value.__suppress_context__ is True


@given(key=st.text(alphabet="äöüßéñ€" + string.ascii_letters, min_size=1, max_size=20))
def test_a_utf8_key_file_is_read_as_utf8_and_a_non_ascii_key_refused(
    tmp_path: Path, key: str
) -> None:
    """Key files are UTF-8 whatever the locale: an ASCII key comes back exactly; a non-ASCII
    one is decoded, then refused (no HTTP header can carry it), naming the file, not the key."""
    key_file = tmp_path / "key"
    key_file.write_bytes(key.encode("utf-8"))
    spec = AuthSpec.for_provider("openai", key_file=key_file)
    if key.isascii():
        assert AuthResolver({}).resolve(spec).secret() == key
        return
    with pytest.raises(ConfigurationError, match="non-ASCII") as raised:
        AuthResolver({}).resolve(spec)
    assert str(key_file) in str(raised.value)
    assert key not in str(raised.value)
