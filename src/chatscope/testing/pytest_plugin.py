"""pytest fixtures for chatscope users' tests (registered through the `pytest11` entry point)."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from chatscope.config.settings import ExplicitSettings

if TYPE_CHECKING:
    from chatscope.containers.application import ApplicationContainer


@pytest.fixture
def chatscope_settings(tmp_path: Path) -> ExplicitSettings:
    """Settings for a test: demo provider, a temporary workspace, nothing read from the env."""
    return ExplicitSettings(workspace=tmp_path)


@pytest.fixture
def chatscope_app(tmp_path: Path) -> ApplicationContainer:
    """An application container on the offline demo provider with a temporary workspace."""
    from chatscope.testing.harness import build_test_app

    return build_test_app(workspace=tmp_path)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every socket connection except to loopback addresses and Unix sockets."""
    original = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if not _is_local(self, address):
            raise ConnectionRefusedError(f"chatscope tests block real network access to {address}")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


def _is_local(sock: socket.socket, address: Any) -> bool:
    if sock.family == socket.AF_UNIX:
        return True
    host = address[0] if isinstance(address, tuple) else address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
