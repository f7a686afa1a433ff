"""The subagent executor settings: `local` by default, `ray` with its section, bad values named."""

from __future__ import annotations

import os
from unittest import mock

import pytest

from chatscope.config.loading import load_settings
from chatscope.config.settings import Settings
from chatscope.errors import ConfigurationError


def _load(**variables: str) -> Settings:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHATSCOPE_")}
    with mock.patch.dict(os.environ, clean | variables, clear=True):
        return load_settings()


def test_subagents_run_locally_unless_told_otherwise() -> None:
    """No variable: the local executor, and the Ray section's defaults."""
    settings = _load()
    assert settings.subagent_executor == "local"
    assert (settings.ray.workers, settings.ray.worker_concurrency) == (None, 32)
    assert (settings.ray.container, settings.ray.num_cpus) == (None, None)


def test_the_ray_executor_and_its_section_come_from_the_environment() -> None:
    """`CHATSCOPE_SUBAGENT_EXECUTOR=ray` and `CHATSCOPE_RAY__*` are read."""
    settings = _load(
        CHATSCOPE_SUBAGENT_EXECUTOR="ray",
        CHATSCOPE_RAY__WORKERS="3",
        CHATSCOPE_RAY__WORKER_CONCURRENCY="5",
        CHATSCOPE_RAY__CONTAINER="my_app.workers:build",
        CHATSCOPE_RAY__NUM_CPUS="2",
    )
    assert settings.subagent_executor == "ray"
    ray = settings.ray
    assert (ray.workers, ray.worker_concurrency, ray.num_cpus) == (3, 5, 2)
    assert ray.container == "my_app.workers:build"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("CHATSCOPE_SUBAGENT_EXECUTOR", "spark", "subagent_executor"),
        ("CHATSCOPE_RAY__WORKERS", "0", "ray.workers"),
        ("CHATSCOPE_RAY__WORKER_CONCURRENCY", "-1", "ray.worker_concurrency"),
        ("CHATSCOPE_RAY__CONTAINER", "not a path", "ray.container"),
        ("CHATSCOPE_RAY__NUM_CPUS", "none", "ray.num_cpus"),
    ],
)
def test_a_bad_executor_setting_is_a_configuration_error_naming_it(
    variable: str, value: str, named: str
) -> None:
    """Each invalid value raises `ConfigurationError` naming the setting."""
    with pytest.raises(ConfigurationError, match=named.replace(".", r"\.")):
        _load(**{variable: value})
