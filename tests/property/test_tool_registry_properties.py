"""Properties of a scope's tool registry and tool selection, over generated tools and calls."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import SecretStr

from chatscope.errors import ConfigurationError
from chatscope.services.frozen import deep_freeze
from chatscope.services.messages import ToolCallBlock
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.services.tools.ports import ApprovalRequest, ToolContext, ToolDeclaration
from chatscope.services.tools.registry import ToolPolicy, ToolRegistry
from chatscope.services.tools.toolset import (
    ScopeToolkit,
    ToolSelection,
    assemble_tools,
    freeze_headers,
)

names = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10)
callers = st.builds(
    ToolContext,
    session_id=names,
    runtime_id=names,
    provider=st.sampled_from(["demo", "openai", "anthropic"]),
    model=names,
    parent_runtime_id=st.none() | names,
    subagent_name=st.none() | names,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=8,
)
arguments = st.dictionaries(names, json_values, max_size=4)


class Recorder:
    """Returns its arguments and caller as JSON; may need approval."""

    def __init__(self, name: str, *, approval: bool = False) -> None:
        self.declaration = ToolDeclaration(
            name, "Record.", deep_freeze({"type": "object"}), requires_approval=approval
        )
        self.calls = 0

    async def run(self, arguments: Mapping[str, Any], context: ToolContext | None = None) -> str:
        self.calls += 1
        caller = None if context is None else context.runtime_id
        return json.dumps({"arguments": dict(arguments), "caller": caller}, default=list)


def _run(registry: ToolRegistry, call: ToolCallBlock) -> Any:
    return asyncio.run(registry.run(call))


@given(caller=callers, name=names, args=arguments)
def test_a_call_reaches_its_tool_with_the_scopes_caller(
    caller: ToolContext, name: str, args: dict[str, Any]
) -> None:
    """The tool sees exactly the call's arguments and the registry's caller."""
    registry = ToolRegistry((Recorder(name),), caller=caller)
    result = _run(registry, ToolCallBlock.create("c", name, args))
    assert result.error is None
    assert json.loads(result.result)["caller"] == caller.runtime_id


@given(tool_names=st.lists(names, min_size=1, max_size=6, unique=True), asked=names)
def test_an_unknown_tool_is_an_error_result_listing_the_known(
    tool_names: list[str], asked: str
) -> None:
    """A name the scope lacks is reported with every name it has; nothing runs."""
    tools = [Recorder(name) for name in tool_names]
    registry = ToolRegistry(tools)
    result = _run(registry, ToolCallBlock.create("c", asked, {}))
    if asked in tool_names:
        assert result.error is None
    else:
        assert result.error is not None
        assert all(name in result.error for name in tool_names)
    assert sum(tool.calls for tool in tools) == (asked in tool_names)


@given(
    approval=st.booleans(),
    answer=st.booleans(),
    has_approver=st.booleans(),
    auto=st.sampled_from([frozenset(), frozenset({"t"}), frozenset({"*"}), frozenset({"x"})]),
    caller=callers,
)
def test_a_tool_runs_exactly_when_policy_or_approver_allow_it(
    approval: bool, answer: bool, has_approver: bool, auto: frozenset[str], caller: ToolContext
) -> None:
    """The run/refuse decision is: no approval needed, or auto-approved, or the approver's yes;
    the approver is asked only when its answer decides."""
    asked: list[ApprovalRequest] = []

    async def approver(request: ApprovalRequest) -> bool:
        asked.append(request)
        return answer

    tool = Recorder("t", approval=approval)
    registry = ToolRegistry(
        (tool,),
        caller=caller,
        approver=approver if has_approver else None,
        policy=ToolPolicy(auto_approve=auto),
    )
    result = _run(registry, ToolCallBlock.create("c", "t", {"a": 1}))
    auto_approved = "t" in auto or "*" in auto
    should_run = not approval or auto_approved or (has_approver and answer)
    assert tool.calls == int(should_run)
    assert (result.error is None) == should_run
    must_ask = approval and not auto_approved and has_approver
    assert [request.context for request in asked] == ([caller] if must_ask else [])


@given(tool_names=st.lists(names, min_size=1, max_size=6, unique=True), data=st.data())
def test_restricting_keeps_the_allowed_tools_in_order_and_the_scope(
    tool_names: list[str], data: st.DataObject
) -> None:
    """A restricted registry holds the allowed tools, in registration order, and keeps the
    caller, approver and policy; an unknown allowed name is a configuration error."""
    allowed = data.draw(st.lists(st.sampled_from(tool_names), unique=True))
    caller = ToolContext("s", "r", "demo", "m")
    policy = ToolPolicy(max_concurrent_calls=3)
    registry = ToolRegistry([Recorder(name) for name in tool_names], caller=caller, policy=policy)
    narrowed = registry.restricted_to(allowed)
    assert narrowed.names() == tuple(name for name in tool_names if name in allowed)
    assert narrowed.policy is policy
    extra = data.draw(names.filter(lambda name: name not in tool_names))
    with pytest.raises(ConfigurationError, match=re.escape(repr(extra))):
        registry.restricted_to([*allowed, extra])


@given(
    workspace=st.lists(names, max_size=3, unique=True),
    application=st.lists(names, max_size=3, unique=True),
    extra=st.lists(names, max_size=3, unique=True),
)
def test_a_scopes_tools_are_workspace_then_application_then_its_own(
    workspace: list[str], application: list[str], extra: list[str]
) -> None:
    """`assemble_tools` keeps each source's order, then a tool source's; a name given twice is
    refused. The registry has the caller and policy it was given, and the source served that
    caller."""
    every = [*workspace, *application, *extra, "mcp__tool"]
    selection = ToolSelection(extra=tuple(Recorder(name) for name in extra))
    caller = ToolContext("s", "r", "demo", "m")
    policy, source = ToolPolicy(timeout=7.0), _Source("mcp")

    def build() -> ToolRegistry:
        return assemble_tools(
            caller=caller,
            selection=selection,
            workspace=[Recorder(name) for name in workspace],
            application=[Recorder(name) for name in application],
            sources=[source],
            policy=policy,
        )

    if len(set(every)) < len(every):
        with pytest.raises(ConfigurationError, match="two tools are named"):
            build()
        return
    registry = build()
    assert registry.names() == tuple(every)
    assert registry.policy is policy
    assert source.served == [(caller, selection)]
    answer = _run(registry, ToolCallBlock.create("c", "mcp__tool", {}))
    assert json.loads(answer.result)["caller"] == caller.runtime_id


class _Source:
    """A `ToolSource` making one tool per scope, named after it; records whom it served."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.served: list[tuple[ToolContext, ToolSelection]] = []

    def tools_for(self, caller: ToolContext, selection: ToolSelection) -> tuple[Recorder, ...]:
        self.served.append((caller, selection))
        return (Recorder(f"{self.name}__tool"),)


