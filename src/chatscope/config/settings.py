"""The one settings model, read from `CHATSCOPE_*` environment variables and `.env` files.

Settings are read once, at the entry point, by `load_settings`; nothing reads them at import.
The result is frozen and handed down; runtime scopes take snapshots of the parts they need.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from chatscope.config.ephemeral import EphemeralSettings
from chatscope.config.mcp import McpServerSettings, check_server_name
from chatscope.config.urls import check_http_url

__all__ = [
    "PROVIDER_NAMES",
    "AnthropicSettings",
    "CompressionSettings",
    "DemoSettings",
    "ExplicitSettings",
    "FallbackMember",
    "FallbackMode",
    "FallbackSettings",
    "GeminiSettings",
    "HttpSettings",
    "OpenAISettings",
    "ProviderName",
    "ProviderSettings",
    "ProvidersSettings",
    "RaySettings",
    "RetrySettings",
    "ServerSettings",
    "Settings",
    "TelemetrySettings",
    "ToolsSettings",
]

ProviderName = Literal["demo", "openai", "openai-responses", "anthropic", "gemini"]
PROVIDER_NAMES: tuple[ProviderName, ...] = (
    "demo",
    "openai",
    "openai-responses",
    "anthropic",
    "gemini",
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProviderSettings(_Frozen):
    """How to reach one provider. The key is a `SecretStr`: it never prints."""

    api_key: SecretStr | None = None
    key_file: Path | None = None
    base_url: str | None = None
    default_model: str
    auth_required: bool = True

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, value: str | None) -> str | None:
        checked = check_http_url(value)
        return checked.rstrip("/") if checked else checked


class DemoSettings(ProviderSettings):
    """The offline demo provider: no network, no key."""

    default_model: str = "chatscope-demo"
    auth_required: bool = False


class OpenAISettings(ProviderSettings):
    """OpenAI Chat Completions, or any server speaking its wire format."""

    base_url: str | None = "https://api.openai.com/v1"
    default_model: str = "gpt-4o-mini"


class AnthropicSettings(ProviderSettings):
    """Anthropic Messages."""

    base_url: str | None = "https://api.anthropic.com"
    default_model: str = "claude-sonnet-4-5"


class GeminiSettings(ProviderSettings):
    """Google Gemini (Generative Language API)."""

    base_url: str | None = "https://generativelanguage.googleapis.com/v1beta"
    default_model: str = "gemini-2.5-flash"


class ProvidersSettings(_Frozen):
    """One section per provider adapter; a partial section keeps the other defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True)

    demo: DemoSettings = DemoSettings()
    openai: OpenAISettings = OpenAISettings()
    openai_responses: OpenAISettings = Field(OpenAISettings(), alias="openai-responses")
    anthropic: AnthropicSettings = AnthropicSettings()
    gemini: GeminiSettings = GeminiSettings()

    def get(self, name: str) -> ProviderSettings:
        """The section of provider `name` (as spelt in `ProviderName`)."""
        section: ProviderSettings = getattr(self, name.replace("-", "_"))
        return section


class HttpSettings(_Frozen):
    """The shared connection pool and its timeouts, in seconds."""

    connect_timeout: float = Field(10.0, gt=0)
    first_byte_timeout: float = Field(60.0, gt=0)
    idle_stream_timeout: float = Field(60.0, gt=0)
    max_connections: int = Field(100, ge=1)


class RetrySettings(_Frozen):
    """How failed model calls are retried (before any output reached the caller)."""

    max_attempts: int = Field(6, ge=1, le=20)
    initial_delay: float = Field(5.0, gt=0)
    multiplier: float = Field(2.0, ge=1.0)
    max_delay: float = Field(30.0, gt=0)
    jitter: float = Field(0.3, ge=0.0, lt=1.0)
    max_server_delay: float = Field(300.0, gt=0)


class CompressionSettings(_Frozen):
    """History compression: which model summarises, and how patiently it is tried again.

    When to compress and what to keep are ephemeral settings of each scope (`compression-*`,
    `context-limit`); this section is the same for the whole application. `provider` / `model`
    unset mean the scope's own provider and model.
    """

    enabled: bool = True
    provider: ProviderName | None = None
    model: str | None = None
    min_savings: float = Field(0.1, ge=0.0, lt=1.0)
    summary_timeout: float = Field(90.0, gt=0)
    max_summary_tokens: int = Field(8192, ge=256)
    failure_cooldown_turns: int = Field(3, ge=0)
    failure_cooldown_seconds: float = Field(60.0, ge=0)
    ineffective_cooldown_turns: int = Field(5, ge=0)


