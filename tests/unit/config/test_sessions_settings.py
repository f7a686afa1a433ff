"""Where sessions are kept: data directory, database URL (a secret), and the history backend."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from chatscope.adapters.storage.engine import (
    SQLITE_FILE_NAME,
    open_database,
    resolve_database_url,
)
from chatscope.cli.commands import show_config
from chatscope.config.loading import load_settings
from chatscope.config.settings import ExplicitSettings
from chatscope.errors import ConfigurationError
from chatscope.testing import build_test_app


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No chatscope variables set, and the platform data home inside `tmp_path`."""
    for name in ("CHATSCOPE_DATA_DIR", "CHATSCOPE_DATABASE_URL", "CHATSCOPE_HISTORY_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_sessions_are_saved_by_default_in_the_platform_data_dir(clean_env: Path) -> None:
    """From the environment: the database backend, in the user data directory; nothing created."""
    settings = load_settings()
    assert settings.history_backend == "database"
    assert settings.data_dir == clean_env / "xdg" / "chatscope"
    assert settings.database_url is None
    assert not (clean_env / "xdg").exists()
    url = resolve_database_url(data_dir=settings.data_dir, database_url=settings.database_url)
    assert (url.drivername, url.database) == (
        "sqlite+pysqlite",
        str(clean_env / "xdg" / "chatscope" / SQLITE_FILE_NAME),
    )


def test_data_dir_database_url_and_backend_come_from_the_environment(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`CHATSCOPE_DATA_DIR`, `CHATSCOPE_DATABASE_URL` and `CHATSCOPE_HISTORY_BACKEND` are read."""
    monkeypatch.setenv("CHATSCOPE_DATA_DIR", str(clean_env / "elsewhere"))
    monkeypatch.setenv("CHATSCOPE_DATABASE_URL", "postgresql://u:pw-123456@db/chat")
    monkeypatch.setenv("CHATSCOPE_HISTORY_BACKEND", "memory")
    settings = load_settings()
    assert settings.data_dir == clean_env / "elsewhere"
    assert isinstance(settings.database_url, SecretStr)
    assert settings.database_url.get_secret_value() == "postgresql://u:pw-123456@db/chat"
    assert settings.history_backend == "memory"


def test_an_unknown_backend_is_a_configuration_error(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only `memory` and `database` are backends; the error names the variable."""
    monkeypatch.setenv("CHATSCOPE_HISTORY_BACKEND", "redis")
    with pytest.raises(ConfigurationError, match="CHATSCOPE_HISTORY_BACKEND"):
        load_settings()


def test_explicit_settings_and_test_apps_keep_history_in_memory(tmp_path: Path) -> None:
    """Settings passed in by code, and `build_test_app`, never write to disk unless asked."""
    assert ExplicitSettings().history_backend == "memory"
    assert build_test_app(workspace=tmp_path).settings().history_backend == "memory"
    app = build_test_app(workspace=tmp_path, history_backend="database", data_dir=tmp_path)
    assert app.settings().history_backend == "database"


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12)
DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+pysqlite",
    "sqlite+aiosqlite": "sqlite+pysqlite",
    "sqlite+pysqlite": "sqlite+pysqlite",
}


@given(scheme=st.sampled_from(sorted(DRIVERS)), user=names, host=names, database=names)
def test_a_url_gets_chatscopes_driver_and_keeps_everything_else(
    scheme: str, user: str, host: str, database: str
) -> None:
    """Plain `postgresql://` / `postgres://` URLs use asyncpg, SQLite URLs (an aiosqlite one
    too) the synchronous pysqlite; nothing but the driver changes."""
    configured = SecretStr(f"{scheme}://{user}@{host}/{database}")
    url = resolve_database_url(data_dir=Path("/unused"), database_url=configured)
    assert url.drivername == DRIVERS[scheme]
    assert (url.username, url.host, url.database) == (user, host, database)


@given(parts=st.lists(names, min_size=1, max_size=4))
def test_without_a_url_sessions_live_in_sqlite_in_the_data_dir(parts: list[str]) -> None:
    """The default database is `chatscope.db` directly inside whatever `data_dir` says."""
    data_dir = Path("/", *parts)
    url = resolve_database_url(data_dir=data_dir, database_url=None)
    assert url.drivername == "sqlite+pysqlite"
    assert Path(str(url.database)) == data_dir / SQLITE_FILE_NAME


# A fixed prefix keeps a generated password from matching ordinary output by chance.
passwords = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=6, max_size=24).map(
    lambda text: f"Pw9{text}"
)


@given(password=passwords)
def test_the_database_url_never_prints(password: str) -> None:
    """The URL's password shows in no repr, string, dump or `config show` output."""
    settings = ExplicitSettings(database_url=f"postgresql://chat:{password}@db.internal/chat")
    out = io.StringIO()
    show_config(settings, out)
    shown = [repr(settings), str(settings), settings.model_dump_json(), out.getvalue()]
    assert all(password not in text for text in shown)
    assert json.loads(out.getvalue())["database_url"] == "**********"


@given(password=passwords, scheme=st.sampled_from(["nosuch", "mysql+nodriver", "oracle+nope"]))
def test_an_unusable_url_error_hides_its_password(password: str, scheme: str) -> None:
    """Refusing a URL whose driver is missing never repeats its password."""
    url = SecretStr(f"{scheme}://chat:{password}@db.internal/chat")
    with pytest.raises(ConfigurationError) as caught:
        open_database(data_dir=Path("/unused"), database_url=url)
    assert password not in str(caught.value)
    assert "db.internal" in str(caught.value)
