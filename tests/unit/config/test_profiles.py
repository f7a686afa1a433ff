"""Subagent profile files: loading, defaults, and errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chatscope.config.profiles import (
    DEFAULT_PROFILES_DIR,
    load_profile,
    load_profiles,
    load_profiles_for,
)
from chatscope.config.settings import ExplicitSettings
from chatscope.errors import ConfigurationError, ProfileError
from tests.support.profiles import write_profile

TOOLS = ("read_file", "list_directory", "glob", "search_file_content", "write_file")
REPO_PROFILES = Path(__file__).resolve().parents[3] / "config" / "profiles"


def _valid(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"name": "helper", "provider": "demo", "model": "m"}
    return fields | overrides


def test_a_full_profile_loads_with_every_field(tmp_path: Path) -> None:
    """Every documented key is read into the spec; the source file is recorded."""
    path = write_profile(
        tmp_path,
        "helper",
        **_valid(
            description="does things",
            provider="anthropic",
            model="claude-x",
            system_prompt="be brief",
            allowed_tools=["read_file", "glob"],
            max_turns=3,
            timeout_seconds=12.5,
            base_url="http://127.0.0.1:9/v1",
            api_key_env="HELPER_KEY",
            model_params={"temperature": 0.1, "stop": ["x"]},
            ephemeral_overrides={"context-limit": 9000, "tool-format-override": "hermes"},
        ),
    )
    loaded = load_profile(path, tool_names=TOOLS)
    spec = loaded.spec
    assert loaded.source == path
    assert (spec.name, spec.provider, spec.model) == ("helper", "anthropic", "claude-x")
    assert spec.allowed_tools == ("read_file", "glob")
    assert (spec.max_turns, spec.timeout_seconds) == (3, 12.5)
    assert spec.model_params == {"temperature": 0.1, "stop": ["x"]}
    assert spec.ephemeral_overrides == {"context-limit": 9000, "tool-format-override": "hermes"}
    assert spec.api_key_env == "HELPER_KEY"


def test_defaults_are_least_privilege_and_name_is_the_file_name(tmp_path: Path) -> None:
    """Without `name` the file name is used; without `allowed_tools` no workspace tool is."""
    path = write_profile(tmp_path, "scout", provider="demo", model="m")
    spec = load_profile(path, tool_names=TOOLS).spec
    assert spec.name == "scout"
    assert spec.allowed_tools == ()
    assert (spec.max_turns, spec.timeout_seconds) == (10, 300.0)


@pytest.mark.parametrize(
    ("fields", "key", "words"),
    [
        (_valid(provider="nope"), "provider", "unknown provider 'nope'"),
        (_valid(allowed_tools=["rm_rf"]), "allowed_tools", "unknown tools ['rm_rf']"),
        (_valid(allowed_tools=["task"]), "allowed_tools", "start no subagents"),
        (_valid(ephemeral_overrides={"speed": 1}), "ephemeral_overrides", "unknown ephemeral"),
        (_valid(modle="typo"), "modle", "unknown key"),
        ({"name": "x", "provider": "demo"}, "model", "Field required"),
        (_valid(api_key="sk-live-abcdefgh12345678"), "api_key", "never holds a key"),
    ],
)
def test_every_problem_names_the_file_and_the_key(
    tmp_path: Path, fields: dict[str, Any], key: str, words: str
) -> None:
    """Each invalid profile raises `ProfileError` naming the file, the key and the problem."""
    path = write_profile(tmp_path, "bad", **fields)
    with pytest.raises(ProfileError) as caught:
        load_profiles(tmp_path, tool_names=TOOLS)
    error = caught.value
    assert isinstance(error, ConfigurationError)
    assert key in error.keys
    assert str(path) in str(error)
    assert f"key {key!r}" in str(error)
    assert words in str(error)
    assert "abcdefgh12345678" not in str(error)


def test_several_problems_are_reported_together(tmp_path: Path) -> None:
    """A file with two bad keys names both, in one error."""
    write_profile(tmp_path, "bad", **_valid(max_turns=0, provider="nope"))
    with pytest.raises(ProfileError) as caught:
        load_profiles(tmp_path, tool_names=TOOLS)
    assert set(caught.value.keys) == {"max_turns", "provider"}


def test_invalid_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    """A syntax error is reported with the file and TOML's own line and column."""
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\nprovider = \n', encoding="utf-8")
    with pytest.raises(ProfileError, match=r"broken\.toml: not valid TOML: .*line 2"):
        load_profiles(tmp_path, tool_names=TOOLS)


def test_duplicate_names_name_both_files(tmp_path: Path) -> None:
    """Two files declaring the same subagent name are refused, naming both files."""
    write_profile(tmp_path, "a", **_valid(name="same"))
    second = write_profile(tmp_path, "b", **_valid(name="same"))
    with pytest.raises(ProfileError) as caught:
        load_profiles(tmp_path, tool_names=TOOLS)
    assert caught.value.keys == ("name",)
    assert str(second) in str(caught.value)
    assert str(tmp_path / "a.toml") in str(caught.value)


def test_directory_rules(tmp_path: Path) -> None:
    """The default directory may be missing (no subagents); a configured one must exist."""
    defaults = ExplicitSettings(workspace=tmp_path)
    catalog = load_profiles_for(defaults, TOOLS)
    assert catalog.directory == tmp_path / DEFAULT_PROFILES_DIR
    assert len(catalog) == 0
    configured = ExplicitSettings(workspace=tmp_path, profiles_dir=tmp_path / "missing")
    with pytest.raises(ProfileError, match="missing: the profiles directory does not exist"):
        load_profiles_for(configured, TOOLS)


def test_the_shipped_example_profiles_load(tmp_path: Path) -> None:
    """`config/profiles/` of the repository holds valid profiles, one of them offline."""
    catalog = load_profiles(REPO_PROFILES, tool_names=TOOLS, must_exist=True)
    providers = {loaded.spec.name: loaded.spec.provider for loaded in catalog}
    assert providers["researcher"] == "demo"
    assert any(provider != "demo" for provider in providers.values())
