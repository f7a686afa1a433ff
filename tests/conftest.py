"""Suite-wide set-up: no real network (loopback stays open), and a temporary data home."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "chatscope",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.load_profile("chatscope")


@pytest.fixture(autouse=True)
def _block_real_network(no_network: None) -> None:
    """Every test runs with non-loopback connections refused."""


@pytest.fixture(autouse=True)
def _temporary_data_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The platform data directory (saved sessions' default home) is a temporary one, for
    this process and every chatscope process a test starts."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.getbasetemp() / "data-home"))
