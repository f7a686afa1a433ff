"""Applications with subagent profiles and fake providers, for the subagent and task tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dependency_injector import providers

from chatscope.containers.application import ApplicationContainer
from chatscope.services.events import ProviderEvent, TextDelta, UsageEvent
from chatscope.services.messages import Usage
from chatscope.services.runtime.context import AgentRuntimeContext
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.services.runtime.ports import ModelProvider
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.services.subagents.profile import SubagentProfile
from chatscope.services.subagents.task import SubagentRunner
from chatscope.services.subagents.task_tools import TaskTool
from chatscope.testing import build_test_app

__all__ = ["StallingProvider", "events_of", "foreground_with_runner", "profile", "subagent_app"]


def profile(name: str = "helper", **options: Any) -> SubagentProfile:
    """A subagent profile on the `anthropic` fake unless told otherwise."""
    options.setdefault("provider", "anthropic")
    options.setdefault("model", f"{name}-model")
    return SubagentProfile.create(name=name, **options)


def subagent_app(
    *fakes: ModelProvider,
    workspace: Path,
    profiles: Sequence[SubagentProfile] = (),
    sink: RecordingSink | None = None,
    **settings: Any,
) -> ApplicationContainer:
    """A test application whose subagent profiles are `profiles` (no profile files needed)."""
    app = build_test_app(*fakes, workspace=workspace, **settings)
    by_name = MappingProxyType({item.name: item for item in profiles})
    app.subagent_profiles.override(providers.Object(by_name))
    if sink is not None:
        app.telemetry_sink.override(providers.Object(sink))
    return app


def foreground_with_runner(
    app: ApplicationContainer, request: ScopeRequest | None = None
) -> tuple[AgentRuntimeContext, SubagentRunner]:
    """A foreground scope and the runner of its `task` tool."""
    context = app.runtime.scopes().foreground(request)
    tool = context.tools.get("task")
    assert isinstance(tool, TaskTool), context.tools.names()
    return context, tool.runner


class StallingProvider:
    """Streams `chunks`, then stalls until cancelled; records whether its stream was closed."""

    def __init__(self, chunks: Sequence[str], *, name: str = "anthropic") -> None:
        self._name = name
        self._chunks = tuple(chunks)
        self.streaming = asyncio.Event()
        self.closed = 0
        self.invocations: list[ModelInvocation] = []

    @property
    def name(self) -> str:
        """The provider name this fake answers to."""
        return self._name

    async def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
        """Yield the chunks, then wait forever."""
        self.invocations.append(invocation)
        try:
            yield UsageEvent(Usage(7, 3))
            for chunk in self._chunks:
                yield TextDelta(chunk)
            self.streaming.set()
            await asyncio.Event().wait()
        finally:
            self.closed += 1


def events_of(sink: RecordingSink, runtime_id: str) -> list[tuple[str, Mapping[str, Any]]]:
    """The recorded events of one runtime scope."""
    return [(name, fields) for name, fields in sink.events if fields["runtime_id"] == runtime_id]
