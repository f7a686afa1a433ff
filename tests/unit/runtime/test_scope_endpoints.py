"""A `ScopeFactory` works out each request's endpoint once, and gives every scope the same
endpoint, auth spec and tool selection a fresh factory would.

The factory keeps the endpoints of requests without a key of their own (they depend only on the
frozen settings and the fields that chose them), at most `_ENDPOINTS_KEPT`; a request that brings
its own key is worked out every time and never kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.runtime.context import AgentRuntimeContext
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.services.runtime.scopes import (
    _DEFAULT_REQUEST,
    _ENDPOINTS_KEPT,
    ScopeFactory,
    ScopeRequest,
)
from chatscope.services.tools.ports import ApprovalRequest, ToolContext, ToolDeclaration
from chatscope.testing.fakes import ScriptedProvider
from tests.support.scopes import make_scope_factory

PROVIDERS = ("demo", "openai", "openai-responses", "anthropic", "gemini")
names = st.text(alphabet="ABCDEFGH_", min_size=1, max_size=6)
endpoint_fields = st.fixed_dictionaries(
    {},
    optional={
        "provider": st.sampled_from(PROVIDERS),
        "model": st.text(alphabet="abcxyz-0123", min_size=1, max_size=8),
        "base_url": st.sampled_from(["http://127.0.0.1:8080/v1", "http://127.0.0.1:9/v1"]),
        "api_key": st.text(alphabet="skabc123", min_size=4, max_size=10).map(SecretStr),
        "key_file": st.sampled_from([Path("/keys/a"), Path("/keys/b")]),
        "api_key_env": names,
        "key_variables": st.lists(names, max_size=2).map(tuple),
        "auth_required": st.booleans(),
        "session_id": st.text(alphabet="0123abc", min_size=1, max_size=8),
    },
)


def _factory(workspace: Path) -> ScopeFactory:
    adapters = [ScriptedProvider([], name=name) for name in PROVIDERS]
    return make_scope_factory(*adapters, sink=RecordingSink(), workspace=workspace)


def _endpoint(context: AgentRuntimeContext) -> tuple[Any, ...]:
    state = context.state
    return (state.provider, state.model, state.base_url, state.auth_type, context.auth)


@settings(max_examples=60)
@given(requests=st.lists(endpoint_fields, min_size=1, max_size=90))
def test_every_scope_gets_the_endpoint_a_fresh_factory_would_give(
    tmp_path: Path, requests: list[dict[str, Any]]
) -> None:
    """However many requests one factory served before, each scope's provider, model, base
    URL and auth spec are those a factory that never saw a request works out."""
    kept = _factory(tmp_path)
    for fields in requests:
        request = ScopeRequest.create(**fields)
        assert _endpoint(kept.foreground(request)) == _endpoint(
            _factory(tmp_path).foreground(request)
        )


@settings(max_examples=40)
@given(requests=st.lists(endpoint_fields, min_size=1, max_size=150))
def test_a_factory_keeps_a_bounded_number_of_endpoints_and_no_requested_key(
    tmp_path: Path, requests: list[dict[str, Any]]
) -> None:
    """What a factory keeps stays within its bound, and holds no key a request brought."""
    scopes = _factory(tmp_path)
    for fields in requests:
        scopes.foreground(ScopeRequest.create(**fields))
        kept = scopes._endpoints
        assert len(kept) <= _ENDPOINTS_KEPT
        assert all(endpoint.auth.api_key is None for endpoint in kept.values())


@given(fields=endpoint_fields)
def test_a_scope_that_selects_no_tools_gets_the_application_tools_only(
    tmp_path: Path, fields: dict[str, Any]
) -> None:
    """A request that adds no tools, headers or servers, and has no approver, selects
    nothing: its scope has exactly the tools of a scope built without a request."""
    scopes = _factory(tmp_path)
    with_request = scopes.foreground(ScopeRequest.create(**fields))
    without = scopes.foreground()
    assert with_request.tools.names() == without.tools.names()
    assert with_request.tools.approver is None


@given(count=st.integers(1, 4))
def test_a_request_s_own_tools_reach_its_scope_only(tmp_path: Path, count: int) -> None:
    """Tools a request brings are in its scope, not in the next scope without them."""
    tools = tuple(_NamedTool(f"extra_{index}") for index in range(count))
    scopes = _factory(tmp_path)
    with_tools = scopes.foreground(ScopeRequest.create(tools=tools))
    without = scopes.foreground(ScopeRequest.create(provider="demo"))
    extra = {tool.declaration.name for tool in tools}
    assert extra <= set(with_tools.tools.names())
    assert not extra & set(without.tools.names())


class _NamedTool:
    """The smallest `Tool`: a name, and nothing to run."""

    def __init__(self, name: str) -> None:
        self.declaration = ToolDeclaration.create(name, name, {"type": "object"})

    async def run(self, arguments: Mapping[str, Any], context: ToolContext | None = None) -> str:
        return self.declaration.name


@given(fields=endpoint_fields)
def test_the_same_request_gets_the_one_worked_out_auth_spec(
    tmp_path: Path, fields: dict[str, Any]
) -> None:
    """A request without a key of its own gets its endpoint worked out once: the same auth
    spec object every time; a request with its own key gets it worked out anew."""
    scopes = _factory(tmp_path)
    request = ScopeRequest.create(**fields)
    first, second = scopes.foreground(request).auth, scopes.foreground(request).auth
    assert first == second
    assert (first is second) is (request.api_key is None)


class _RecordingBuild:
    """A `BuildContext` that records the parts each scope was built with."""

    def __init__(self, workspace: Path) -> None:
        self.parts: list[dict[str, Any]] = []
        self._inner = _factory(workspace)._build_context

    def __call__(self, **parts: Any) -> AgentRuntimeContext:
        self.parts.append(parts)
        plain = {name: value for name, value in parts.items() if name not in _SESSION_PARTS}
        return self._inner(**plain)


_SESSION_PARTS = ("owner", "history", "trace_parent")
owners = st.none() | st.text(alphabet="abc", min_size=1, max_size=4)
headers = st.none() | st.dictionaries(
    st.sampled_from(["crm", "weather"]), st.just({"Authorization": "Bearer t"}), min_size=1
)


@given(owner=owners, history=st.booleans(), traced=st.booleans(), mcp_headers=headers)
def test_a_scope_is_built_with_exactly_the_session_parts_its_request_names(
    tmp_path: Path,
    owner: str | None,
    history: bool,
    traced: bool,
    mcp_headers: dict[str, dict[str, str]] | None,
) -> None:
    """Owner, history and trace parent reach the context builder when the request names
    them, and only then; the request's MCP headers reach the scope's tool selection."""
    build = _RecordingBuild(tmp_path)
    scopes = ScopeFactory(_factory(tmp_path)._settings, build)
    given_history = InMemoryHistory() if history else None
    parent = object() if traced else None
    request = ScopeRequest.create(
        owner=owner, history=given_history, trace_parent=parent, mcp_headers=mcp_headers
    )
    scopes.foreground(request)
    [parts] = build.parts
    named = {"owner": owner, "history": given_history, "trace_parent": parent}
    assert {name: parts[name] for name in _SESSION_PARTS if name in parts} == {
        name: value for name, value in named.items() if value is not None
    }
    selection = parts["tool_selection"]
    assert set(selection.mcp_headers) == set(mcp_headers or {})


@given(count=st.integers(1, 3))
def test_a_subagent_of_the_settings_request_asks_its_parent_s_approver(
    tmp_path: Path, count: int
) -> None:
    """A subagent built from the request that chooses nothing still gets its parent's
    approver (only a scope without one shares the empty selection)."""
    scopes = _factory(tmp_path)
    parent = scopes.foreground()

    async def approve(request: ApprovalRequest) -> bool:
        return True

    for _ in range(count):
        child = scopes.subagent_of(
            _DEFAULT_REQUEST,
            parent_runtime_id=parent.runtime_id,
            ephemerals=parent.ephemerals,
            approver=approve,
        )
        assert child.tools.approver is approve
        assert child.state.parent_runtime_id == parent.runtime_id


def test_a_factory_never_keeps_more_endpoints_than_its_bound(tmp_path: Path) -> None:
    """Past `_ENDPOINTS_KEPT` distinct endpoints the factory starts again, never above it."""
    scopes = _factory(tmp_path)
    sizes = []
    for index in range(2 * _ENDPOINTS_KEPT + 1):
        scopes.foreground(ScopeRequest.create(provider="openai", model=f"model-{index}"))
        sizes.append(len(scopes._endpoints))
    assert max(sizes) == _ENDPOINTS_KEPT
    assert sizes[_ENDPOINTS_KEPT] == 1  # the first past the bound starts again
