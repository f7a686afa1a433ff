"""A subagent profile's `[fallback]` table: read, checked, and given to the subagent's scope."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chatscope.config.profiles import load_profile
from chatscope.errors import ProfileError
from chatscope.services.runtime.auth import AuthSpec
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.services.subagents.profile import SubagentProfile, SubAgentScope
from chatscope.testing import ScriptedProvider
from tests.support.profiles import write_profile
from tests.support.scopes import make_scope_factory

BACKUP = {
    "provider": "gemini",
    "model": "gemini-backup",
    "base_url": "http://127.0.0.1:9/v1beta",
    "api_key_env": "REVIEWER_BACKUP_KEY",
}


def _write(directory: Path, **fallback: Any) -> Path:
    return write_profile(
        directory,
        "reviewer",
        provider="openai",
        model="gpt-own",
        api_key_env="REVIEWER_KEY",
        fallback=fallback,
    )


def test_a_profiles_chain_starts_with_its_own_endpoint(tmp_path: Path) -> None:
    """The subagent's chain is the profile's own endpoint and key source, then its members,
    each with its own endpoint and key variable alone; the parent scope has no chain."""
    path = _write(tmp_path / "profiles", mode="round-robin", members=[BACKUP])
    profile = SubagentProfile.from_spec(load_profile(path).spec)
    adapters = [ScriptedProvider([], name=name) for name in ("openai", "gemini")]
    factory = make_scope_factory(
        *adapters, sink=RecordingSink(), workspace=tmp_path, provider="openai"
    )
    parent = factory.foreground()
    scope = SubAgentScope.create("reviewer", profile, parent, scopes=factory)
    fallback = scope.runtime_context.fallback
    assert parent.fallback is None
    assert fallback is not None
    assert fallback.chain.config.mode == "round-robin"
    own, backup = fallback.chain.members
    assert (own.provider, own.model, own.auth) == ("openai", "gpt-own", scope.runtime_context.auth)
    assert (backup.provider, backup.model, backup.base_url) == (
        "gemini",
        "gemini-backup",
        "http://127.0.0.1:9/v1beta",
    )
    assert backup.auth == AuthSpec("gemini", env_vars=("REVIEWER_BACKUP_KEY",))


@pytest.mark.parametrize(
    ("fallback", "key"),
    [
        ({"mode": "failover", "members": []}, "fallback"),
        ({"mode": "sideways", "members": [BACKUP]}, "fallback.mode"),
        (
            {"mode": "failover", "members": [{**BACKUP, "provider": "nope"}]},
            "fallback.members.0.provider",
        ),
        (
            {"mode": "failover", "members": [{**BACKUP, "api_key": "sk-x"}]},
            "fallback.members.0.api_key",
        ),
    ],
)
def test_a_broken_fallback_table_names_the_file_and_the_key(
    tmp_path: Path, fallback: dict[str, Any], key: str
) -> None:
    """Each problem is a `ProfileError` naming the key, never a key's value."""
    path = _write(tmp_path, **fallback)
    with pytest.raises(ProfileError) as raised:
        load_profile(path)
    assert raised.value.keys == (key,)
    assert "sk-x" not in str(raised.value)
