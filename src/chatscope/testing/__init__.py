"""Fakes for chatscope users' tests: scripted and function-driven providers, and helpers.

    provider = ScriptedProvider([ScriptedReply(text="hi")])
    app = build_test_app(provider, workspace=tmp_path)
    chat = app.runtime.chat_session(context=app.runtime.scopes().foreground())
    turn = await chat.send("hello")

MCP servers can be faked in process with `fake_mcp_servers` (see `chatscope.testing.mcp`).
The pytest plugin (`chatscope.testing.pytest_plugin`, registered automatically) adds the
`chatscope_settings`, `chatscope_app` and `no_network` fixtures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatscope.testing.fakes import FunctionProvider, ScriptedProvider, ScriptedReply

if TYPE_CHECKING:
    from chatscope.testing.harness import build_test_app, override_provider
    from chatscope.testing.mcp import fake_mcp_servers

__all__ = [
    "FunctionProvider",
    "ScriptedProvider",
    "ScriptedReply",
    "build_test_app",
    "fake_mcp_servers",
    "override_provider",
]


def __getattr__(name: str) -> Any:
    """Import the container harness and the MCP fakes on first use, so loading the pytest
    plugin stays light (and imports no `mcp`)."""
    if name in {"build_test_app", "override_provider"}:
        from chatscope.testing import harness

        return getattr(harness, name)
    if name == "fake_mcp_servers":
        from chatscope.testing import mcp

        return mcp.fake_mcp_servers
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
