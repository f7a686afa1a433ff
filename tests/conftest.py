"""Suite-wide set-up: real network is blocked in every test; loopback stays open."""

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
