"""Read settings once, at the entry point, and turn every failure into one clear error."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from chatscope.config.ephemeral import EphemeralSettings
from chatscope.config.settings import Settings
from chatscope.errors import ConfigurationError, redact_secrets

__all__ = ["describe_settings_error", "describe_validation_error", "load_settings"]


def load_settings(env_file: Path | None = None, **overrides: Any) -> Settings:
    """Read environment variables and `env_file`; `overrides` (e.g. CLI flags) win over both.

    Any failure (a value out of range, a section that is not JSON, an env file that is not
    UTF-8) is a `ConfigurationError` of one line, naming the setting and never a secret.
    """
    if env_file is not None and not env_file.is_file():
        raise ConfigurationError(f"env file {str(env_file)!r} does not exist or is not a file")
    try:
        return Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc)) from None
    except SettingsError as exc:
        raise ConfigurationError(describe_settings_error(exc)) from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"env file {str(env_file)!r} is not UTF-8 text") from None


_SETTINGS_ERROR = re.compile(r'field "(?P<field>[^"]+)" from source "(?P<source>[^"]+)"')


def describe_settings_error(exc: SettingsError) -> str:
    """The one line for a setting pydantic-settings could not parse: a section (a JSON
    object) whose value is not JSON. The value is not shown: it may hold a key."""
    match = _SETTINGS_ERROR.search(str(exc))
    if match is None:
        return f"invalid configuration: {redact_secrets(str(exc))}"
    name = match["field"]
    variable = "CHATSCOPE_" + name.replace("-", "_").upper()
    where = "env file" if match["source"].startswith("DotEnv") else "environment"
    # A JSON parse error says where it failed, never what the value was.
    reason = f" ({exc.__cause__})" if isinstance(exc.__cause__, json.JSONDecodeError) else ""
    return (
        f"invalid configuration: {name} (env {variable}, from the {where}) is not valid "
        f"JSON{reason}; give the section as a JSON object, or set its keys one by one as "
        f"{variable}__<KEY>"
    )


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem: the key (as setting and env variable), the value, what is allowed."""
    return "invalid configuration: " + "; ".join(_describe(error) for error in exc.errors())


def _describe(error: Mapping[str, Any]) -> str:
    path = [str(part) for part in error["loc"]]
    key = ".".join(_SEED_NAME_BY_FIELD.get(part, part) for part in path)
    env_name = "CHATSCOPE_" + "__".join(
        part.replace("-", "_").upper() for part in _variable_path(path)
    )
    shown = _shown_input(error, path[-1] if path else "")
    return f"{key} (env {env_name}) = {shown}: {error['msg']}"


def _variable_path(path: list[str]) -> list[str]:
    """The keys of the variable that holds the value: a list item (`fallback.members.0.model`)
    lives in the JSON of its list's variable (`CHATSCOPE_FALLBACK__MEMBERS`)."""
    index = next((i for i, part in enumerate(path) if part.isdigit()), len(path))
    return path[:index]


def _shown_input(error: Mapping[str, Any], name: str) -> str:
    """The offending value as it may be shown: never a secret, never an unknown key's value.

    A value under an unknown key is hidden whole: it is often a key variable with a typo.
    """
    if error.get("type") == "extra_forbidden":
        return "[hidden]"
    return redact_secrets(_redacted_input(name, error.get("input")))


def _redacted_input(name: str, value: object) -> str:
    if name in _SECRET_FIELDS:
        return "[REDACTED]"
    if isinstance(value, Mapping):
        inner = ", ".join(
            f"{key!r}: {_redacted_input(str(key), item)}" for key, item in value.items()
        )
        return "{" + inner + "}"
    return repr(value)


_SECRET_FIELDS = frozenset({"api_key", "api_keys", "token"})
_SEED_NAME_BY_FIELD = MappingProxyType(
    {name: str(info.alias) for name, info in EphemeralSettings.model_fields.items()}
)
