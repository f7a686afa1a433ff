"""Turning a request for a scope (CLI flags, a subagent profile) into a fresh runtime context.

`ScopeFactory` computes the frozen state and auth spec; the containers' `context` factory (handed
in as `build_context`) assembles the parts. The factory reads the settings snapshot it was given
and changes nothing: building a subagent never touches its parent (REQ-STAT6-003.1).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from pydantic import SecretStr

from chatscope.config.ephemeral import EphemeralSettings
from chatscope.config.presets import Preset
from chatscope.config.settings import FallbackSettings, Settings
from chatscope.errors import ConfigurationError
from chatscope.services.frozen import FrozenDict, deep_freeze
from chatscope.services.runtime.auth import AuthSpec
from chatscope.services.runtime.context import AgentRuntimeContext
from chatscope.services.runtime.fallback import (
    ChainConfig,
    ChainMember,
    FallbackChain,
    FallbackChains,
)
from chatscope.services.runtime.observability.tracing import TraceParent
from chatscope.services.runtime.ports import HistoryStore
from chatscope.services.runtime.state import AgentRuntimeState, new_id
from chatscope.services.tools.ports import Approver, Tool
from chatscope.services.tools.toolset import ToolSelection, freeze_headers

__all__ = ["BuildContext", "ScopeFactory", "ScopeRequest", "ScopeTools"]


_NO_ENTRIES = FrozenDict()
"""The empty mapping a request's mapping fields default to (immutable, so one serves all)."""


class BuildContext(Protocol):
    """The containers' context factory: fresh history, telemetry, tools and adapter per call."""

    def __call__(
        self,
        *,
        state: AgentRuntimeState,
        auth: AuthSpec,
        ephemerals: EphemeralSettings,
        system_prompt: str | None,
        allowed_tools: tuple[str, ...] | None,
        tool_selection: ToolSelection,
        owner: str | None = None,
        history: HistoryStore | None = None,
        trace_parent: TraceParent | None = None,
        fallback: FallbackChain | None = None,
    ) -> AgentRuntimeContext:
        """Build one context."""
        ...


class ScopeTools(Protocol):
    """Adds the tools that need the built scope itself, such as a foreground chat's `task`.

    `names` are the tools it may add: an allow-list may name them, and they are left out of the
    allow-list the plain registry is narrowed by.
    """

    @property
    def names(self) -> frozenset[str]:
        """Every tool name this may add."""
        ...

    def bind(
        self,
        context: AgentRuntimeContext,
        *,
        scopes: ScopeFactory,
        allowed_tools: tuple[str, ...] | None,
    ) -> AgentRuntimeContext:
        """`context`, or a copy whose registry also holds the tools bound to it."""
        ...


