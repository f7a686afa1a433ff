"""Fixtures shared by the adapter tests; plain helpers live in `tests.support.adapter_helpers`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.replay_server import ReplayServer, replay_server


@pytest.fixture(scope="module")
def shared_server() -> Iterator[ReplayServer]:
    """One replay server for all examples of a property test: each start/stop costs ~0.5 s."""
    with replay_server() as server:
        yield server


@pytest.fixture(scope="module")
def socket_server(shared_server: ReplayServer) -> ReplayServer:
    """The module's shared replay server, under the name the native-adapter tests use."""
    return shared_server
