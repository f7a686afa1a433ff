"""The public surface: pinned, sorted names that resolve, the README's code, nothing import-time.

Everything a user imports comes from `chatscope` (and `chatscope.testing`): the folders behind
them may be regrouped without any user's import changing, and this file notices when one would.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import chatscope
import chatscope.testing
from tests.support.replay_server import ScriptedResponse, replay_server
from tests.support.streams import minimal_stream

README = Path(__file__).resolve().parents[2] / "README.md"

PUBLIC_NAMES = [
    "AgentRuntimeContext",
    "AgentRuntimeState",
    "ApplicationContainer",
    "ApprovalRequest",
    "Approver",
    "AuthenticationRequiredError",
    "ChatEvent",
    "ChatSession",
    "ChatscopeError",
    "CompletedTurn",
    "ConfigurationError",
    "EphemeralSettings",
    "ErrorCategory",
    "ExplicitSettings",
    "FinishReason",
    "FunctionTool",
    "HistoryCompressor",
    "HistoryOpener",
    "HistoryStore",
    "HistoryStoreError",
    "InMemoryHistory",
    "Message",
    "MissingProviderRuntimeError",
    "ModelProvider",
    "OutputValidationError",
    "PRESETS",
    "Preset",
    "ProfileError",
    "ProviderError",
    "Role",
    "ScopeRequest",
    "Settings",
    "SubAgentScope",
    "SubagentProfile",
    "TelemetrySink",
    "TextDelta",
    "ThinkingDelta",
    "Tool",
    "ToolCallEvent",
    "ToolContext",
    "ToolDeclaration",
    "ToolError",
    "ToolResultEvent",
    "TurnDone",
    "UnknownSessionError",
    "Usage",
    "UsageEvent",
    "create_agent_runtime_context",
    "load_settings",
    "tool",
]

TESTING_NAMES = [
    "FunctionProvider",
    "ScriptedProvider",
    "ScriptedReply",
    "build_test_app",
    "fake_mcp_servers",
    "override_provider",
]


def test_the_public_names_are_pinned() -> None:
    """`chatscope` and `chatscope.testing` export exactly the names users rely on."""
    assert chatscope.__all__ == PUBLIC_NAMES
    assert chatscope.testing.__all__ == TESTING_NAMES
    assert all(getattr(chatscope.testing, name) for name in TESTING_NAMES)


def test_all_is_sorted_and_every_name_resolves() -> None:
    """`chatscope.__all__` is sorted (case-sensitively) and each name is an attribute."""
    assert chatscope.__all__ == sorted(chatscope.__all__)
    assert all(hasattr(chatscope, name) for name in chatscope.__all__)


def test_public_names_are_the_documented_entry_points() -> None:
    """The names a user needs to build and run a chat are all exported."""
    needed = {"ApplicationContainer", "ChatSession", "ScopeRequest", "load_settings"}
    assert needed <= set(chatscope.__all__)
    assert chatscope.ChatSession is importlib.import_module("chatscope.services.chat").ChatSession


def test_importing_reads_no_settings_and_configures_nothing() -> None:
    """Importing chatscope with a broken configuration in the environment still succeeds."""
    code = "import chatscope, structlog; print(structlog.is_configured())"
    env = {"CHATSCOPE_EPHEMERAL__CONTEXT_LIMIT": "-1", "PATH": ""}
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def _readme_code() -> str:
    """The Python block of the README's "In code" section."""
    section = README.read_text(encoding="utf-8").split("## In code", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "the README's In code section has no python block"
    return match.group(1)


def test_the_readme_code_imports_only_public_names_from_chatscope() -> None:
    """The README's "In code" snippet imports from `chatscope` itself, and only exported names."""
    tree = ast.parse(_readme_code())
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imports, "the snippet imports nothing from chatscope"
    assert {node.module for node in imports} == {"chatscope"}
    assert {alias.name for node in imports for alias in node.names} <= set(chatscope.__all__)


def test_the_readme_code_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The snippet, unchanged, chats with an Anthropic-shaped server on 127.0.0.1."""
    stream = ScriptedResponse.sse(minimal_stream("anthropic", "Hello from the README"))
    with replay_server(stream) as server:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-readme-test-key")
        monkeypatch.setenv("CHATSCOPE_PROVIDERS__ANTHROPIC__BASE_URL", server.url)
        monkeypatch.setenv("CHATSCOPE_HISTORY_BACKEND", "memory")
        code = compile(_readme_code(), "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        namespace: dict[str, object] = {}
        asyncio.run(eval(code, namespace))  # noqa: S307 - the README's own code
    turn = namespace["turn"]
    assert isinstance(turn, chatscope.CompletedTurn)
    assert turn.text == "Hello from the README"
    [request] = server.requests
    assert request.headers["x-api-key"] == "sk-readme-test-key"
