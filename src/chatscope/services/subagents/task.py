"""Running subagents to the end: the engine of the `task` tool (REQ-STAT6-003).

A `SubagentRunner` belongs to one parent scope. Every run gets a fresh `SubAgentScope` from the
`ScopeFactory` that built the parent and a fresh `ChatSession`; the parent is only read. A run
always ends in a `TaskResult`: errors, timeouts and cancellation become terminate reasons, never
exceptions out of the parent's tool loop, and text streamed before a timeout is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
from chatscope.services.subagents.profile import SubagentProfile, SubAgentScope
from chatscope.services.tools.ports import ToolContext, ToolDeclaration

__all__ = [
    "EMIT_VALUE",
    "EmitValueTool",
    "OpenChat",
    "SubagentRun",
    "SubagentRunner",
    "TaskRequest",
    "TaskResult",
    "TerminateReason",
]

EMIT_VALUE = "emit_value"


class TerminateReason(enum.StrEnum):
    """Why a subagent run ended."""

    GOAL = "GOAL"
    MAX_TURNS = "MAX_TURNS"
    TIMEOUT = "TIMEOUT"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"


class TaskRequest(BaseModel):
    """What the parent asks of a subagent. Limits given here can only tighten the profile's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subagent_name: str = Field(min_length=1)
    goal_prompt: str = Field(min_length=1)
    context: str | None = None
    max_turns: int | None = Field(None, ge=1)
    timeout_seconds: float | None = Field(None, gt=0, allow_inf_nan=False)

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> TaskRequest:
        """The request a model's `task` call describes; bad arguments raise `ToolError`."""
        try:
            return cls.model_validate(dict(arguments))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'arguments'}: {error['msg']}"
                for error in exc.errors()
            )
            raise ToolError(f"invalid task arguments: {problems}") from None

    def prompt(self) -> str:
        """The first user message the subagent sees."""
        if not self.context:
            return self.goal_prompt
        return f"Context:\n{self.context}\n\nGoal:\n{self.goal_prompt}"


@dataclass(frozen=True, slots=True)
class TaskResult:
    """How a subagent run ended, what it said and emitted, and what it cost.

    `final_message` is all the visible text the subagent produced: its whole answer, or for a
    timeout, an error or a cancellation, what it had streamed until then. `output` is the
    validated JSON answer of a profile with an `output_schema` (deeply frozen), None otherwise
    or when the run did not complete; an answer that never validated ends the run in `ERROR`.
    """

    subagent_name: str
    runtime_id: str
    parent_runtime_id: str | None
    provider: str
    model: str
    terminate_reason: TerminateReason
    final_message: str
    emitted_values: FrozenDict
    usage: Usage
    model_calls: int | None
    duration_ms: float
    error: str | None = None
    output: Any = None

    def as_json(self) -> dict[str, Any]:
        """The JSON document the `task` tool returns and `chatscope task --json` prints."""
        usage = self.usage
        return {
            "subagent_name": self.subagent_name,
            "runtime_id": self.runtime_id,
            "parent_runtime_id": self.parent_runtime_id,
            "provider": self.provider,
            "model": self.model,
            "terminate_reason": str(self.terminate_reason),
            "final_message": self.final_message,
            "emitted_values": thaw(self.emitted_values),
            "usage": {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cached_tokens": usage.cached_tokens,
                "reasoning_tokens": usage.reasoning_tokens,
            },
            "model_calls": self.model_calls,
            "duration_ms": round(self.duration_ms, 3),
            "error": self.error,
            "output": thaw(self.output),
        }


_EMIT_DECLARATION = ToolDeclaration(
    name=EMIT_VALUE,
    description=(
        "Hand a named result back to the chat that started you. Call it once per result; "
        "a later call with the same name replaces the value."
    ),
    parameters=deep_freeze(
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "what the value is, e.g. `summary`"},
                "value": {"type": "string", "description": "the value itself"},
            },
            "required": ["name", "value"],
        }
    ),
)


class EmitValueTool:
    """`emit_value`: a subagent scope's named results, kept for the run that owns the scope."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    @property
    def declaration(self) -> ToolDeclaration:
        """Name, description and parameters."""
        return _EMIT_DECLARATION

    async def run(self, arguments: Mapping[str, Any], context: ToolContext | None = None) -> str:
        """Keep one value; a missing or empty name is refused."""
        name = arguments.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ToolError("emit_value needs a non-empty string `name`")
        if "value" not in arguments:
            raise ToolError("emit_value needs a `value`")
        self._values[name] = deep_freeze(arguments["value"])
        return f"emitted {name!r}"

    def values(self) -> FrozenDict:
        """Every value emitted so far, by name."""
        return FrozenDict(self._values)


class OpenChat(Protocol):
    """The containers' `chat_session` factory: a chat over `context` with its own turn limit."""

    def __call__(self, *, context: AgentRuntimeContext, max_turns: int) -> ChatSession:
        """A new chat session."""
        ...


