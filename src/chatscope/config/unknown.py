"""`CHATSCOPE_*` variables that look like a mistyped setting: one warning each, naming it.

pydantic-settings refuses an unknown key inside a section (`CHATSCOPE_HTTP__CONECT_TIMEOUT`)
but silently ignores an unknown top-level name (`CHATSCOPE_MAX_TRUNS`), or a section spelt
wrong (`CHATSCOPE_PROVIDER__OPENAI__API_KEY`). These are warned about, not refused: the prefix
is shared with variables that are no settings, those chatscope reads itself
(`NOT_SETTINGS`: the server's env file, the test suite's database and recordings, the
mutation-testing budget) and any variable a subagent profile names as its `api_key_env` (the
example reviewer profile reads `CHATSCOPE_REVIEWER_API_KEY`), so refusing unknown names would
break working set-ups. Only a name close to a real setting (`difflib`) is reported, with the
setting it most likely meant.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import DotEnvSettingsSource

from chatscope.config.settings import Settings

__all__ = ["NOT_SETTINGS", "unknown_setting_warnings"]

NOT_SETTINGS = frozenset(
    {"serve_env_file", "test_database_url", "fixtures_dir", "mutation_since", "mutation_budget"}
)
"""`CHATSCOPE_<NAME>` variables chatscope, its server and its test suite read besides settings."""

_PREFIX = "chatscope_"
_DELIMITER = "__"
_CUTOFF = 0.75  # a transposed, dropped or doubled letter in names of 5 letters or more


def _is_section(info: FieldInfo) -> bool:
    """Whether a setting takes keys of its own (`CHATSCOPE_<NAME>__<KEY>`)."""
    annotation = info.annotation
    if typing.get_origin(annotation) is dict:
        return True
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


_SETTINGS = tuple(Settings.model_fields)
_SECTIONS = tuple(name for name, info in Settings.model_fields.items() if _is_section(info))


def unknown_setting_warnings(
    environ: Mapping[str, str], env_file: Path | None = None
) -> tuple[str, ...]:
    """One warning per `CHATSCOPE_*` variable of `environ` or `env_file` that names no setting
    but is close to one; each names the variable it most likely meant."""
    names = [*environ, *_env_file_names(env_file)]
    found = (_warning(name) for name in names)
    return tuple(dict.fromkeys(warning for warning in found if warning is not None))


def _env_file_names(env_file: Path | None) -> Iterable[str]:
    if env_file is None:
        return ()
    return DotEnvSettingsSource(Settings, env_file=env_file).env_vars


def _warning(name: str) -> str | None:
    lowered = name.lower()
    if not lowered.startswith(_PREFIX):
        return None
    head, nested, rest = lowered.removeprefix(_PREFIX).partition(_DELIMITER)
    if head in NOT_SETTINGS or head in _SECTIONS or (head in _SETTINGS and not nested):
        return None
    meant = _meant(head, nested, rest)
    if meant is None:
        return None
    suggestion = (_PREFIX + meant).upper()
    return f"{name.upper()} is not a chatscope setting and is ignored; did you mean {suggestion}?"


def _meant(head: str, nested: str, rest: str) -> str | None:
    """The setting (without the prefix) a mistyped name most likely meant, if any is close:
    a section with the same keys, or a plain setting (`LOG__FORMAT` for `LOG_FORMAT`)."""
    if nested:
        section = difflib.get_close_matches(head, _SECTIONS, n=1, cutoff=_CUTOFF)
        if section:
            return section[0] + nested + rest
        head = f"{head}_{rest}"
    setting = difflib.get_close_matches(head, _SETTINGS, n=1, cutoff=_CUTOFF)
    return setting[0] if setting else None
