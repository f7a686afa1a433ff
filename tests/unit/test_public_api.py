"""The public surface: a sorted `__all__` whose every name resolves, and nothing import-time."""

from __future__ import annotations

import importlib
import subprocess
import sys

import chatscope


def test_all_is_sorted_and_every_name_resolves() -> None:
    """`chatscope.__all__` is sorted (case-sensitively) and each name is an attribute."""
    assert chatscope.__all__ == sorted(chatscope.__all__)
    assert all(hasattr(chatscope, name) for name in chatscope.__all__)


def test_public_names_are_the_documented_entry_points() -> None:
    """The names a user needs to build and run a chat are all exported."""
    needed = {"ApplicationContainer", "ChatSession", "ScopeRequest", "load_settings"}
    assert needed <= set(chatscope.__all__)
    assert chatscope.ChatSession is importlib.import_module("chatscope.services.chat").ChatSession


def test_importing_reads_no_settings_and_configures_nothing() -> None:
    """Importing chatscope with a broken configuration in the environment still succeeds."""
    code = "import chatscope, structlog; print(structlog.is_configured())"
    env = {"CHATSCOPE_EPHEMERAL__CONTEXT_LIMIT": "-1", "PATH": ""}
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