@given(
    workspace=st.lists(names, max_size=3, unique=True),
    application=st.lists(names, max_size=3, unique=True),
    sources=st.lists(st.sampled_from(["crm", "weather"]), max_size=2, unique=True),
    callers=st.lists(callers, min_size=1, max_size=3),
    args=arguments,
)
def test_a_scope_toolkit_gives_every_scope_fresh_tools_for_its_caller(
    workspace: list[str],
    application: list[str],
    sources: list[str],
    callers: list[ToolContext],
    args: dict[str, Any],
) -> None:
    """Each call makes the workspace and application tools anew, asks every source for the
    caller's own tools, and binds the registry to that caller, the selection's approver and
    the application's policy."""
    made: list[Recorder] = []

    def fresh(tool_names: list[str]) -> Callable[[], list[Recorder]]:
        def make() -> list[Recorder]:
            tools = [Recorder(name) for name in tool_names]
            made.extend(tools)
            return tools

        return make

    assume(not set(workspace) & set(application))
    servers = [_Source(name) for name in sources]
    policy = ToolPolicy(max_concurrent_calls=2, auto_approve=frozenset({"*"}))
    toolkit = ScopeToolkit(
        workspace=fresh(workspace),
        application=fresh(application),
        sources=iter(servers),
        policy=policy,
    )
    approver = _approve_all
    for caller in callers:
        selection = ToolSelection(approver=approver)
        registry = toolkit(caller=caller, selection=selection)
        expected = (*workspace, *application, *(f"{name}__tool" for name in sources))
        assert registry.names() == expected
        assert registry.policy is policy
        assert registry.approver is approver
        for server in servers:
            assert server.served[-1] == (caller, selection)
        for name in registry.names():
            result = _run(registry, ToolCallBlock.create("c", name, args))
            assert json.loads(result.result)["caller"] == caller.runtime_id
    assert len(made) == len(callers) * (len(workspace) + len(application))
    assert len({id(tool) for tool in made}) == len(made)
    for server in servers:
        assert len(server.served) == len(callers)


async def _approve_all(request: ApprovalRequest) -> bool:
    """Approves every call."""
    return True


tokens = st.text(min_size=1, max_size=12).map(lambda text: f"tok-{text}-end")


@given(headers=st.dictionaries(names, st.dictionaries(names, tokens, max_size=3), max_size=3))
def test_scope_headers_are_frozen_secrets_and_read_back_exactly(
    headers: dict[str, dict[str, str]],
) -> None:
    """Every header value becomes a secret absent from reprs, and reads back unchanged."""
    request = ScopeRequest.create(mcp_headers=headers)
    selection = ToolSelection(mcp_headers=request.mcp_headers)
    for server, values in headers.items():
        assert selection.headers_for(server) == values
        for value in request.mcp_headers[server].values():
            assert isinstance(value, SecretStr)
    assert selection.headers_for("no-such-server-name-at-all") == {}
    text = repr(request)
    assert "tok-" not in text


@given(headers=st.dictionaries(names, st.dictionaries(names, st.text(max_size=5), max_size=2)))
def test_freezing_headers_twice_changes_nothing(headers: dict[str, dict[str, str]]) -> None:
    """Already-secret values are kept as they are."""
    once = freeze_headers(headers)
    assert freeze_headers(once) == once


@given(servers=st.none() | st.lists(names, max_size=3, unique=True), asked=names)
def test_a_scope_uses_a_server_only_if_its_allow_list_has_it(
    servers: list[str] | None, asked: str
) -> None:
    """No allow-list means every server; otherwise exactly the listed ones."""
    selection = ToolSelection(mcp_servers=None if servers is None else tuple(servers))
    assert selection.uses_server(asked) == (servers is None or asked in servers)


@given(limit=st.integers(1, 64), timeout=st.floats(0.01, 1000), names_=st.sets(names))
def test_policy_approves_the_named_tools_or_all_with_a_star(
    limit: int, timeout: float, names_: set[str]
) -> None:
    """`approves` is membership, or everything when `*` is listed."""
    policy = ToolPolicy(limit, timeout, frozenset(names_))
    for name in ("read_file", "write_file", *names_):
        assert policy.approves(name) == (name in names_ or "*" in names_)