# Not slotted: `create` fills a new request's `__dict__` in one step, and an unset field reads
# its default from the class (a slotted frozen request costs one `object.__setattr__` a field).
@dataclass(frozen=True)
class ScopeRequest:
    """What a caller may choose for a scope; unset fields come from settings.

    `tools` are added to this scope's tools; `mcp_headers` (server name to headers, e.g. a
    user's token) go with this scope's calls to those MCP servers only; `mcp_servers` limits
    the MCP servers it may use; `approver` approves calls of tools that need approval (a
    subagent without one asks its parent's). `owner` names whose session `session_id` is (a
    server's tenant): the scope opens that owner's session only. `history` is a history the
    caller opened itself (say, a stateless request's earlier messages, in memory), used instead
    of opening the session's; it belongs to this one scope. `trace_parent` is the span this
    scope's turns are traced under (a subagent's: the parent's `task` call). `fallback` is the
    chain a subagent profile asks for (its own endpoint first, then these members).
    """

    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    key_file: Path | None = None
    api_key_env: str | None = None
    key_variables: tuple[str, ...] | None = None
    auth_required: bool | None = None
    session_id: str | None = None
    model_params: FrozenDict = _NO_ENTRIES
    ephemeral_overrides: FrozenDict = _NO_ENTRIES
    system_prompt: str | None = None
    allowed_tools: tuple[str, ...] | None = None
    subagent_name: str | None = None
    tools: tuple[Tool, ...] = ()
    mcp_headers: FrozenDict = _NO_ENTRIES
    mcp_servers: tuple[str, ...] | None = None
    approver: Approver | None = field(default=None, compare=False)
    owner: str | None = None
    history: HistoryStore | None = field(default=None, compare=False, repr=False)
    trace_parent: TraceParent | None = field(default=None, compare=False, repr=False)
    fallback: FallbackSettings | None = None

    @classmethod
    def from_preset(cls, preset: Preset, **fields: Any) -> ScopeRequest:
        """A request for a named OpenAI-compatible endpoint; `fields` override the preset's.

        The key is read only from the preset's own variable: an OpenAI key must never travel
        to another company's server because a preset's variable was unset.
        """
        fields["provider"] = fields.get("provider") or preset.provider
        fields["base_url"] = fields.get("base_url") or preset.base_url
        fields["model"] = fields.get("model") or preset.default_model
        if fields["model"] is None:
            raise ConfigurationError(
                f"preset {preset.name!r} serves whatever model the server was started with: "
                "name it with --model"
            )
        fields.setdefault("key_variables", preset.key_variables)
        fields.setdefault("auth_required", preset.auth_required)
        return cls.create(**fields)

    @classmethod
    def create(cls, **fields: Any) -> ScopeRequest:
        """A request with its mappings frozen and plain-text keys and headers made secrets
        (a mapping not given, or given empty, is the field's empty default)."""
        if not _REQUEST_FIELDS.issuperset(fields):
            unknown = sorted(fields.keys() - _REQUEST_FIELDS)
            raise TypeError(f"ScopeRequest has no field {', '.join(unknown)}")
        if not _NORMALISED_FIELDS.isdisjoint(fields):
            _normalise(fields)
        if cls is not ScopeRequest:
            return cls(**fields)
        # Equal to `cls(**fields)`: every field is given or its class default, none validated
        # by `__init__`, and a frozen request is never written after this.
        request = object.__new__(cls)
        request.__dict__.update(fields)
        return request


def _normalise(fields: dict[str, Any]) -> None:
    """Freeze a request's mappings and sequences, and make a plain-text key a secret."""
    for name in _NORMALISED_FIELDS & fields.keys():
        fields[name] = _NORMALISERS[name](fields[name])


def _frozen_mapping(value: Any) -> FrozenDict:
    """Deeply frozen; an empty or missing mapping is the field's shared empty default."""
    return deep_freeze(value) if value else _NO_ENTRIES


def _frozen_headers(value: Any) -> FrozenDict:
    return freeze_headers(value) if value else _NO_ENTRIES


def _tuple_unless_none(value: Any) -> tuple[Any, ...] | None:
    return None if value is None else tuple(value)


def _secret_if_text(value: Any) -> Any:
    return SecretStr(value) if isinstance(value, str) else value


_REQUEST_FIELDS = frozenset(item.name for item in dataclasses.fields(ScopeRequest))
_NORMALISERS: Mapping[str, Callable[[Any], Any]] = MappingProxyType(
    {
        "model_params": _frozen_mapping,
        "ephemeral_overrides": _frozen_mapping,
        "mcp_headers": _frozen_headers,
        "tools": _tuple_unless_none,
        "mcp_servers": _tuple_unless_none,
        "api_key": _secret_if_text,
    }
)
"""How `create` turns each field that needs it into the request's frozen form."""
_NORMALISED_FIELDS = frozenset(_NORMALISERS)


def _session_parts(request: ScopeRequest) -> dict[str, Any]:
    """The request's owner, history and trace parent, when it names them: a `BuildContext`
    written before they existed keeps working for requests that do not."""
    if request.owner is None and request.history is None and request.trace_parent is None:
        return {}
    parts = {
        "owner": request.owner,
        "history": request.history,
        "trace_parent": request.trace_parent,
    }
    return {name: value for name, value in parts.items() if value is not None}


_DEFAULT_REQUEST = ScopeRequest()
"""What `foreground()` asks for without a request: everything from the settings (frozen)."""
_DEFAULT_SELECTION = ToolSelection()
"""The tool selection of a request that selects nothing (frozen)."""


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """Where a scope's calls go and how they authenticate."""

    provider: str
    model: str
    base_url: str | None
    auth: AuthSpec


