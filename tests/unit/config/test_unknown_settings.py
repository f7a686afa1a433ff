"""A mistyped top-level setting is warned about, naming the setting it most likely meant.

It is a warning, not an error: `CHATSCOPE_*` is shared with variables that are no settings
(the test suite's, the server's, and any key variable a subagent profile names), which must
keep working and stay quiet.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from chatscope.config.settings import Settings
from chatscope.config.unknown import NOT_SETTINGS, unknown_setting_warnings
from tests.support.cli import cli_env, run_cli

SETTINGS = sorted(Settings.model_fields)
QUIET = {
    "CHATSCOPE_TEST_DATABASE_URL": "postgresql://postgres@/postgres",
    "CHATSCOPE_FIXTURES_DIR": "/somewhere/fixtures",
    "CHATSCOPE_SERVE_ENV_FILE": "serve.env",
    "CHATSCOPE_REVIEWER_API_KEY": "sk-ant-reviewer-0123456789",
    "CHATSCOPE_MUTATION_BUDGET": "240",
    "CHATSCOPE_MAX_TURNS": "3",
    "CHATSCOPE_HTTP__MAX_CONNECTIONS": "7",
}


async def test_a_top_level_typo_is_named_with_the_setting_it_meant(tmp_path: Path) -> None:
    """`CHATSCOPE_MAX_TRUNS` is not silently ignored: one warning line names MAX_TURNS."""
    env = cli_env(tmp_path / "data", CHATSCOPE_MAX_TRUNS="3")
    result = await run_cli("config", "show", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("chatscope: warning: CHATSCOPE_MAX_TRUNS ")
    assert "CHATSCOPE_MAX_TURNS" in line


async def test_a_typo_in_an_env_file_is_named_too(tmp_path: Path) -> None:
    """The `--env-file` is read for the same mistakes; its values are never shown."""
    (tmp_path / "my.env").write_text("CHATSCOPE_PROVIDER__OPENAI__API_KEY=sk-secret-0123456789\n")
    result = await run_cli(
        "config", "show", "--env-file", "my.env", cwd=tmp_path, env=cli_env(tmp_path / "data")
    )
    assert result.returncode == 0, result.stderr
    assert "CHATSCOPE_PROVIDERS__OPENAI__API_KEY" in result.stderr
    assert "sk-secret" not in result.stderr


async def test_variables_that_are_no_settings_stay_quiet(tmp_path: Path) -> None:
    """The suite's, the server's and a profile's key variable, and real settings: no warning."""
    result = await run_cli("config", "show", cwd=tmp_path, env=cli_env(tmp_path / "data", **QUIET))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def typos(name: str) -> st.SearchStrategy[str]:
    """`name` with two neighbouring letters swapped, one dropped or one doubled."""
    positions = st.integers(min_value=0, max_value=len(name) - 2)
    swapped = positions.map(lambda i: name[:i] + name[i + 1] + name[i] + name[i + 2 :])
    dropped = positions.map(lambda i: name[:i] + name[i + 1 :])
    doubled = positions.map(lambda i: name[: i + 1] + name[i:])
    return st.one_of(swapped, dropped, doubled)


@given(data=st.data(), name=st.sampled_from([n for n in SETTINGS if len(n) >= 5]))
def test_any_small_typo_of_a_setting_names_a_setting(data: st.DataObject, name: str) -> None:
    """A setting misspelt by one letter is reported, with a real setting as its suggestion."""
    typo = data.draw(typos(name).filter(lambda t: t not in SETTINGS and t not in NOT_SETTINGS))
    [warning] = unknown_setting_warnings({f"CHATSCOPE_{typo.upper()}": "1"})
    suggested = warning.rsplit("did you mean CHATSCOPE_", 1)[1].rstrip("?").lower()
    assert suggested in SETTINGS
    assert f"CHATSCOPE_{typo.upper()}" in warning


@given(
    names=st.lists(
        st.sampled_from(SETTINGS).map(lambda n: f"CHATSCOPE_{n.upper()}")
        | st.sampled_from(sorted(NOT_SETTINGS)).map(lambda n: f"CHATSCOPE_{n.upper()}")
        | st.from_regex(r"[A-Z][A-Z0-9_]{0,20}", fullmatch=True).filter(
            lambda n: not n.startswith("CHATSCOPE_")
        ),
        max_size=8,
    )
)
def test_settings_and_other_variables_never_warn(names: list[str]) -> None:
    """Real settings, chatscope's own other variables and anyone else's: nothing to say."""
    assert unknown_setting_warnings(dict.fromkeys(names, "1")) == ()
