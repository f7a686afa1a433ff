"""The frozen runtime context of one chat or subagent (REQ-STAT6-002).

`AgentRuntimeContext` bundles a scope's `AgentRuntimeState` with its own history, telemetry,
tools and a read-only provider view. It is immutable: nothing offers `set_active_provider`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from chatscope.config.ephemeral import EphemeralSettings
from chatscope.errors import MissingProviderRuntimeError, UnknownProviderError
from chatscope.services.runtime.auth import AuthSpec
from chatscope.services.runtime.fallback import FallbackChain, ScopeFallback
from chatscope.services.runtime.observability.telemetry import RuntimeTelemetry
from chatscope.services.runtime.observability.tracing import NO_TRACING, TraceParent, Tracing
from chatscope.services.runtime.ports import (
    HistoryOpener,
    HistoryStore,
    ModelProvider,
    TelemetrySink,
)
from chatscope.services.runtime.state import AgentRuntimeState
from chatscope.services.tools.ports import ToolContext
from chatscope.services.tools.registry import ToolRegistry
from chatscope.services.tools.toolset import ToolSelection

__all__ = [
    "AgentRuntimeContext",
    "BuildTools",
    "ContextAssembler",
    "ProviderCatalog",
    "ProviderView",
    "create_agent_runtime_context",
    "tool_context_of",
]


@dataclass(frozen=True, slots=True)
class ProviderView:
    """Read-only access to a scope's provider adapter: there is deliberately no setter."""

    _provider: ModelProvider

    def get_active_provider(self) -> ModelProvider:
        """The adapter this scope talks to."""
        return self._provider

    @property
    def name(self) -> str:
        """The adapter's provider name."""
        return self._provider.name


@dataclass(frozen=True, slots=True)
class AgentRuntimeContext:
    """Everything one chat or subagent owns, frozen for the scope's life.

    `fallback` is the scope's view of its fallback chain, when it has one: the chain decides
    which endpoint answers each model call (`chatscope.services.runtime.fallback`).
    """

    state: AgentRuntimeState
    ephemerals: EphemeralSettings
    history: HistoryStore
    telemetry: RuntimeTelemetry
    provider: ProviderView
    tools: ToolRegistry
    auth: AuthSpec
    system_prompt: str | None = None
    fallback: ScopeFallback | None = None

    @property
    def runtime_id(self) -> str:
        """The scope's runtime id (that of its state)."""
        return self.state.runtime_id

    def get_ephemeral_setting(self, name: str) -> float | int | str | None:
        """An ephemeral setting by its seed name, e.g. `compression-threshold`."""
        return self.ephemerals.get(name)


def create_agent_runtime_context(
    *,
    state: AgentRuntimeState | None = None,
    history: HistoryStore | None = None,
    telemetry_sink: TelemetrySink | None = None,
    providers: ProviderCatalog | None = None,
    tools: ToolRegistry | None = None,
    auth: AuthSpec | None = None,
    ephemerals: EphemeralSettings | None = None,
    system_prompt: str | None = None,
    allowed_tools: tuple[str, ...] | None = None,
    tracing: Tracing = NO_TRACING,
    trace_parent: TraceParent | None = None,
    fallback: FallbackChain | None = None,
) -> AgentRuntimeContext:
    """Assemble a context from explicit parts; raises naming every missing part (REQ-SP4-001).

    `ephemerals` defaults to the seed defaults, which are constants, not shared state;
    `allowed_tools` narrows the tool registry (a subagent profile's allow-list). `tracing`
    makes the scope's tracer, whose turns are children of `trace_parent` when one is given (a
    subagent's, the `task` call that started it); by default nothing is traced. `fallback` is
    the chain the scope's model calls go through, its own endpoint first.
    """
    if (
        state is None
        or history is None
        or telemetry_sink is None
        or providers is None
        or tools is None
        or auth is None
    ):
        parts: dict[str, object] = {"state": state, "history": history, "tools": tools}
        parts |= {"telemetry_sink": telemetry_sink, "providers": providers, "auth": auth}
        missing = [name for name, value in parts.items() if value is None]
        raise MissingProviderRuntimeError(missing, runtime_id=state.runtime_id if state else None)
    adapter = providers.create(state.provider)
    return AgentRuntimeContext(
        state=state,
        ephemerals=ephemerals if ephemerals is not None else EphemeralSettings(),
        history=history,
        telemetry=RuntimeTelemetry(
            telemetry_sink, state, tracing.scope_tracer(state, parent=trace_parent)
        ),
        provider=ProviderView(adapter),
        tools=tools.restricted_to(allowed_tools),
        auth=auth,
        system_prompt=system_prompt,
        fallback=None if fallback is None else ScopeFallback(fallback, adapter, providers.create),
    )