class SubagentRunner:
    """Runs subagents of one parent scope, at most `max_concurrent` at a time.

    The limit belongs to the runner, so to its parent scope: nothing is shared between
    conversations. A run waiting for a free slot has not started its timeout yet.
    """

    __slots__ = ("_limit", "_open_chat", "_parent", "_profiles", "_scopes")

    def __init__(
        self,
        parent: AgentRuntimeContext,
        *,
        scopes: ScopeFactory,
        profiles: Mapping[str, SubagentProfile],
        open_chat: OpenChat,
        max_concurrent: int,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self._parent = parent
        self._scopes = scopes
        self._profiles = profiles
        self._open_chat = open_chat
        self._limit = asyncio.Semaphore(max_concurrent)

    @property
    def parent(self) -> AgentRuntimeContext:
        """The scope whose subagents this runs."""
        return self._parent

    @property
    def profiles(self) -> Mapping[str, SubagentProfile]:
        """The subagents it can run, by name."""
        return self._profiles

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
        """Build the subagent's scope now and start running it (call inside the event loop)."""
        profile = self.profile(request.subagent_name)
        scope = SubAgentScope.create(profile.name, profile, self._parent, scopes=self._scopes)
        progress = _Progress(scope, request)
        task = asyncio.get_running_loop().create_task(
            self._execute(progress), name=f"subagent {profile.name} {scope.metadata['runtime_id']}"
        )
        return SubagentRun(scope, task, progress)

    async def _execute(self, progress: _Progress) -> TaskResult:
        try:
            async with self._limit:
                progress.started = time.perf_counter()
                return await _drive(self._open_chat, progress)
        except asyncio.CancelledError:
            return progress.ended(TerminateReason.CANCELLED)


class SubagentRun:
    """A started subagent: its scope, and the run that `result` waits for or `cancel` stops."""

    __slots__ = ("_progress", "_task", "scope")

    def __init__(
        self, scope: SubAgentScope, task: asyncio.Task[TaskResult], progress: _Progress
    ) -> None:
        self.scope = scope
        self._task = task
        self._progress = progress

    @property
    def runtime_id(self) -> str:
        """The subagent scope's runtime id."""
        return self.scope.runtime_context.runtime_id

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


class _Progress:
    """What one run has produced so far; every way a run ends reads its result from here."""

    __slots__ = ("chunks", "max_turns", "request", "scope", "started", "timeout", "usage")

    def __init__(self, scope: SubAgentScope, request: TaskRequest) -> None:
        self.scope = scope
        self.request = request
        profile = scope.profile
        self.max_turns = min(profile.max_turns, request.max_turns or profile.max_turns)
        self.timeout = _tightest(profile.timeout_seconds, request.timeout_seconds)
        self.chunks: list[str] = []
        self.usage = Usage()
        self.started: float | None = None

    def observe(self, event: ChatEvent) -> None:
        """Keep streamed text and usage, so that a run cut short loses none of it."""
        if isinstance(event, TextDelta):
            self.chunks.append(event.text)
        elif isinstance(event, UsageEvent):
            self.usage = self.usage + event.usage

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
        return self._result(reason, "".join(self.chunks), self.usage, None, error)

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
        elapsed = time.perf_counter() - self.started if self.started is not None else 0.0
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
            duration_ms=elapsed * 1000,
            error=error,
            output=output,
        )


async def _drive(open_chat: OpenChat, progress: _Progress) -> TaskResult:
    deadline = asyncio.timeout(progress.timeout)
    try:
        chat = open_chat(context=progress.scope.runtime_context, max_turns=progress.max_turns)
        async with deadline:
            turn = await _stream(chat, progress)
    except Exception as exc:
        if isinstance(exc, TimeoutError) and deadline.expired():
            return progress.ended(TerminateReason.TIMEOUT)
        return progress.ended(TerminateReason.ERROR, _describe(exc))
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


def _describe(exc: Exception) -> str:
    return redact_secrets(f"{type(exc).__name__}: {exc}")


def _emitted_values(context: AgentRuntimeContext) -> FrozenDict:
    tool = context.tools.get(EMIT_VALUE)
    return tool.values() if isinstance(tool, EmitValueTool) else FrozenDict()


def _tightest(*limits: float | None) -> float | None:
    given = [limit for limit in limits if limit is not None and math.isfinite(limit)]
    return min(given) if given else None
