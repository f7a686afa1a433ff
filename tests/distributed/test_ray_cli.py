"""`chatscope task --json` with `CHATSCOPE_SUBAGENT_EXECUTOR=ray`, run as a real process."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_subagents_cli import _researcher, _run


def test_task_json_on_ray_says_where_the_subagent_ran(tmp_path: Path) -> None:
    """Without RAY_ADDRESS the command starts a local cluster, runs the subagent on a worker
    there (its own settings, from the environment) and prints executor "ray" and the node."""
    _researcher(tmp_path)
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    result = _run(
        tmp_path,
        "task",
        "researcher",
        "What is here?",
        "--json",
        CHATSCOPE_SUBAGENT_EXECUTOR="ray",
        CHATSCOPE_RAY__WORKERS="1",
        CHATSCOPE_RAY__NUM_CPUS="1",
        CHATSCOPE_WORKSPACE=str(tmp_path),
        RAY_ADDRESS="",
        RAY_ENABLE_UV_RUN_RUNTIME_ENV="0",
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["terminate_reason"] == "GOAL", document["error"]
    assert "notes.txt" in document["final_message"]
    assert document["executor"] == "ray"
    assert isinstance(document["node_id"], str)
    assert len(document["node_id"]) == 56
    assert document["parent_runtime_id"] not in (None, document["runtime_id"])
