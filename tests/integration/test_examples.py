"""The runnable scripts under examples/ run as documented and print what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import cli_env

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(EXAMPLES / script)],
        cwd=cwd,
        env=cli_env(cwd / ".chatscope-data"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_function_tools_example_calls_the_typed_function(tmp_path: Path) -> None:
    """The function tool runs with validated arguments and its pydantic result comes back."""
    result = _run("function_tools.py", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "the model is offered: weather - Today's weather in a city." in result.stdout
    expected = '[weather] {"city":"Oslo","temperature":4.0,"units":"c","summary":"clear"}'
    assert expected in result.stdout


def test_container_tools_example_keeps_each_chats_list_apart(tmp_path: Path) -> None:
    """Two chats at once, each with a fresh tool from the declared Factory."""
    result = _run("container_tools.py", tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert 'chat 1: {"items": ["apples", "bread"], "added": 3.0, "total": 5.5}' in lines
    assert 'chat 2: {"items": ["tea"], "added": 4.25, "total": 4.25}' in lines


@pytest.mark.parametrize("script", sorted(path.name for path in EXAMPLES.glob("*.py")))
def test_every_example_has_a_docstring_saying_how_to_run_it(script: str) -> None:
    """Each example opens with what it shows and the command that runs it."""
    text = (EXAMPLES / script).read_text()
    assert text.startswith('"""')
    assert f"uv run python examples/{script}" in text
