"""Subagents run elsewhere: the frozen request a remote executor ships, and both ends of it.

The parent side builds no subagent scope: `describe_task` freezes what the subagent needs of
its parent into a `RemoteTask` (profile name, the `TaskRequest`, the parent's ephemerals as
plain data, the parent's runtime id and W3C trace context), never a key, a history, a
container or a live object. `RemoteProgress` keeps what streams back, so that a run cut short
on the parent side (cancelled, timed out, its worker dead) still reports what it produced.
The worker side builds a fresh scope from a `RemoteTask` with its own `ScopeFactory`
(`remote_scope`), exactly as a local run builds one under a live parent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chatscope.config.ephemeral import EphemeralSettings
from chatscope.errors import ToolError
from chatscope.services.events import ChatEvent
from chatscope.services.frozen import FrozenDict, deep_freeze, thaw
from chatscope.services.runtime.observability.tracing import TraceParent
from chatscope.services.runtime.scopes import ScopeFactory
from chatscope.services.subagents.profile import SubagentProfile, SubAgentScope
from chatscope.services.subagents.request import TaskRequest, TaskResult, TerminateReason
from chatscope.services.subagents.task import StreamedSoFar, SubagentLaunch, run_limits

__all__ = [
    "RemoteProgress",
    "RemoteTask",
    "describe_task",
    "limits_of",
    "remote_scope",
]


@dataclass(frozen=True, slots=True)
class RemoteTask:
    """What a remote worker gets to run one subagent: plain, frozen, picklable data only.

    `ephemerals` is the parent's ephemeral snapshot as plain values; `trace_context` the W3C
    trace context (`traceparent`, `tracestate`) of the parent's `task` call, if it is traced;
    `wanted_records` the telemetry events the parent's sink keeps (the worker builds and sends
    back only those).
    """

    profile_name: str
    request: TaskRequest
    parent_runtime_id: str
    ephemerals: FrozenDict = field(default_factory=FrozenDict)
    trace_context: FrozenDict = field(default_factory=FrozenDict)
    wanted_records: frozenset[str] = frozenset()

    def parent_ephemerals(self) -> EphemeralSettings:
        """The parent's ephemeral settings, validated again on the worker."""
        return EphemeralSettings.model_validate(thaw(self.ephemerals))


def describe_task(
    launch: SubagentLaunch,
    trace_context: Mapping[str, str],
    wanted_records: frozenset[str] = frozenset(),
) -> RemoteTask:
    """The `RemoteTask` of `launch`: what its parent scope lends the subagent, as plain data,
    and the telemetry events the parent wants back."""
    parent = launch.parent
    return RemoteTask(
        profile_name=launch.profile.name,
        request=launch.request,
        parent_runtime_id=parent.runtime_id,
        ephemerals=deep_freeze(parent.ephemerals.model_dump(mode="json", by_alias=False)),
        trace_context=deep_freeze(dict(trace_context)),
        wanted_records=wanted_records,
    )


def remote_scope(
    task: RemoteTask,
    *,
    scopes: ScopeFactory,
    profiles: Mapping[str, SubagentProfile],
    trace_parent: TraceParent | None = None,
) -> SubAgentScope:
    """A fresh subagent scope for `task`, built by the worker's own `ScopeFactory`.

    The profile is the worker's own of that name; an unknown name raises `ToolError`.
    """
    profile = profiles.get(task.profile_name)
    if profile is None:
        raise ToolError(f"unknown subagent {task.profile_name!r} on this worker")
    request = profile.scope_request(profile.name, trace_parent=trace_parent)
    # The parent's approver is a live object of another process: none crosses.
    context = scopes.subagent_of(
        request, parent_runtime_id=task.parent_runtime_id, ephemerals=task.parent_ephemerals()
    )
    return SubAgentScope(name=profile.name, profile=profile, runtime_context=context)


class RemoteProgress:
    """The parent side of a remote run: what streamed back, and its result if it ended now."""

    __slots__ = (
        "executor",
        "model",
        "node_id",
        "parent_runtime_id",
        "provider",
        "runtime_id",
        "streamed",
        "subagent_name",
    )

    def __init__(self, launch: SubagentLaunch, executor: str) -> None:
        self.subagent_name = launch.profile.name
        self.parent_runtime_id = launch.parent.runtime_id
        self.provider = launch.profile.provider
        self.model = launch.profile.model
        self.executor = executor
        self.runtime_id = ""
        self.node_id: str | None = None
        self.streamed = StreamedSoFar()

    def begun(self, *, runtime_id: str, provider: str, model: str, node_id: str | None) -> None:
        """The worker built the scope: its runtime id, endpoint and node."""
        self.runtime_id = runtime_id
        self.provider = provider
        self.model = model
        self.node_id = node_id

    def observe(self, event: ChatEvent) -> None:
        """Keep streamed text and usage, so that a run cut short loses none of it."""
        self.streamed.observe(event)

    def ended(self, reason: TerminateReason, error: str | None = None) -> TaskResult:
        """The result of a run cut short on this side: what streamed back until now."""
        return TaskResult(
            subagent_name=self.subagent_name,
            runtime_id=self.runtime_id,
            parent_runtime_id=self.parent_runtime_id,
            provider=self.provider,
            model=self.model,
            terminate_reason=reason,
            final_message=self.streamed.text(),
            emitted_values=FrozenDict(),
            usage=self.streamed.usage,
            model_calls=None,
            duration_ms=self.streamed.elapsed_ms(),
            error=error,
            executor=self.executor,
            node_id=self.node_id,
        )


def limits_of(launch: SubagentLaunch) -> tuple[int, float | None]:
    """The run's turn limit and timeout, as the worker will apply them."""
    return run_limits(launch.profile, launch.request)