class ToolsSettings(_Frozen):
    """How a scope runs tool calls.

    The calls of one reply run at once, at most `max_concurrent_calls`; a call is stopped
    after `timeout` seconds unless its tool names its own. Tools that need approval (such as
    `write_file`) ask the scope's approver first, except those named in `auto_approve`
    (`["*"]`: every tool).
    """

    max_concurrent_calls: int = Field(8, ge=1, le=64)
    timeout: float = Field(120.0, gt=0)
    auto_approve: tuple[str, ...] = ()


FallbackMode = Literal["off", "failover", "round-robin"]
_ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class FallbackMember(_Frozen):
    """One more endpoint of a fallback chain: provider, model, and optionally an endpoint and
    the environment variable its key is read from (only from there: see `FallbackSettings`)."""

    provider: ProviderName
    model: str = Field(min_length=1)
    base_url: str | None = None
    api_key_env: str | None = Field(None, pattern=_ENV_NAME_PATTERN)

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, value: str | None) -> str | None:
        checked = check_http_url(value)
        return checked.rstrip("/") if checked else checked


class FallbackSettings(_Frozen):
    """A chain of endpoints for a scope: its own endpoint first, then `members`.

    `failover` sends every turn to the first endpoint whose circuit is closed and, when one
    fails before any output with a retryable error after its own retries, tries the next;
    `round-robin` starts each turn at the next endpoint in turn and fails over the same way.
    An endpoint that failed `failure_threshold` times in a row is skipped for
    `cooldown_seconds`. A member's key comes from its `api_key_env` alone; without one, from
    its provider's usual sources, unless it names a `base_url` of its own (then it sends none).
    """

    mode: FallbackMode = "off"
    # Decoded here rather than by pydantic-settings, so that text which is not JSON is reported
    # as this key's problem (CHATSCOPE_FALLBACK__MEMBERS), not as the whole section's.
    members: Annotated[tuple[FallbackMember, ...], NoDecode] = ()
    failure_threshold: int = Field(3, ge=1, le=100)
    cooldown_seconds: float = Field(30.0, gt=0, le=86_400)

    @field_validator("members", mode="before")
    @classmethod
    def _members_from_json(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ValueError(
                f"not valid JSON ({exc}); give a JSON list of objects with provider, model "
                "and optionally base_url and api_key_env"
            ) from None

    @model_validator(mode="after")
    def _members_for_the_mode(self) -> FallbackSettings:
        if self.mode != "off" and not self.members:
            raise ValueError(f"mode {self.mode!r} needs at least one member to fall back to")
        if self.mode == "off" and self.members:
            raise ValueError(
                "members are set but mode is 'off'; set mode to 'failover' or 'round-robin'"
            )
        return self


_KEY_HASH = re.compile(r"sha256:[0-9a-f]{64}")
_TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class ServerSettings(_Frozen):
    """`chatscope serve`: where it listens and who may call it.

    `api_keys` maps a tenant's name to the `sha256:<hex>` hash of its key (never the key
    itself; `chatscope serve --hash-key` makes one). Without keys the server serves one local
    tenant on loopback only. A tenant runs at most `max_turns_per_tenant` turns at once; a
    request body may hold `max_body_bytes`; on shutdown, turns still running get
    `grace_seconds` to finish.
    """

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_keys: dict[str, str] = Field(default_factory=dict)
    max_turns_per_tenant: int = Field(4, ge=1, le=1024)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    grace_seconds: float = Field(30.0, ge=0)

    @field_validator("api_keys")
    @classmethod
    def _hashed_keys(cls, keys: dict[str, str]) -> dict[str, str]:
        for tenant, hashed in keys.items():
            if not _TENANT_NAME.fullmatch(tenant):
                raise ValueError(
                    f"tenant name {tenant!r}: use 1-64 letters, digits, '_', '.' or '-'"
                )
            if not _KEY_HASH.fullmatch(hashed):
                raise ValueError(
                    f"the key of tenant {tenant!r} must be given as sha256:<64 hex digits> "
                    "(`chatscope serve --hash-key` makes one), never as the key itself"
                )
        return keys


class TelemetrySettings(_Frozen):
    """What traces record beyond timings, tokens and ids (`CHATSCOPE_TELEMETRY__*`).

    `capture_content` adds prompts, answers, system prompts and tool arguments and results to
    the spans (the GenAI conventions' opt-in content attributes), with keys blanked out. Off by
    default: content is the users' data. Where traces go is set by the standard `OTEL_*`
    variables, not here.
    """

    capture_content: bool = False


_CONTAINER_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


class RaySettings(_Frozen):
    """The Ray subagent executor (`CHATSCOPE_RAY__*`; the `ray` extra).

    The cluster is the one Ray's standard `RAY_ADDRESS` names, or else a local one started
    with `num_cpus` CPUs (None: Ray's default) and no dashboard. `workers` worker actors (None:
    the cluster's CPU count, at least 1) each run up to `worker_concurrency` subagents at once.
    `container` is a `module:callable` that builds a worker's `ApplicationContainer` (for an
    application with tools of its own); by default a worker builds the standard one from its
    own environment.
    """

    workers: int | None = Field(None, ge=1, le=4096)
    worker_concurrency: int = Field(32, ge=1, le=10_000)
    container: str | None = None
    num_cpus: int | None = Field(None, ge=1)

    @field_validator("container")
    @classmethod
    def _container_path(cls, path: str | None) -> str | None:
        if path is not None and not _CONTAINER_PATH.fullmatch(path):
            raise ValueError(f"expected 'module:callable', got {path!r}")
        return path


class Settings(BaseSettings):
    """Everything chatscope reads from its environment.

    With `history_backend="database"` every chat is a saved session in `database_url`, by
    default the SQLite file `chatscope.db` in `data_dir`. The URL may hold a password: it is a
    `SecretStr` and never prints.

    Subagent profiles are the `*.toml` files of `profiles_dir` (default: `config/profiles/` of
    the workspace); one parent scope runs at most `max_concurrent_subagents` subagents at once.
    `mcp_servers` are the MCP servers whose tools every scope may use (a subagent profile may
    narrow them); a typed answer that fails validation is sent back `output_retries` times.
    `subagent_executor` runs subagents in this process (`local`) or on a Ray cluster (`ray`,
    set up by the `ray` section).
    """

    model_config = SettingsConfigDict(
        env_prefix="CHATSCOPE_",
        env_nested_delimiter="__",
        frozen=True,
        extra="ignore",
        validate_default=True,
    )

    provider: ProviderName = "demo"
    model: str | None = None
    workspace: Path = Field(default_factory=Path.cwd)
    max_turns: int = Field(10, ge=1, le=200)
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    log_format: Literal["auto", "json", "console"] = "auto"
    history_backend: Literal["memory", "database"] = "database"
    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("chatscope")))
    database_url: SecretStr | None = None
    providers: ProvidersSettings = ProvidersSettings()
    ephemeral: EphemeralSettings = EphemeralSettings()
    http: HttpSettings = HttpSettings()
    retry: RetrySettings = RetrySettings()
    compression: CompressionSettings = CompressionSettings()
    profiles_dir: Path | None = None
    max_concurrent_subagents: int = Field(4, ge=1, le=64)
    subagent_executor: Literal["local", "ray"] = "local"
    ray: RaySettings = RaySettings()
    tools: ToolsSettings = ToolsSettings()
    mcp_servers: dict[str, McpServerSettings] = Field(default_factory=dict)
    output_retries: int = Field(1, ge=0, le=5)
    server: ServerSettings = ServerSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    fallback: FallbackSettings = FallbackSettings()

    @field_validator("mcp_servers")
    @classmethod
    def _server_names(cls, servers: dict[str, McpServerSettings]) -> dict[str, McpServerSettings]:
        for name in servers:
            check_server_name(name)
        return servers

    def model_for(self, provider: str) -> str:
        """The model to use for `provider`: the explicit one if it is the default provider."""
        if self.model and provider == self.provider:
            return self.model
        return self.providers.get(provider).default_model


class ExplicitSettings(Settings):
    """Settings from the values passed in only: no environment, no `.env` file.

    For tests and for applications that take their configuration from elsewhere. Nothing is
    written to disk unless asked: history stays in memory unless `history_backend="database"`.
    """

    history_backend: Literal["memory", "database"] = "memory"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read nothing but the constructor's arguments."""
        return (init_settings,)
