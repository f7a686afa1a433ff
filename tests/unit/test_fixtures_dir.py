"""A missing recorded-fixtures directory stops the suite with one clear error, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_missing_fixtures_directory_names_itself_and_how_to_set_it(tmp_path: Path) -> None:
    """Collecting tests that load recordings says which directory is missing and which
    variable points at it; no traceback, no bare `FileNotFoundError`."""
    missing = tmp_path / "no-fixtures-here"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["CHATSCOPE_FIXTURES_DIR"] = str(missing)
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "--collect-only", "-q",
            "-p", "no:randomly", "-p", "no:cacheprovider",
            "tests/adapters/test_openai_responses.py",
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert str(missing) in output
    assert "CHATSCOPE_FIXTURES_DIR" in output
    assert "Traceback" not in output
    assert "FileNotFoundError" not in output
