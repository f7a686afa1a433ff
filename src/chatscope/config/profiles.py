"""Subagent profiles: one TOML file per subagent, validated when loaded.

A profile names the subagent's provider, model, model params, ephemeral overrides (seed names),
system prompt, allowed tools, the MCP servers it may use (`mcp_servers`, all when unset) and
limits. A profile never holds an API key: it names an environment variable (`api_key_env`) or a
key file (`key_file`, relative to the profile's own directory), and the key is resolved for each
call like any other. `output_schema` asks the subagent for a typed answer: a JSON schema given
inline (a table) or as a JSON file (a path relative to the profile's directory), read and
checked when the profile is loaded. A `[fallback]` table (`mode`, `members`, as the settings'
`fallback` section) gives the subagent a chain: its own endpoint first, then the members.
Every problem found is reported as a `ProfileError` naming the file, the key and what is wrong.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from chatscope.config.ephemeral import EPHEMERAL_SETTING_NAMES, EphemeralSettings
from chatscope.config.settings import PROVIDER_NAMES, FallbackSettings, Settings
from chatscope.config.urls import check_http_url
from chatscope.errors import ProfileError, redact_secrets

__all__ = [
    "DEFAULT_PROFILES_DIR",
    "SUBAGENT_ONLY_TOOLS",
    "LoadedProfile",
    "ProfileCatalog",
    "ProfileSpec",
    "json_schema_problem",
    "load_profile",
    "load_profiles",
    "load_profiles_for",
    "profiles_directory",
]

DEFAULT_PROFILES_DIR = Path("config") / "profiles"
SUBAGENT_ONLY_TOOLS: tuple[str, ...] = ("emit_value",)
"""Tools every subagent scope has besides the workspace tools its profile allows."""

_FOREGROUND_ONLY_TOOLS = frozenset({"task"})
_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
_ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class ProfileSpec(BaseModel):
    """The validated content of one profile file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_NAME_PATTERN)
    description: str = ""
    provider: str
    model: str = Field(min_length=1)
    model_params: dict[str, JsonValue] = Field(default_factory=dict)
    ephemeral_overrides: dict[str, JsonValue] = Field(default_factory=dict)
    system_prompt: str | None = None
    allowed_tools: tuple[str, ...] = ()
    max_turns: int = Field(10, ge=1, le=200)
    timeout_seconds: float = Field(300.0, gt=0, le=86_400)
    base_url: str | None = None
    key_file: Path | None = None
    api_key_env: str | None = Field(None, pattern=_ENV_NAME_PATTERN)
    output_schema: Path | dict[str, JsonValue] | None = None
    mcp_servers: tuple[str, ...] | None = None
    fallback: FallbackSettings | None = None

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value not in PROVIDER_NAMES:
            raise ValueError(f"unknown provider {value!r}; known: {', '.join(PROVIDER_NAMES)}")
        return value

    @field_validator("ephemeral_overrides")
    @classmethod
    def _valid_ephemerals(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        unknown = sorted(set(value) - set(EPHEMERAL_SETTING_NAMES))
        if unknown:
            known = ", ".join(EPHEMERAL_SETTING_NAMES)
            raise ValueError(f"unknown ephemeral settings {unknown}; known: {known}")
        try:
            EphemeralSettings().with_overrides(value)
        except ValidationError as exc:
            raise ValueError(_ephemeral_problems(exc)) from None
        return value

    @field_validator("allowed_tools")
    @classmethod
    def _known_tools(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if _FOREGROUND_ONLY_TOOLS & set(value):
            raise ValueError("'task' is not available to a subagent: subagents start no subagents")
        known = (info.context or {}).get("tool_names")
        if known is not None:
            unknown = sorted(set(value) - set(known) - set(SUBAGENT_ONLY_TOOLS))
            if unknown:
                available = ", ".join((*known, *SUBAGENT_ONLY_TOOLS))
                raise ValueError(f"unknown tools {unknown}; available: {available}")
        return value

    @field_validator("output_schema")
    @classmethod
    def _valid_json_schema(
        cls, value: Path | dict[str, JsonValue] | None
    ) -> Path | dict[str, JsonValue] | None:
        if isinstance(value, dict):
            problem = json_schema_problem(value)
            if problem is not None:
                raise ValueError(problem)
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, value: str | None) -> str | None:
        return check_http_url(value)


def json_schema_problem(schema: Mapping[str, Any]) -> str | None:
    """What makes `schema` no valid JSON schema (of the draft its `$schema` names), or None."""
    try:
        jsonschema.validators.validator_for(schema).check_schema(dict(schema))
    except jsonschema.SchemaError as exc:
        return f"not a valid JSON schema: {exc.message}"
    return None


def _ephemeral_problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )


@dataclass(frozen=True, slots=True)
class LoadedProfile:
    """A profile and the file it came from."""

    spec: ProfileSpec
    source: Path


