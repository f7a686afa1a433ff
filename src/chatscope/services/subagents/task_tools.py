"""The `task` tool of a foreground chat, and the binder that gives each scope its subagent tools.

The containers hand `SubagentTools` to the `ScopeFactory` as its `scope_tools`. Every foreground
scope it binds gets a `task` tool with its own `SubagentRunner` (so its own concurrency limit);
every subagent scope gets a fresh `emit_value`. Subagents never get `task`: they start no
subagents of their own. Nothing here sees a container.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from chatscope.config.profiles import ProfileCatalog
from chatscope.errors import ProfileError
from chatscope.services.frozen import deep_freeze
from chatscope.services.runtime.context import AgentRuntimeContext
from chatscope.services.runtime.scopes import ScopeFactory
from chatscope.services.subagents.profile import SubagentProfile
from chatscope.services.subagents.task import (
    EMIT_VALUE,
    EmitValueTool,
    OpenChat,
    SubagentExecutor,
    SubagentRunner,
    TaskRequest,
)
from chatscope.services.tools.ports import Tool, ToolContext, ToolDeclaration

__all__ = [
    "TASK",
    "SubagentTools",
    "TaskTool",
    "profiles_by_name",
    "task_declaration",
    "tool_names",
    "usable_profiles",
]

TASK = "task"


def tool_names(tools: Iterable[Tool]) -> tuple[str, ...]:
    """The names of `tools`, in order (what a profile's `allowed_tools` may list)."""
    return tuple(tool.declaration.name for tool in tools)


def profiles_by_name(catalog: ProfileCatalog) -> Mapping[str, SubagentProfile]:
    """The subagent profiles of a loaded catalog, read-only, by name."""
    return MappingProxyType(
        {loaded.spec.name: SubagentProfile.from_spec(loaded.spec) for loaded in catalog}
    )


def usable_profiles(
    load: Callable[[], Mapping[str, SubagentProfile]],
) -> Mapping[str, SubagentProfile]:
    """The profiles a chat's `task` tool offers: `load()`, or none when a profile is broken.

    A chat does not need profiles to answer, so a broken file leaves it without `task`
    rather than failing it; the `ProfileError` is reported where profiles are used by name
    (`chatscope subagents list`, `chatscope task`), which load them themselves.
    """
    try:
        return load()
    except ProfileError:
        return MappingProxyType({})


class TaskTool:
    """`task`: runs one subagent of this scope and returns its result as a JSON document."""

    __slots__ = ("_declaration", "runner")

    def __init__(self, runner: SubagentRunner, declaration: ToolDeclaration | None = None) -> None:
        self.runner = runner
        self._declaration = declaration or task_declaration(runner.profiles)

    @property
    def declaration(self) -> ToolDeclaration:
        """Name, description (listing the subagents) and parameters."""
        return self._declaration

    async def run(self, arguments: Mapping[str, Any], context: ToolContext | None = None) -> str:
        """Run the subagent; bad arguments or an unknown subagent raise `ToolError`."""
        result = await self.runner.run(TaskRequest.from_arguments(arguments))
        return json.dumps(result.as_json(), ensure_ascii=False)


def task_declaration(profiles: Mapping[str, SubagentProfile]) -> ToolDeclaration:
    """What the model is told about `task`: the subagents it may start, and the arguments."""
    listing = "\n".join(
        f"- {name}: {profile.description or 'no description'}" for name, profile in profiles.items()
    )
    description = (
        "Delegate a self-contained goal to a subagent. It runs in its own isolated scope with "
        "its own model and tools, sees only the goal and context given here, and returns JSON: "
        "final_message, emitted_values, terminate_reason (GOAL, MAX_TURNS, TIMEOUT, ERROR, "
        f"CANCELLED) and usage. Available subagents:\n{listing}"
    )
    parameters = {
        "type": "object",
        "properties": {
            "subagent_name": {"type": "string", "enum": list(profiles)},
            "goal_prompt": {"type": "string", "description": "what the subagent must achieve"},
            "context": {"type": "string", "description": "background the subagent needs"},
            "max_turns": {"type": "integer", "minimum": 1, "description": "model calls, at most"},
            "timeout_seconds": {"type": "number", "description": "wall-clock limit"},
        },
        "required": ["subagent_name", "goal_prompt"],
    }
    return ToolDeclaration(TASK, description, deep_freeze(parameters))


class SubagentTools:
    """Binds `task` to foreground scopes and `emit_value` to subagent scopes (`ScopeTools`).

    A foreground scope gets `task` when there is at least one profile and its allow-list, if
    it has one, names `task`. Its runners run subagents on `executor` (in this process when
    None).
    """

    __slots__ = ("_declaration", "_executor", "_max_concurrent", "_open_chat", "_profiles")

    def __init__(
        self,
        profiles: Mapping[str, SubagentProfile],
        open_chat: OpenChat,
        max_concurrent: int,
        executor: SubagentExecutor | None = None,
    ) -> None:
        self._profiles = profiles
        self._open_chat = open_chat
        self._max_concurrent = max_concurrent
        self._executor = executor
        self._declaration = task_declaration(profiles) if profiles else None

    @property
    def names(self) -> frozenset[str]:
        """The tools this binds: `task` and `emit_value`."""
        return frozenset({TASK, EMIT_VALUE})

    @property
    def profiles(self) -> Mapping[str, SubagentProfile]:
        """The subagents a foreground scope may run."""
        return self._profiles

    def runner_for(self, parent: AgentRuntimeContext, scopes: ScopeFactory) -> SubagentRunner:
        """A runner, with its own concurrency limit, for the subagents of `parent`."""
        return SubagentRunner(
            parent,
            scopes=scopes,
            profiles=self._profiles,
            open_chat=self._open_chat,
            max_concurrent=self._max_concurrent,
            executor=self._executor,
        )

    def bind(
        self,
        context: AgentRuntimeContext,
        *,
        scopes: ScopeFactory,
        allowed_tools: tuple[str, ...] | None,
    ) -> AgentRuntimeContext:
        """`context` with the subagent tools that belong to it."""
        if context.state.parent_runtime_id is not None:
            return _with_tool(context, EmitValueTool())
        if not self._profiles or (allowed_tools is not None and TASK not in allowed_tools):
            return context
        task = TaskTool(self.runner_for(context, scopes), self._declaration)
        return _with_tool(context, task)


def _with_tool(context: AgentRuntimeContext, tool: Tool) -> AgentRuntimeContext:
    """A copy of the freshly built `context` whose registry also holds `tool`.

    The copy shares every other part (state, history, telemetry, provider) with `context`.
    """
    return dataclasses.replace(context, tools=context.tools.with_tools(tool))
