"""What a parent asks of a subagent (`TaskRequest`) and how the run ended (`TaskResult`).

Both are plain, frozen and picklable: a remote executor ships the one and returns the other.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chatscope.errors import ToolError
from chatscope.services.frozen import FrozenDict, thaw
from chatscope.services.messages import Usage

__all__ = ["TaskRequest", "TaskResult", "TerminateReason"]


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
    `executor` says where it ran (`local` or `ray`), `node_id` the Ray node, if any.
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
    executor: str = "local"
    node_id: str | None = None

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
            "executor": self.executor,
            "node_id": self.node_id,
        }