def _endpoint_of(request: ScopeRequest, settings: Settings) -> _Endpoint:
    """The request's provider, model, base URL and auth, each from the settings when unset."""
    provider = request.provider or settings.provider
    section = settings.providers.get(provider)
    auth = AuthSpec.for_provider(
        provider,
        api_key=request.api_key or section.api_key,
        key_file=request.key_file or section.key_file,
        required=section.auth_required if request.auth_required is None else request.auth_required,
    )
    if request.key_variables is not None:
        auth = dataclasses.replace(auth, env_vars=request.key_variables)
    if request.api_key_env:
        auth = dataclasses.replace(auth, env_vars=(request.api_key_env, *auth.env_vars))
    model = request.model or settings.model_for(provider)
    return _Endpoint(provider, model, request.base_url or section.base_url, auth)


_ENDPOINTS_KEPT = 64
"""How many endpoints a `ScopeFactory` keeps worked out; past that it starts again."""


def _endpoint_key(request: ScopeRequest) -> tuple[object, ...]:
    """The fields of a request (without a key of its own) that choose its endpoint."""
    return (
        request.provider,
        request.model,
        request.base_url,
        request.key_file,
        request.api_key_env,
        request.key_variables,
        request.auth_required,
    )


def _selection_of(request: ScopeRequest, parent_approver: Approver | None) -> ToolSelection:
    """What the request adds to the application's tools (the one empty selection if nothing)."""
    approver = request.approver or parent_approver
    selects = request.tools or request.mcp_headers or request.mcp_servers is not None
    if not selects and approver is None:
        return _DEFAULT_SELECTION
    return ToolSelection(
        extra=request.tools,
        mcp_headers=request.mcp_headers,
        mcp_servers=request.mcp_servers,
        approver=approver,
    )


def _mark_new_session(history: HistoryStore) -> None:
    """Tell a store that offers `mark_new_session` (see `HistoryStore`) that its session id
    was made for this scope just now, so nothing can be stored under it yet."""
    mark: Callable[[], None] | None = getattr(history, "mark_new_session", None)
    if mark is not None:
        mark()