class ContextAssembler:
    """Builds each scope's context from the application's parts, taken once.

    The telemetry sink, tracing and provider catalog are the application's, the same for every
    scope. A foreground scope opens its session's history with `open_history` (in memory, or
    the stored session of the database), as `owner`'s session when one is named; a subagent's
    history is always its own, opened with `open_subagent_history`, so a subagent never writes
    into its parent's session. A `history` the caller opened itself (a stateless request's
    earlier messages, in memory) is used as it is. `build_tools` makes the scope's tool
    registry for its caller identity and the tools its request selected. The openers and
    `build_tools` are called for each scope (fresh objects every time); they are usually
    providers, so overriding them takes effect at the next scope.
    """

    __slots__ = (
        "_build_tools",
        "_open_history",
        "_open_subagent_history",
        "_providers",
        "_sink",
        "_tracing",
    )

    def __init__(
        self,
        *,
        open_history: HistoryOpener,
        open_subagent_history: HistoryOpener,
        build_tools: BuildTools,
        telemetry_sink: TelemetrySink,
        providers: ProviderCatalog,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self._open_history = open_history
        self._open_subagent_history = open_subagent_history
        self._build_tools = build_tools
        self._sink = telemetry_sink
        self._providers = providers
        self._tracing = tracing

    def __call__(
        self,
        *,
        state: AgentRuntimeState,
        tool_selection: ToolSelection,
        owner: str | None = None,
        history: HistoryStore | None = None,
        **parts: Any,
    ) -> AgentRuntimeContext:
        """A fresh context for `state`; the other `parts` are those of
        `create_agent_runtime_context`."""
        if history is None:
            history = _open_history(state, self._open_history, self._open_subagent_history, owner)
        tools = self._build_tools(caller=tool_context_of(state), selection=tool_selection)
        return create_agent_runtime_context(
            state=state,
            history=history,
            tools=tools,
            telemetry_sink=self._sink,
            providers=self._providers,
            tracing=self._tracing,
            **parts,
        )


def _open_history(
    state: AgentRuntimeState,
    open_history: HistoryOpener,
    open_subagent_history: HistoryOpener,
    owner: str | None,
) -> HistoryStore:
    session_id, provider, model = state.session_id, state.provider, state.model
    if state.parent_runtime_id:
        return open_subagent_history(session_id=session_id, provider=provider, model=model)
    if owner is None:
        # An opener written before owners existed keeps working for scopes that name none.
        return open_history(session_id=session_id, provider=provider, model=model)
    return open_history(session_id=session_id, provider=provider, model=model, owner=owner)


class BuildTools(Protocol):
    """The containers' tools factory: a fresh registry for one scope."""

    def __call__(self, *, caller: ToolContext, selection: ToolSelection) -> ToolRegistry:
        """The registry of the scope `caller`."""
        ...


def tool_context_of(state: AgentRuntimeState) -> ToolContext:
    """What a tool is told of the scope calling it: identity only, never a credential."""
    return ToolContext(
        session_id=state.session_id,
        runtime_id=state.runtime_id,
        provider=state.provider,
        model=state.model,
        parent_runtime_id=state.parent_runtime_id,
        subagent_name=state.subagent_name,
    )


class ProviderCatalog:
    """The provider adapters a scope may be built with, created fresh per scope by name."""

    __slots__ = ("_create", "names")

    def __init__(self, create: Callable[[str], ModelProvider], names: Iterable[str]) -> None:
        self._create = create
        self.names = tuple(names)

    @classmethod
    def of(cls, *adapters: ModelProvider) -> ProviderCatalog:
        """A catalog serving these ready-made adapters (handy in tests and embedding apps)."""
        by_name = {adapter.name: adapter for adapter in adapters}
        return cls(by_name.__getitem__, by_name)

    @classmethod
    def of_factories(cls, factories: Mapping[str, Callable[[], ModelProvider]]) -> ProviderCatalog:
        """A catalog calling the factory of a scope's provider name for each adapter (the
        containers' adapter `Factory` providers)."""
        table = dict(factories)
        return cls(lambda name: table[name](), table)

    def create(self, name: str) -> ModelProvider:
        """A provider adapter for `name`; unknown names raise `UnknownProviderError`."""
        if name not in self.names:
            raise UnknownProviderError(name, self.names)
        return self._create(name)
