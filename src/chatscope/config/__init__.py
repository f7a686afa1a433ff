"""Configuration: the settings model, ephemeral settings, and loading them at the entry point.

The names below are imported when first used (PEP 562): a light module of this package, such
as `chatscope.config.presets`, can be imported without paying for the settings model.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

_EPHEMERAL = "chatscope.config.ephemeral"
_LOADING = "chatscope.config.loading"
_SETTINGS = "chatscope.config.settings"
_MODULE_OF = MappingProxyType(
    {
        "EPHEMERAL_SETTING_NAMES": _EPHEMERAL,
        "EphemeralSettings": _EPHEMERAL,
        "ToolFormat": _EPHEMERAL,
        "describe_validation_error": _LOADING,
        "load_settings": _LOADING,
        "PROVIDER_NAMES": _SETTINGS,
        "ExplicitSettings": _SETTINGS,
        "HttpSettings": _SETTINGS,
        "ProviderName": _SETTINGS,
        "ProviderSettings": _SETTINGS,
        "ProvidersSettings": _SETTINGS,
        "RetrySettings": _SETTINGS,
        "Settings": _SETTINGS,
    }
)


def __getattr__(name: str) -> object:
    """A name of this package, imported from its module on first use."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'chatscope.config' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