@dataclass(frozen=True, slots=True)
class ProfileCatalog:
    """The profiles of one directory, by name, in file-name order."""

    directory: Path
    profiles: tuple[LoadedProfile, ...] = ()

    def __iter__(self) -> Iterator[LoadedProfile]:
        return iter(self.profiles)

    def __len__(self) -> int:
        return len(self.profiles)

    def names(self) -> tuple[str, ...]:
        """Every subagent name."""
        return tuple(loaded.spec.name for loaded in self.profiles)

    def get(self, name: str) -> LoadedProfile | None:
        """The profile called `name`, if there is one."""
        return next((loaded for loaded in self.profiles if loaded.spec.name == name), None)


def profiles_directory(settings: Settings) -> Path:
    """Where the profiles of `settings` live: `profiles_dir`, else the workspace's default."""
    if settings.profiles_dir is not None:
        return settings.profiles_dir
    return settings.workspace / DEFAULT_PROFILES_DIR


def load_profiles_for(settings: Settings, tool_names: Iterable[str]) -> ProfileCatalog:
    """The profiles of `settings`; an explicitly configured directory must exist."""
    return load_profiles(
        profiles_directory(settings),
        tool_names=tool_names,
        must_exist=settings.profiles_dir is not None,
    )


def load_profiles(
    directory: Path, *, tool_names: Iterable[str], must_exist: bool = False
) -> ProfileCatalog:
    """Load and validate every `*.toml` file of `directory`; names must be unique.

    `tool_names` are the workspace tools a profile may allow. A missing directory is an empty
    catalog unless `must_exist`.
    """
    if not directory.is_dir():
        if must_exist:
            problem = "the profiles directory does not exist or is not a directory"
            raise ProfileError(str(directory), [(None, problem)])
        return ProfileCatalog(directory)
    known = tuple(tool_names)
    loaded: list[LoadedProfile] = []
    for path in sorted(directory.glob("*.toml")):
        if path.is_file():
            profile = load_profile(path, tool_names=known)
            _check_unique(profile, loaded)
            loaded.append(profile)
    return ProfileCatalog(directory, tuple(loaded))


def _check_unique(profile: LoadedProfile, earlier: list[LoadedProfile]) -> None:
    for other in earlier:
        if other.spec.name == profile.spec.name:
            problem = f"subagent name {profile.spec.name!r} is already used by {other.source}"
            raise ProfileError(str(profile.source), [("name", problem)])


def load_profile(path: Path, *, tool_names: Iterable[str] | None = None) -> LoadedProfile:
    """Read and validate one profile file; its name defaults to the file name without `.toml`."""
    data = _read_toml(path)
    if "api_key" in data:
        problem = (
            "a profile never holds a key; name an environment variable with api_key_env "
            "or a file with key_file"
        )
        raise ProfileError(str(path), [("api_key", problem)])
    data.setdefault("name", path.stem)
    context = {"tool_names": tuple(tool_names)} if tool_names is not None else None
    try:
        spec = ProfileSpec.model_validate(data, context=context)
    except ValidationError as exc:
        raise ProfileError(str(path), _problems(exc)) from None
    spec = _with_output_schema_read(_with_key_file_resolved(spec, path.parent), path)
    return LoadedProfile(spec, path)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except OSError as exc:
        raise ProfileError(str(path), [(None, f"cannot read the file: {exc.strerror}")]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(str(path), [(None, f"not valid TOML: {exc}")]) from None


def _problems(exc: ValidationError) -> list[tuple[str | None, str]]:
    return [
        (".".join(str(part) for part in error["loc"]) or None, _message(error))
        for error in exc.errors()
    ]


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return f"unknown key; known keys: {', '.join(ProfileSpec.model_fields)}"
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    shown = redact_secrets(repr(value))
    if isinstance(value, str | int | float | bool) and shown not in message:
        message += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
    return message


def _with_output_schema_read(spec: ProfileSpec, path: Path) -> ProfileSpec:
    """The spec with an `output_schema` file (relative to the profile's directory) read in."""
    if not isinstance(spec.output_schema, Path):
        return spec
    schema_file = spec.output_schema.expanduser()
    schema_file = schema_file if schema_file.is_absolute() else path.parent / schema_file
    try:
        schema = json.loads(schema_file.read_text(encoding="utf-8"))
    except OSError as exc:
        schema, problem = None, f"cannot read {schema_file}: {exc.strerror}"
    except ValueError as exc:
        schema, problem = None, f"{schema_file} is not JSON: {exc}"
    else:
        problem = f"{schema_file} is not a JSON object"
    if isinstance(schema, dict):
        found = json_schema_problem(schema)
        if found is None:
            return spec.model_copy(update={"output_schema": schema})
        problem = f"{schema_file}: {found}"
    raise ProfileError(str(path), [("output_schema", problem)])


def _with_key_file_resolved(spec: ProfileSpec, base: Path) -> ProfileSpec:
    key_file = spec.key_file
    if key_file is None or key_file.expanduser().is_absolute():
        return spec
    return spec.model_copy(update={"key_file": base / key_file})
