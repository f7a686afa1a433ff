"""A path too long for the file system is a short tool error, never a bare `OSError`.

A model that sends a 4,000-character path must get one readable line back, not the file
system's error quoting the whole absolute path.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.adapters.tools.sandbox import Workspace
from chatscope.adapters.tools.workspace import build_workspace_tools
from chatscope.errors import ToolError
from chatscope.services.messages import ToolCallBlock
from chatscope.services.tools.registry import ToolPolicy, ToolRegistry

TOOL_NAMES = ("read_file", "list_directory", "glob", "search_file_content", "write_file")
SHORT_ERROR = 300  # characters: one line a person (or a model) reads at a glance


def arguments_for(name: str, path: str) -> dict[str, Any]:
    """Arguments of tool `name` that point it at `path`."""
    if name == "write_file":
        return {"path": path, "content": "x"}
    if name == "glob":
        return {"pattern": "*", "path": path}
    if name == "search_file_content":
        return {"pattern": "x", "path": path}
    return {"path": path}


LONG_PATHS = [
    "a" * 4000,  # one name far over NAME_MAX
    "/".join(["b" * 200] * 30),  # every name fits, the whole path does not
    "d/" + "c" * 300,  # under a directory that does not exist yet
]


@given(name=st.sampled_from(TOOL_NAMES), path=st.sampled_from(LONG_PATHS))
def test_a_path_too_long_is_a_short_tool_error(
    tmp_path_factory: pytest.TempPathFactory, name: str, path: str
) -> None:
    """Every workspace tool refuses each of them with a `ToolError` of one short line."""
    root = tmp_path_factory.mktemp("ws")
    [tool] = [t for t in build_workspace_tools(root) if t.declaration.name == name]
    with pytest.raises(ToolError) as caught:
        asyncio.run(tool.run(arguments_for(name, path)))
    message = str(caught.value)
    assert "too long" in message
    assert len(message) < SHORT_ERROR
    assert "\n" not in message
    assert str(root) not in message


@given(
    names=st.lists(
        st.builds(str.__mul__, st.sampled_from("xyz"), st.integers(1, 400)), min_size=1, max_size=25
    ),
    tool=st.sampled_from(TOOL_NAMES),
)
def test_any_path_gives_a_result_or_a_short_error(
    tmp_path_factory: pytest.TempPathFactory, names: list[str], tool: str
) -> None:
    """Run through a registry, any path, however long, ends in a result or a tool's own error
    (never the file system's, with the absolute path); one over the limits in a short line."""
    root = tmp_path_factory.mktemp("ws")
    registry = ToolRegistry(
        build_workspace_tools(root), policy=ToolPolicy(auto_approve=frozenset({"*"}))
    )
    path = "/".join(names)
    result = asyncio.run(registry.run(ToolCallBlock.create("c1", tool, arguments_for(tool, path))))
    error = result.error or ""
    assert "Errno" not in error
    assert str(root) not in error
    too_long = max(map(len, names)) > 255 or len(str(root / path)) >= 4096
    if too_long:
        assert "too long" in error
        assert len(error) < SHORT_ERROR


def test_resolve_refuses_a_name_over_the_limit(tmp_path: Path) -> None:
    """`Workspace.resolve` itself refuses, before any tool touches the file system."""
    with pytest.raises(ToolError, match="too long"):
        Workspace(tmp_path).resolve("n" * 1000)
