"""`load_settings` turns every way settings cannot be read into one `ConfigurationError` line."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.config.loading import load_settings
from chatscope.errors import ConfigurationError

SECTIONS = [
    "providers",
    "ephemeral",
    "http",
    "retry",
    "compression",
    "tools",
    "mcp_servers",
    "server",
]
not_json = st.text(alphabet="abcxyz{[:,'\\\" ", min_size=1, max_size=30).filter(
    lambda text: text.strip() and not text.strip().startswith(("{", "[", '"'))
)
secretish = st.text(alphabet="abcdefghijklmnop0123456789", min_size=10, max_size=20)


@given(section=st.sampled_from(SECTIONS), value=not_json, secret=secretish)
def test_a_section_that_is_not_json_names_its_variable_and_hides_its_value(
    section: str, value: str, secret: str
) -> None:
    """`CHATSCOPE_HTTP=notjson` and the like: the variable and what it takes, not the value
    (it may hold a key)."""
    variable = f"CHATSCOPE_{section.upper()}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHATSCOPE_")}
    with (
        mock.patch.dict(os.environ, clean | {variable: value + secret}, clear=True),
        pytest.raises(ConfigurationError) as raised,
    ):
        load_settings()
    message = str(raised.value)
    assert variable in message
    assert "not valid JSON" in message
    assert secret not in message
    assert "\n" not in message


@given(
    data=st.binary(min_size=1, max_size=40).filter(lambda raw: not _is_utf8(raw)),
)
def test_an_env_file_that_is_not_utf8_is_one_clear_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    """Whatever bytes make the file undecodable, the error names the file."""
    env_file = tmp_path_factory.mktemp("env") / "settings.env"
    env_file.write_bytes(b"CHATSCOPE_MODEL=" + data + b"\n")
    with pytest.raises(ConfigurationError, match="is not UTF-8 text") as raised:
        load_settings(env_file)
    assert str(env_file) in str(raised.value)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_a_readable_env_file_still_loads(tmp_path: Path) -> None:
    """The checks refuse nothing that loads: a UTF-8 file with a valid section is read."""
    env_file = tmp_path / "ok.env"
    env_file.write_text('CHATSCOPE_HTTP={"max_connections": 7}\nCHATSCOPE_MODEL=caf\u00e9\n')
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHATSCOPE_")}
    with mock.patch.dict(os.environ, clean, clear=True):
        settings = load_settings(env_file)
    assert (settings.http.max_connections, settings.model) == (7, "caf\u00e9")
