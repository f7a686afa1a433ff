"""The MCP client's pure parts: tool names, header merging, a child's environment, results."""

from __future__ import annotations

import json
import re

import mcp_types as types
import pytest
from pydantic import SecretStr

from chatscope.adapters.tools.mcp import (
    child_environment,
    merge_headers,
    namespaced_name,
    render_result,
)
from chatscope.config.mcp import McpServerSettings, check_server_name

VALID_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def test_a_fitting_tool_name_is_prefixed_by_its_server() -> None:
    """`{server}__{tool}` when the tool's name is valid and fits."""
    assert namespaced_name("files", "read_file") == "files__read_file"
    assert namespaced_name("a-b", "x-y_z") == "a-b__x-y_z"


@pytest.mark.parametrize("tool", ["read.file", "naïve", "a b", "", "x" * 80, "read/file"])
def test_an_unfitting_tool_name_is_made_valid_and_kept_distinct(tool: str) -> None:
    """Invalid characters are replaced, long names cut, and a hash keeps the original apart."""
    name = namespaced_name("files", tool)
    assert VALID_NAME.match(name)
    assert name.startswith("files__")
    assert name != namespaced_name("files", tool + "!")


def test_sanitising_does_not_merge_two_tools() -> None:
    """`read.file` and `read_file` are two tools, and stay two names."""
    assert namespaced_name("s", "read.file") != namespaced_name("s", "read_file")


def test_the_longest_server_name_leaves_room_for_tools() -> None:
    """A 32-character server and a 64-character tool still give at most 64 characters."""
    name = namespaced_name("s" * 32, "t" * 64)
    assert VALID_NAME.match(name)
    assert len(name) == 64


@pytest.mark.parametrize("name", ["a_", "a__b", "_a", "", "a" * 33, "a.b"])
def test_server_names_that_would_blur_the_boundary_are_refused(name: str) -> None:
    """A server name may not end in `_` nor hold `__`: the first `__` must end the server."""
    with pytest.raises(ValueError, match="MCP server name"):
        check_server_name(name)


def test_scope_headers_override_configured_ones_whatever_their_case() -> None:
    """The scope's `authorization` replaces the configured `Authorization`; the rest stays."""
    configured = {"Authorization": SecretStr("Bearer config"), "X-Team": SecretStr("red")}
    merged = merge_headers(configured, {"authorization": "Bearer scope"})
    assert merged == {"X-Team": "red", "authorization": "Bearer scope"}


def test_without_scope_headers_the_configured_ones_are_sent() -> None:
    """The application session sends the configured headers only."""
    assert merge_headers({"X-Team": SecretStr("red")}, {}) == {"X-Team": "red"}


def test_a_child_gets_only_safe_variables_and_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Provider keys and chatscope's settings never reach a stdio server; PATH and locale do."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-for-children")
    monkeypatch.setenv("CHATSCOPE_PROVIDERS__OPENAI__API_KEY", "sk-test-nor-this")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("BASH_FUNC_x%%", "() { :; }")
    environment = child_environment({"SERVER_TOKEN": "its-own"})
    assert "OPENAI_API_KEY" not in environment
    assert "CHATSCOPE_PROVIDERS__OPENAI__API_KEY" not in environment
    assert "BASH_FUNC_x%%" not in environment
    assert environment["LC_ALL"] == "C.UTF-8"
    assert environment["SERVER_TOKEN"] == "its-own"
    assert "PATH" in environment


def test_configured_env_wins_over_the_inherited_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server's own `env` replaces an inherited safe variable of the same name."""
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    assert child_environment({"LANG": "C"})["LANG"] == "C"


def test_settings_never_print_env_values_or_header_values() -> None:
    """A server's settings show env names and masked headers, never their values."""
    stdio = McpServerSettings(command="srv", env={"SERVER_TOKEN": "hunter2-value"})
    http = McpServerSettings(url="http://x/mcp", headers={"Authorization": "Bearer hunter2"})
    shown = repr(stdio) + str(stdio) + repr(http) + str(http)
    assert "hunter2" not in shown
    assert "SERVER_TOKEN" in shown


def test_text_content_is_joined() -> None:
    """Text blocks are the result, one per line."""
    result = types.CallToolResult(
        content=[types.TextContent(text="one"), types.TextContent(text="two")]
    )
    assert render_result(result) == "one\ntwo"


def test_other_content_is_summarised_not_dropped() -> None:
    """Images, audio, links and binary resources are named; a text resource is its text."""
    result = types.CallToolResult(
        content=[
            types.ImageContent(data="aGVsbG8=", mime_type="image/png"),
            types.AudioContent(data="aGVsbG8=", mime_type="audio/wav"),
            types.ResourceLink(uri="file:///a.txt", name="a"),
            types.EmbeddedResource(
                resource=types.TextResourceContents(uri="file:///b.txt", text="inside b")
            ),
            types.EmbeddedResource(
                resource=types.BlobResourceContents(
                    uri="file:///c.bin", blob="AA==", mime_type="application/x"
                )
            ),
        ]
    )
    lines = render_result(result).splitlines()
    assert lines[0].startswith("[image: image/png")
    assert lines[1].startswith("[audio: audio/wav")
    assert lines[2] == "[resource link: file:///a.txt]"
    assert lines[3] == "inside b"
    assert lines[4] == "[resource: file:///c.bin, application/x, binary, not shown]"


def test_structured_content_is_the_result_when_there_is_no_text() -> None:
    """Without text, the structured content is given as JSON."""
    result = types.CallToolResult(content=[], structured_content={"answer": 42})
    assert json.loads(render_result(result)) == {"answer": 42}


def test_text_wins_over_structured_content() -> None:
    """With text, the structured content (usually the same data) is not repeated."""
    result = types.CallToolResult(
        content=[types.TextContent(text="42")], structured_content={"answer": 42}
    )
    assert render_result(result) == "42"
