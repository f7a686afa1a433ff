"""Properties of the MCP client: tool names the model sees, and the headers a session sends."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from chatscope.adapters.tools.mcp import merge_headers, namespaced_name
from chatscope.config.mcp import check_server_name

VALID_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

server_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}", fullmatch=True).filter(
    lambda name: "__" not in name and not name.endswith("_")
)
tool_names = st.one_of(
    st.text(max_size=80),
    st.from_regex(r"[A-Za-z0-9_.\-]{1,70}", fullmatch=True),
)
header_names = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True)
header_values = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=20)


def case_unique(headers: dict[str, str]) -> dict[str, str]:
    """Headers with at most one spelling of each name, as a configuration holds them."""
    unique: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() not in {known.lower() for known in unique}:
            unique[name] = value
    return unique


@given(server=server_names, tool=tool_names)
def test_every_name_is_valid_for_every_provider(server: str, tool: str) -> None:
    """Whatever a server calls its tool, the model sees `[A-Za-z0-9_-]{1,64}` under the server."""
    check_server_name(server)
    name = namespaced_name(server, tool)
    assert VALID_NAME.match(name)
    assert name.startswith(f"{server}__")


@given(pairs=st.lists(st.tuples(server_names, tool_names), min_size=2, max_size=30, unique=True))
def test_two_tools_never_share_a_name(pairs: list[tuple[str, str]]) -> None:
    """Different (server, tool) pairs give different names: no tool shadows another."""
    names = [namespaced_name(server, tool) for server, tool in pairs]
    assert len(set(names)) == len(pairs)


@given(server=server_names, tool=tool_names)
def test_the_server_part_is_recoverable(server: str, tool: str) -> None:
    """The text before the first `__` is always the server the tool belongs to."""
    assert namespaced_name(server, tool).split("__", 1)[0] == server


@given(
    configured=st.dictionaries(header_names, header_values, max_size=6).map(case_unique),
    scope=st.dictionaries(header_names, header_values, max_size=6).map(case_unique),
)
def test_scope_headers_win_and_nothing_else_is_sent(
    configured: dict[str, str], scope: dict[str, str]
) -> None:
    """Every scope header is sent as given; a configured one only if the scope lacks its name."""
    merged = merge_headers({name: SecretStr(value) for name, value in configured.items()}, scope)
    scope_names = {name.lower() for name in scope}
    assert {name: merged[name] for name in scope} == scope
    kept = {name: value for name, value in configured.items() if name.lower() not in scope_names}
    assert merged == kept | scope
    assert len({name.lower() for name in merged}) == len(merged)
