"""Running subagents to the end: the engine of the `task` tool (REQ-STAT6-003).

A `SubagentRunner` belongs to one parent scope. Every run gets a fresh `SubAgentScope` from the
`ScopeFactory` that built the parent and a fresh `ChatSession`; the parent is only read. A run
always ends in a `TaskResult`: errors, timeouts and cancellation become terminate reasons, never
exceptions out of the parent's tool loop, and text streamed before a timeout is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from chatscope.errors import ToolError, redact_secrets
from chatscope.services.chat import ChatSession
from chatscope.services.events import (
    ChatEvent,
    CompletedTurn,
    FinishReason,
    TextDelta,
    TurnDone,
    UsageEvent,
)
from chatscope.services.frozen import FrozenDict, deep_freeze, thaw
from chatscope.services.messages import Usage
from chatscope.services.runtime.context import AgentRuntimeContext
from chatscope.services.runtime.scopes import ScopeFactory
from chatscope.services.subagents.emit import EMIT_VALUE, EmitValueTool
from chatscope.services.subagents.profile import SubagentProfile, SubAgentScope
from chatscope.services.subagents.request import TaskRequest, TaskResult, TerminateReason

__all__ = [
    "EMIT_VALUE",
    "EmitValueTool",
    "EventListener",
    "LocalExecutor",
    "OpenChat",
    "RunProgress",
    "SubagentExecutor",
    "SubagentLaunch",
    "SubagentRun",
    "StreamedSoFar",
    "SubagentRunner",
    "TaskRequest",
    "TaskResult",
    "TerminateReason",
    "drive_scope",
]


class OpenChat(Protocol):
    """The containers' `chat_session` factory: a chat over `context` with its own turn limit."""

    def __call__(self, *, context: AgentRuntimeContext, max_turns: int) -> ChatSession:
        """A new chat session."""
        ...


EventListener = Callable[[ChatEvent], None]


@dataclass(frozen=True, slots=True)
class SubagentLaunch:
    """One subagent to start, as its parent's runner knows it: an executor's whole input.

    `limit` is the parent's semaphore: a run holds a slot while it runs, and its timeout
    starts once it has one.
    """

    parent: AgentRuntimeContext
    profile: SubagentProfile
    request: TaskRequest
    scopes: ScopeFactory
    open_chat: OpenChat
    limit: asyncio.Semaphore


class RunProgress(Protocol):
    """What a started run knows so far: its runtime id, and its result if it ended now."""

    @property
    def runtime_id(self) -> str:
        """The subagent scope's runtime id ("" until a remote run has built its scope)."""
        ...

    def ended(self, reason: TerminateReason, error: str | None = None) -> TaskResult:
        """The result of a run cut short: what it streamed until now."""
        ...


class SubagentExecutor(Protocol):
    """Where subagents run: in this process (`LocalExecutor`) or elsewhere (a Ray cluster).

    `start` is called inside the event loop and returns at once; the run always ends in a
    `TaskResult`, never an exception.
    """

    def start(self, launch: SubagentLaunch) -> SubagentRun:
        """Start one subagent run."""
        ...


class LocalExecutor:
    """Runs each subagent as an asyncio task of this process, in a scope built here."""

    __slots__ = ()

    def start(self, launch: SubagentLaunch) -> SubagentRun:
        """Build the subagent's scope now and start running it."""
        profile = launch.profile
        scope = SubAgentScope.create(profile.name, profile, launch.parent, scopes=launch.scopes)
        progress = _Progress(scope, launch.request)
        task = asyncio.get_running_loop().create_task(
            _execute(launch, progress), name=f"subagent {profile.name} {progress.runtime_id}"
        )
        return SubagentRun(task, progress, scope=scope)


