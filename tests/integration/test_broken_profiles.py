"""A broken subagent profile file is reported where profiles are used or listed, and only there.

A plain chat does not need the profiles: it runs, without the `task` tool that would need
them. `subagents list` and `chatscope task` name the broken file in one error line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.errors import ProfileError
from chatscope.testing.harness import build_test_app
from tests.support.cli import cli_env, run_cli
from tests.support.profiles import write_profile

BROKEN_PROFILES = [
    "provider = 42\n",  # wrong type, required model missing
    "name = [unclosed\n",  # not TOML
    'provider = "demo"\nmodel = "m"\nallowed_tools = ["no_such_tool"]\n',
    'provider = "demo"\nmodel = "m"\napi_key = "sk-in-a-profile-0123456789"\n',
]


def workspace_with(tmp_path: Path, broken: str) -> Path:
    """A workspace whose default profiles directory holds one good and one broken profile."""
    profiles = tmp_path / "config" / "profiles"
    write_profile(profiles, "scout", provider="demo", model="chatscope-demo")
    (profiles / "broken.toml").write_text(broken, encoding="utf-8")
    return tmp_path


async def test_a_plain_chat_runs_despite_a_broken_profile(tmp_path: Path) -> None:
    """`chatscope chat` answers, and says nothing of profiles it did not use."""
    cwd = workspace_with(tmp_path, BROKEN_PROFILES[0])
    result = await run_cli("chat", "hi", cwd=cwd, env=cli_env(tmp_path / "data"))
    assert result.returncode == 0, result.stderr
    assert "[offline demo provider" in result.stdout
    assert "profile" not in result.stderr


@pytest.mark.parametrize("command", [("subagents", "list"), ("task", "scout", "look around")])
async def test_using_or_listing_profiles_reports_the_broken_file(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """`subagents list` and `task` fail with one line naming the broken file."""
    cwd = workspace_with(tmp_path, BROKEN_PROFILES[0])
    result = await run_cli(*command, cwd=cwd, env=cli_env(tmp_path / "data"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("chatscope: error:")]
    assert "broken.toml" in line


@given(broken=st.sampled_from(BROKEN_PROFILES))
def test_any_broken_profile_leaves_chat_scopes_usable(
    tmp_path_factory: pytest.TempPathFactory, broken: str
) -> None:
    """Whatever is wrong with a profile, a chat scope is built (without `task`), while the
    profiles themselves still refuse to load."""
    workspace = workspace_with(tmp_path_factory.mktemp("ws"), broken)
    app = build_test_app(workspace=workspace)
    context = app.runtime.scopes().foreground()
    assert "task" not in context.tools.names()
    assert "list_directory" in context.tools.names()
    with pytest.raises(ProfileError, match=r"broken\.toml"):
        app.subagent_profiles()


def test_good_profiles_still_give_a_chat_the_task_tool(tmp_path: Path) -> None:
    """With every profile valid, a chat scope gets `task` as before."""
    write_profile(tmp_path / "config" / "profiles", "scout", provider="demo", model="m")
    context = build_test_app(workspace=tmp_path).runtime.scopes().foreground()
    assert "task" in context.tools.names()
