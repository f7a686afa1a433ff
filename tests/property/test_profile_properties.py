"""Properties of profile files: TOML round trips, errors that name file and key, discovery."""

from __future__ import annotations

import re
import string
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from chatscope.config.profiles import load_profile, load_profiles
from chatscope.config.settings import PROVIDER_NAMES
from chatscope.errors import ProfileError
from chatscope.services.frozen import thaw
from chatscope.services.subagents.profile import SubagentProfile
from tests.support.profiles import write_profile

TOOLS = ("read_file", "list_directory", "glob", "search_file_content", "write_file")
NAME = r"[A-Za-z][A-Za-z0-9_.-]{0,63}"
ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"

names = st.from_regex(r"\A[A-Za-z][A-Za-z0-9_-]{0,15}\Z")
scalars = (
    st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | st.booleans()
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
ephemeral_overrides = st.fixed_dictionaries(
    {},
    optional={
        "compression-threshold": st.floats(0, 1),
        "compression-preserve-threshold": st.floats(0, 1),
        "context-limit": st.integers(1, 10**7),
        "compression-min-age": st.integers(0, 100),
        "maxOutputTokens": st.integers(1, 10**6),
        "tool-format-override": st.sampled_from(["openai", "anthropic", "hermes", "xml"]),
    },
)
optional_fields = {
    "description": st.text(max_size=30),
    "model_params": st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    "ephemeral_overrides": ephemeral_overrides,
    "system_prompt": st.text(max_size=60),
    "allowed_tools": st.lists(st.sampled_from((*TOOLS, "emit_value")), unique=True),
    "max_turns": st.integers(1, 200),
    "timeout_seconds": st.floats(0.001, 86_400),
    "base_url": st.sampled_from(["http://127.0.0.1:8080/v1", "https://api.example.invalid"]),
    "key_file": st.sampled_from(["/run/keys/a.key", "keys/b.key", "c.key"]),
    "api_key_env": st.from_regex(rf"\A{ENV_NAME}\Z"),
}
profiles = st.fixed_dictionaries(
    {
        "name": names,
        "provider": st.sampled_from(PROVIDER_NAMES),
        "model": st.text(min_size=1, max_size=20),
    },
    optional=optional_fields,
)


def _fresh_dir(tmp_path: Path) -> Path:
    """A new directory per hypothesis example, under the test's own tmp_path."""
    return tmp_path / uuid.uuid4().hex


@settings(max_examples=60)
@given(fields=profiles)
def test_every_valid_profile_round_trips_through_toml(
    tmp_path: Path, fields: dict[str, Any]
) -> None:
    """Written as TOML and loaded back, a profile keeps every value exactly."""
    directory = _fresh_dir(tmp_path)
    path = write_profile(directory, "p", **fields)
    spec = load_profile(path, tool_names=TOOLS).spec
    for key, value in fields.items():
        loaded = getattr(spec, key)
        if key == "allowed_tools":
            assert loaded == tuple(value)
        elif key == "key_file":
            assert loaded == (Path(value) if value.startswith("/") else directory / value)
        else:
            assert loaded == value, key


invalid_values: dict[str, st.SearchStrategy[Any]] = {
    "name": st.text(max_size=8).filter(lambda v: not re.fullmatch(NAME, v)),
    "provider": st.text(max_size=10).filter(lambda v: v not in PROVIDER_NAMES),
    "model": st.just("") | st.integers() | st.lists(st.text(max_size=2), max_size=2),
    "max_turns": st.integers(max_value=0) | st.integers(201, 2**40) | st.text(max_size=3),
    "timeout_seconds": st.floats(max_value=0) | st.floats(min_value=86_400.5, max_value=1e300),
    "base_url": st.text(max_size=10).filter(lambda v: not v.startswith(("http://", "https://"))),
    "api_key_env": st.text(min_size=1, max_size=8).filter(lambda v: not re.fullmatch(ENV_NAME, v)),
    "allowed_tools": st.lists(names.filter(lambda v: v not in TOOLS), min_size=1, max_size=3)
    | st.just(["task"]),
    "ephemeral_overrides": st.dictionaries(names, st.integers(), min_size=1, max_size=2)
    | st.fixed_dictionaries({"context-limit": st.integers(max_value=0)})
    | st.fixed_dictionaries({"compression-threshold": st.floats(1.01, 100)}),
    "system_prompt": st.integers() | st.lists(st.text(max_size=2), min_size=1, max_size=2),
    "model_params": st.integers() | st.text(max_size=4),
}


@settings(max_examples=80)
@given(fields=profiles, data=st.data())
def test_a_bad_value_is_reported_with_the_file_and_its_key(
    tmp_path: Path, fields: dict[str, Any], data: st.DataObject
) -> None:
    """Whichever key holds a bad value, the error names the file and that key."""
    key = data.draw(st.sampled_from(sorted(invalid_values)), label="key")
    bad = data.draw(invalid_values[key], label="value")
    path = write_profile(_fresh_dir(tmp_path), "p", **(fields | {key: bad}))
    with pytest.raises(ProfileError) as caught:
        load_profiles(path.parent, tool_names=TOOLS)
    assert key in caught.value.keys
    assert str(path) in str(caught.value)
    assert f"key {key!r}" in str(caught.value)


@given(fields=profiles, key=st.from_regex(r"\A[a-z][a-z_]{2,10}\Z"))
def test_an_unknown_key_is_named(tmp_path: Path, fields: dict[str, Any], key: str) -> None:
    """A key the format does not have (a typo) is refused by name, listing the known keys."""
    assume(key not in profiles_keys() and key != "api_key")
    path = write_profile(_fresh_dir(tmp_path), "p", **(fields | {key: "x"}))
    with pytest.raises(ProfileError, match=rf"key '{key}': unknown key; known keys: name,"):
        load_profile(path, tool_names=TOOLS)


def profiles_keys() -> set[str]:
    """Every key a profile may have."""
    return {"name", "provider", "model", *optional_fields}


@given(chosen=st.lists(st.sampled_from(["ann", "bob", "cy", "dee"]), min_size=1, max_size=5))
def test_names_must_be_unique_across_files(tmp_path: Path, chosen: list[str]) -> None:
    """A directory loads exactly when no two files declare the same name; else both are named."""
    directory = _fresh_dir(tmp_path)
    for index, name in enumerate(chosen):
        write_profile(directory, f"{index:02d}", name=name, provider="demo", model="m")
    if len(set(chosen)) == len(chosen):
        assert load_profiles(directory, tool_names=TOOLS).names() == tuple(chosen)
        return
    with pytest.raises(ProfileError) as caught:
        load_profiles(directory, tool_names=TOOLS)
    second = next(i for i, name in enumerate(chosen) if name in chosen[:i])
    first = chosen.index(chosen[second])
    assert caught.value.keys == ("name",)
    assert str(directory / f"{second:02d}.toml") in str(caught.value)
    assert str(directory / f"{first:02d}.toml") in str(caught.value)


@given(
    files=st.dictionaries(
        names, st.sampled_from([".toml", ".md", ".txt", ".toml.bak", ""]), min_size=1, max_size=6
    )
)
def test_only_toml_files_are_profiles_in_file_name_order(
    tmp_path: Path, files: dict[str, str]
) -> None:
    """Every `*.toml` file is a profile, nothing else is, and they come sorted by file name."""
    directory, staging = _fresh_dir(tmp_path), _fresh_dir(tmp_path)
    directory.mkdir()
    for index, (stem, suffix) in enumerate(files.items()):
        # Written beside the directory, so that no file name of the example is overwritten.
        write_profile(staging, f"f{index}", name=f"n{index}", provider="demo", model="m")
        (staging / f"f{index}.toml").rename(directory / f"{stem}{suffix}")
    catalog = load_profiles(directory, tool_names=TOOLS)
    expected = sorted(directory / f"{stem}{sfx}" for stem, sfx in files.items() if sfx == ".toml")
    assert [loaded.source for loaded in catalog] == expected


@given(stem=names, relative=st.lists(names, min_size=1, max_size=3))
def test_the_name_and_key_file_default_to_the_file_itself(
    tmp_path: Path, stem: str, relative: list[str]
) -> None:
    """Without `name` the file name is the name; a relative key file sits by the profile."""
    directory = _fresh_dir(tmp_path)
    path = write_profile(directory, stem, provider="demo", model="m", key_file="/".join(relative))
    spec = load_profile(path).spec
    assert spec.name == stem
    assert spec.key_file == directory.joinpath(*relative)


@given(fields=profiles)
def test_a_loaded_profile_becomes_the_same_frozen_service_profile(
    tmp_path: Path, fields: dict[str, Any]
) -> None:
    """`SubagentProfile.from_spec` and its scope request keep every value, frozen."""
    spec = load_profile(write_profile(_fresh_dir(tmp_path), "p", **fields), tool_names=TOOLS).spec
    profile = SubagentProfile.from_spec(spec)
    request = profile.scope_request(profile.name)
    assert (profile.name, profile.provider, profile.model) == (spec.name, spec.provider, spec.model)
    assert thaw(profile.model_params) == thaw(spec.model_params)
    assert thaw(request.ephemeral_overrides) == spec.ephemeral_overrides
    assert profile.allowed_tools == request.allowed_tools == spec.allowed_tools
    assert (profile.max_turns, profile.timeout_seconds) == (spec.max_turns, spec.timeout_seconds)
    assert (request.api_key_env, request.key_file) == (spec.api_key_env, spec.key_file)
    assert (request.base_url, request.system_prompt) == (spec.base_url, spec.system_prompt)
    assert request.subagent_name == spec.name
    hash(profile)


@given(
    secret=st.text(string.ascii_letters + string.digits, min_size=16, max_size=24).map(
        lambda tail: "sk-" + tail
    ),
    where=st.sampled_from(["api_key", "base_url", "unknown_key"]),
)
def test_profile_errors_never_echo_a_key(tmp_path: Path, secret: str, where: str) -> None:
    """A key put where it does not belong is refused without the error ever showing it."""
    placed = {
        "api_key": {"api_key": secret},
        "base_url": {"base_url": f"ftp://host/?key={secret}"},
        "unknown_key": {"openai_key": secret},
    }[where]
    path = write_profile(_fresh_dir(tmp_path), "p", name="p", provider="demo", model="m", **placed)
    with pytest.raises(ProfileError) as caught:
        load_profile(path, tool_names=TOOLS)
    assert secret[3:] not in str(caught.value)
    assert str(path) in str(caught.value)