class SubagentRunner:
    """Runs subagents of one parent scope, at most `max_concurrent` at a time.

    The limit belongs to the runner, so to its parent scope: nothing is shared between
    conversations. A run waiting for a free slot has not started its timeout yet. Where the
    runs happen is the `executor`'s business (in this process by default).
    """

    __slots__ = ("_executor", "_limit", "_open_chat", "_parent", "_profiles", "_scopes")

    def __init__(
        self,
        parent: AgentRuntimeContext,
        *,
        scopes: ScopeFactory,
        profiles: Mapping[str, SubagentProfile],
        open_chat: OpenChat,
        max_concurrent: int,
        executor: SubagentExecutor | None = None,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self._parent = parent
        self._scopes = scopes
        self._profiles = profiles
        self._open_chat = open_chat
        self._limit = asyncio.Semaphore(max_concurrent)
        self._executor: SubagentExecutor = executor or LocalExecutor()

    @property
    def parent(self) -> AgentRuntimeContext:
        """The scope whose subagents this runs."""
        return self._parent

    @property
    def profiles(self) -> Mapping[str, SubagentProfile]:
        """The subagents it can run, by name."""
        return self._profiles

    @property
    def executor(self) -> SubagentExecutor:
        """Where its subagents run."""
        return self._executor

    def profile(self, name: str) -> SubagentProfile:
        """The profile called `name`; an unknown name raises `ToolError` listing the known."""
        profile = self._profiles.get(name)
        if profile is None:
            known = ", ".join(self._profiles) or "none"
            raise ToolError(f"unknown subagent {name!r}; available subagents: {known}")
        return profile

    async def run(self, request: TaskRequest) -> TaskResult:
        """Run one subagent to the end and return its result."""
        return await self.start(request).result()

    def start(self, request: TaskRequest) -> SubagentRun:
        """Start running a subagent on the executor (call inside the event loop)."""
        launch = SubagentLaunch(
            parent=self._parent,
            profile=self.profile(request.subagent_name),
            request=request,
            scopes=self._scopes,
            open_chat=self._open_chat,
            limit=self._limit,
        )
        return self._executor.start(launch)


async def _execute(launch: SubagentLaunch, progress: _Progress) -> TaskResult:
    try:
        async with launch.limit:
            progress.streamed.start()
            return await _drive(launch.open_chat, progress)
    except asyncio.CancelledError:
        return progress.ended(TerminateReason.CANCELLED)


async def drive_scope(
    scope: SubAgentScope,
    request: TaskRequest,
    open_chat: OpenChat,
    listener: EventListener | None = None,
) -> TaskResult:
    """Run `request` in the built `scope` to its end, as a local run does once it has a slot.

    `listener` sees every event the run streams (a remote worker sends them back).
    """
    progress = _Progress(scope, request, listener)
    progress.streamed.start()
    return await _drive(open_chat, progress)


class SubagentRun:
    """A started subagent: the run that `result` waits for or `cancel` stops.

    `scope` is the subagent's scope when it was built in this process (None on a remote
    executor).
    """

    __slots__ = ("_progress", "_task", "scope")

    def __init__(
        self,
        task: asyncio.Task[TaskResult],
        progress: RunProgress,
        *,
        scope: SubAgentScope | None = None,
    ) -> None:
        self.scope = scope
        self._task = task
        self._progress = progress

    @property
    def runtime_id(self) -> str:
        """The subagent scope's runtime id ("" until a remote run has built its scope)."""
        return self._progress.runtime_id

    def cancel(self) -> None:
        """Stop the run; `result` then reports `CANCELLED` with the text streamed so far."""
        self._task.cancel()

    async def result(self) -> TaskResult:
        """Wait for the run's result. If the waiting task is cancelled, the run is stopped too."""
        try:
            return await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if self._task.cancelled() and not _caller_is_cancelled():
                return self._progress.ended(TerminateReason.CANCELLED)
            self._task.cancel()
            await asyncio.wait({self._task})
            raise


def _caller_is_cancelled() -> bool:
    caller = asyncio.current_task()
    return caller is not None and caller.cancelling() > 0


class StreamedSoFar:
    """What a run has streamed: its text and usage, and since when it has run, so that a run
    cut short (a timeout, a cancellation, an error, a dead worker) still reports them."""

    __slots__ = ("_started", "chunks", "usage")

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.usage = Usage()
        self._started: float | None = None

    def start(self) -> None:
        """The run got its slot: its duration counts from now."""
        self._started = time.perf_counter()

    def observe(self, event: ChatEvent) -> None:
        """Keep streamed text and usage."""
        if isinstance(event, TextDelta):
            self.chunks.append(event.text)
        elif isinstance(event, UsageEvent):
            self.usage = self.usage + event.usage

    def text(self) -> str:
        """The text streamed so far."""
        return "".join(self.chunks)

    def elapsed_ms(self) -> float:
        """Milliseconds since the run started (0 if it never did)."""
        if self._started is None:
            return 0.0
        return (time.perf_counter() - self._started) * 1000


class _Progress:
    """What one run has produced so far; every way a run ends reads its result from here."""

    __slots__ = ("listener", "max_turns", "request", "scope", "streamed", "timeout")

    def __init__(
        self, scope: SubAgentScope, request: TaskRequest, listener: EventListener | None = None
    ) -> None:
        self.scope = scope
        self.request = request
        self.listener = listener
        self.max_turns, self.timeout = run_limits(scope.profile, request)
        self.streamed = StreamedSoFar()

    @property
    def runtime_id(self) -> str:
        """The scope's runtime id."""
        return self.scope.runtime_context.runtime_id

    def observe(self, event: ChatEvent) -> None:
        """Keep streamed text and usage, so that a run cut short loses none of it."""
        self.streamed.observe(event)
        if self.listener is not None:
            self.listener(event)

    def completed(self, turn: CompletedTurn) -> TaskResult:
        """The result of a turn that ran to its end."""
        reason = (
            TerminateReason.MAX_TURNS
            if turn.finish_reason is FinishReason.MAX_TURNS
            else TerminateReason.GOAL
        )
        return self._result(
            reason, turn.text, turn.usage, turn.model_calls, None, deep_freeze(turn.output)
        )

    def ended(self, reason: TerminateReason, error: str | None = None) -> TaskResult:
        """The result of a run cut short: the text and usage streamed until now."""
        return self._result(reason, self.streamed.text(), self.streamed.usage, None, error)

    def _result(
        self,
        reason: TerminateReason,
        text: str,
        usage: Usage,
        model_calls: int | None,
        error: str | None,
        output: Any = None,
    ) -> TaskResult:
        state = self.scope.runtime_context.state
        return TaskResult(
            subagent_name=self.scope.name,
            runtime_id=state.runtime_id,
            parent_runtime_id=state.parent_runtime_id,
            provider=state.provider,
            model=state.model,
            terminate_reason=reason,
            final_message=text,
            emitted_values=_emitted_values(self.scope.runtime_context),
            usage=usage,
            model_calls=model_calls,
            duration_ms=self.streamed.elapsed_ms(),
            error=error,
            output=output,
        )


def run_limits(profile: SubagentProfile, request: TaskRequest) -> tuple[int, float | None]:
    """A run's turn limit and timeout: the tighter of the profile's and the request's."""
    max_turns = min(profile.max_turns, request.max_turns or profile.max_turns)
    return max_turns, _tightest(profile.timeout_seconds, request.timeout_seconds)


async def _drive(open_chat: OpenChat, progress: _Progress) -> TaskResult:
    deadline = asyncio.timeout(progress.timeout)
    try:
        chat = open_chat(context=progress.scope.runtime_context, max_turns=progress.max_turns)
        async with deadline:
            turn = await _stream(chat, progress)
    except Exception as exc:
        if isinstance(exc, TimeoutError) and deadline.expired():
            return progress.ended(TerminateReason.TIMEOUT)
        return progress.ended(TerminateReason.ERROR, describe_error(exc))
    return progress.completed(turn)


async def _stream(chat: ChatSession, progress: _Progress) -> CompletedTurn:
    schema = progress.scope.profile.output_schema
    output_type = thaw(schema) if schema is not None else None
    turns = chat.stream(progress.request.prompt(), output_type=output_type)
    async with contextlib.aclosing(turns) as events:
        async for event in events:
            if isinstance(event, TurnDone):
                return event.turn
            progress.observe(event)
    raise RuntimeError("the subagent's chat stream ended without TurnDone")


def describe_error(exc: BaseException) -> str:
    """An error as a run's `error` text: its type and message, secrets redacted."""
    return redact_secrets(f"{type(exc).__name__}: {exc}")


def _emitted_values(context: AgentRuntimeContext) -> FrozenDict:
    tool = context.tools.get(EMIT_VALUE)
    return tool.values() if isinstance(tool, EmitValueTool) else FrozenDict()


def _tightest(*limits: float | None) -> float | None:
    given = [limit for limit in limits if limit is not None and math.isfinite(limit)]
    return min(given) if given else None
