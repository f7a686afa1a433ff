"""The suite's network guard: loopback is reachable, anything else is refused before a packet."""

from __future__ import annotations

import socket

import pytest

from tests.support.replay_server import ScriptedResponse, replay_server


def test_non_loopback_connections_are_refused_without_sending() -> None:
    """A connect to a non-loopback address fails in the guard, naming the address."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(
            ConnectionRefusedError, match=r"block real network access to \('192\.0\.2\.1'"
        ),
    ):
        sock.connect(("192.0.2.1", 443))


def test_loopback_connections_pass() -> None:
    """127.0.0.1 stays reachable, so local replay servers work."""
    with replay_server(ScriptedResponse.json_body({"ok": True})) as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            assert sock.getpeername()[0] == "127.0.0.1"
