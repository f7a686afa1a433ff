"""Read settings once, at the entry point, and turn validation failures into one clear error."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from chatscope.config.ephemeral import EphemeralSettings
from chatscope.config.settings import Settings
from chatscope.errors import ConfigurationError, redact_secrets

__all__ = ["load_settings"]


def load_settings(env_file: Path | None = None, **overrides: Any) -> Settings:
    """Read environment variables and `env_file`; `overrides` (e.g. CLI flags) win over both."""
    if env_file is not None and not env_file.is_file():
        raise ConfigurationError(f"env file {str(env_file)!r} does not exist or is not a file")
    try:
        return Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem: the key (as setting and env variable), the value, what is allowed."""
    return "invalid configuration: " + "; ".join(_describe(error) for error in exc.errors())


def _describe(error: Mapping[str, Any]) -> str:
    path = [str(part) for part in error["loc"]]
    key = ".".join(_SEED_NAME_BY_FIELD.get(part, part) for part in path)
    env_name = "CHATSCOPE_" + "__".join(part.replace("-", "_").upper() for part in path)
    shown = _shown_input(error, path[-1] if path else "")
    return f"{key} (env {env_name}) = {shown}: {error['msg']}"


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