class ScopeFactory:
    """Builds foreground and subagent runtime contexts from one settings snapshot.

    `scope_tools`, when given, binds tools to each scope once it is built; it receives this
    factory, so the `task` tool builds its subagents exactly as its parent was built.

    A scope gets a fallback chain from its request (a subagent profile's `[fallback]`) or, a
    foreground scope on the default endpoint (no provider, model, endpoint or key of its own
    that differs from the settings' defaults), from the settings' `fallback`. Its state is
    taken from `chains`, the application's (a fresh one per scope without it).
    """

    __slots__ = ("_build_context", "_chains", "_endpoints", "_scope_tools", "_settings")

    def __init__(
        self,
        settings: Settings,
        build_context: BuildContext,
        scope_tools: ScopeTools | None = None,
        chains: FallbackChains | None = None,
    ) -> None:
        self._settings = settings
        self._build_context = build_context
        self._scope_tools = scope_tools
        self._chains = chains
        # Endpoints worked out for requests without a key of their own, by what chose them.
        self._endpoints: dict[tuple[object, ...], _Endpoint] = {}

    def foreground(self, request: ScopeRequest | None = None) -> AgentRuntimeContext:
        """A fresh top-level scope: new runtime id, new history, new telemetry binding."""
        request = request or _DEFAULT_REQUEST
        return self._build(request, ephemerals=self._settings.ephemeral)

    def subagent(self, request: ScopeRequest, parent: AgentRuntimeContext) -> AgentRuntimeContext:
        """A fresh child scope of `parent`; the parent is read, never changed."""
        return self.subagent_of(
            request,
            parent_runtime_id=parent.runtime_id,
            ephemerals=parent.ephemerals,
            approver=parent.tools.approver,
        )

    def subagent_of(
        self,
        request: ScopeRequest,
        *,
        parent_runtime_id: str,
        ephemerals: EphemeralSettings,
        approver: Approver | None = None,
    ) -> AgentRuntimeContext:
        """A fresh child scope of a parent known by what a child takes of it: its runtime id,
        its ephemerals and its approver (a remote worker's subagent has no live parent, and
        no approver unless one is given)."""
        return self._build(
            request,
            parent_runtime_id=parent_runtime_id,
            parent_approver=approver,
            ephemerals=ephemerals,
        )

    def _build(
        self,
        request: ScopeRequest,
        *,
        parent_runtime_id: str | None = None,
        parent_approver: Approver | None = None,
        ephemerals: EphemeralSettings,
    ) -> AgentRuntimeContext:
        endpoint = self._endpoint(request)
        state = AgentRuntimeState(
            runtime_id=new_id(),
            session_id=request.session_id or new_id(),
            provider=endpoint.provider,
            model=endpoint.model,
            base_url=endpoint.base_url,
            auth_type=endpoint.auth.auth_type,
            model_params=request.model_params,
            parent_runtime_id=parent_runtime_id,
            subagent_name=request.subagent_name,
        )
        context = self._build_context(
            state=state,
            auth=endpoint.auth,
            ephemerals=ephemerals.with_overrides(request.ephemeral_overrides),
            system_prompt=request.system_prompt,
            allowed_tools=self._plain_tools(request.allowed_tools),
            tool_selection=_selection_of(request, parent_approver),
            **_session_parts(request),
            **self._fallback_parts(request, state, endpoint.auth),
        )
        if request.session_id is None and request.history is None:
            _mark_new_session(context.history)
        if self._scope_tools is None:
            return context
        return self._scope_tools.bind(context, scopes=self, allowed_tools=request.allowed_tools)

    def _endpoint(self, request: ScopeRequest) -> _Endpoint:
        """The request's endpoint. One chosen without a key of its own depends only on the
        (frozen) settings and the fields that chose it, so it is worked out once; at most
        `_ENDPOINTS_KEPT` are kept, in this factory only."""
        if request.api_key is not None:
            return _endpoint_of(request, self._settings)
        key = _endpoint_key(request)
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            if len(self._endpoints) >= _ENDPOINTS_KEPT:
                self._endpoints.clear()
            endpoint = self._endpoints[key] = _endpoint_of(request, self._settings)
        return endpoint

    def _default_endpoint(self) -> _Endpoint:
        """The settings' default endpoint."""
        return self._endpoint(_DEFAULT_REQUEST)

    def _fallback_parts(
        self, request: ScopeRequest, state: AgentRuntimeState, auth: AuthSpec
    ) -> dict[str, Any]:
        """`{"fallback": chain}` for a scope that has a chain, else nothing (so that a
        `BuildContext` written before chains existed keeps working)."""
        spec = request.fallback
        foreground = state.parent_runtime_id is None
        if spec is None and foreground and self._settings.fallback.mode != "off":
            spec = self._settings.fallback if self._on_default_endpoint(request, state) else None
        if spec is None or spec.mode == "off":
            return {}
        own = ChainMember(state.provider, state.model, state.base_url, auth)
        config = ChainConfig.create(spec, own=own, settings=self._settings)
        chains = self._chains if self._chains is not None else FallbackChains()
        return {"fallback": chains.chain(config)}

    def _on_default_endpoint(self, request: ScopeRequest, state: AgentRuntimeState) -> bool:
        """Whether the scope runs on the settings' default provider, model and endpoint, with
        the default key sources: the scopes the settings' fallback chain is for."""
        own_key = (request.api_key, request.key_file, request.api_key_env, request.key_variables)
        if any(source is not None for source in own_key) or request.auth_required is not None:
            return False
        default = self._default_endpoint()
        return (state.provider, state.model, state.base_url) == (
            default.provider,
            default.model,
            default.base_url,
        )

    def _plain_tools(self, allowed: tuple[str, ...] | None) -> tuple[str, ...] | None:
        """The allow-list without the names `scope_tools` binds itself."""
        if allowed is None or self._scope_tools is None:
            return allowed
        bound = self._scope_tools.names
        return tuple(name for name in allowed if name not in bound)
