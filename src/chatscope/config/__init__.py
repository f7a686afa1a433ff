"""Configuration: the settings model, ephemeral settings, and loading them at the entry point."""

from __future__ import annotations

from chatscope.config.ephemeral import EPHEMERAL_SETTING_NAMES, EphemeralSettings, ToolFormat
from chatscope.config.loading import describe_validation_error, load_settings
from chatscope.config.settings import (
    PROVIDER_NAMES,
    ExplicitSettings,
    HttpSettings,
    ProviderName,
    ProviderSettings,
    ProvidersSettings,
    RetrySettings,
    Settings,
)

__all__ = [
    "EPHEMERAL_SETTING_NAMES",
    "PROVIDER_NAMES",
    "EphemeralSettings",
    "ExplicitSettings",
    "HttpSettings",
    "ProviderName",
    "ProviderSettings",
    "ProvidersSettings",
    "RetrySettings",
    "Settings",
    "ToolFormat",
    "describe_validation_error",
    "load_settings",
]
