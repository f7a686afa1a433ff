"""Ephemeral settings (REQ-STAT6-002.2): per-scope knobs read through the runtime context.

They keep the seed names (`compression-threshold`, `maxOutputTokens`, ...) as aliases so a
profile, a `.env` file and `AgentRuntimeContext.get_ephemeral_setting` all speak the same words.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EPHEMERAL_SETTING_NAMES", "EphemeralSettings", "ToolFormat"]

ToolFormat = Literal["openai", "anthropic", "gemini", "hermes", "xml", "qwen", "deepseek"]


class EphemeralSettings(BaseModel):
    """A frozen snapshot of the ephemeral settings of one runtime scope."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True
    )

    compression_threshold: float = Field(0.6, alias="compression-threshold", ge=0.0, le=1.0)
    compression_preserve_threshold: float = Field(
        0.3, alias="compression-preserve-threshold", ge=0.0, le=1.0
    )
    context_limit: int = Field(60_000, alias="context-limit", gt=0)
    compression_min_age: int = Field(4, alias="compression-min-age", ge=0)
    max_output_tokens: int = Field(65_536, alias="maxOutputTokens", gt=0)
    tool_format_override: ToolFormat | None = Field(None, alias="tool-format-override")

    def get(self, name: str) -> float | int | str | None:
        """The value of the setting with seed name `name` (e.g. `compression-threshold`)."""
        field_name = _FIELD_BY_SEED_NAME.get(name)
        if field_name is None:
            raise KeyError(f"unknown ephemeral setting {name!r}; known: {', '.join(_SEED_NAMES)}")
        value: float | int | str | None = getattr(self, field_name)
        return value

    def with_overrides(self, overrides: Mapping[str, object]) -> EphemeralSettings:
        """A new snapshot with `overrides` (seed or field names) applied and validated."""
        if not overrides:
            return self
        merged = self.model_dump(by_alias=True) | dict(overrides)
        return EphemeralSettings.model_validate(merged)


_FIELD_BY_SEED_NAME = MappingProxyType(
    {str(info.alias): name for name, info in EphemeralSettings.model_fields.items()}
)
_SEED_NAMES = tuple(_FIELD_BY_SEED_NAME)
EPHEMERAL_SETTING_NAMES: tuple[str, ...] = _SEED_NAMES
