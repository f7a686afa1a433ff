"""Building an application container for tests, with a fake in place of a real provider."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dependency_injector import providers

from chatscope.config.settings import ExplicitSettings
from chatscope.containers.application import ApplicationContainer
from chatscope.services.runtime.ports import ModelProvider

__all__ = ["build_test_app", "override_provider"]

_DUMMY_KEYS = MappingProxyType(
    {
        "OPENAI_API_KEY": "test-openai-key",
        "ANTHROPIC_API_KEY": "test-anthropic-key",
        "GEMINI_API_KEY": "test-gemini-key",
    }
)


def override_provider(app: ApplicationContainer, fake: ModelProvider) -> None:
    """Make every scope of provider `fake.name` talk to `fake` (undo with `reset_override`)."""
    getattr(app.model_providers, fake.name.replace("-", "_")).override(providers.Object(fake))


def build_test_app(
    *fakes: ModelProvider,
    workspace: Path,
    environ: Mapping[str, str] | None = None,
    **settings: Any,
) -> ApplicationContainer:
    """A container with explicit settings (no environment read), tiny retry delays and fakes.

    Unless `environ` is given, every provider's standard key variable holds a dummy test key,
    so a fake standing in for a keyed provider needs no key set up. History stays in memory
    unless `history_backend="database"` (with a `data_dir` or `database_url`) is passed.
    """
    settings.setdefault("provider", fakes[0].name if fakes else "demo")
    settings.setdefault("history_backend", "memory")
    settings.setdefault("retry", {"initial_delay": 0.001, "max_delay": 0.01})
    app = ApplicationContainer(
        settings=ExplicitSettings(workspace=workspace, **settings),
        environ=dict(_DUMMY_KEYS if environ is None else environ),
    )
    for fake in fakes:
        override_provider(app, fake)
    return app
