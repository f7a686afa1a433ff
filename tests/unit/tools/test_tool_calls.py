"""How a scope runs tool calls: concurrently in call order, bounded, timed out, approved."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.services.events import ToolResultEvent
from chatscope.services.frozen import deep_freeze
from chatscope.services.messages import ToolCallBlock
from chatscope.services.tools.ports import ApprovalRequest, ToolContext, ToolDeclaration
from chatscope.services.tools.registry import ToolPolicy, ToolRegistry
from chatscope.testing.fakes import ScriptedProvider, ScriptedReply
from tests.support.scopes import make_chat, make_context

CALLER = ToolContext(session_id="s1", runtime_id="r1", provider="demo", model="m")
EMPTY = deep_freeze({"type": "object", "properties": {}})


class SleepTool:
    """Sleeps `seconds`, then returns its `tag`; records how many run at once."""

    def __init__(
        self, name: str = "sleep", *, timeout: float | None = None, approval: bool = False
    ) -> None:
        self.declaration = ToolDeclaration(
            name, "Sleep.", EMPTY, requires_approval=approval, timeout=timeout
        )
        self.running = 0
        self.all_started = asyncio.Event()
        self.expected = 0
        self.peak = 0
        self.finished = 0
        self.cancelled = 0

    async def run(self, arguments: Mapping[str, Any], context: ToolContext | None = None) -> str:
        self.running += 1
        self.peak = max(self.peak, self.running)
        if self.running == self.expected:
            self.all_started.set()
        try:
            await asyncio.sleep(float(arguments.get("seconds", 0)))
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1
        self.finished += 1
        return str(arguments.get("tag", ""))


def _calls(count: int, seconds: float) -> list[tuple[str, dict[str, Any]]]:
    return [("sleep", {"seconds": seconds, "tag": f"t{index}"}) for index in range(count)]


async def test_two_slow_calls_of_one_reply_run_at_once() -> None:
    """Two 0.3 s calls of one reply take about 0.3 s, not 0.6 s, and keep their order."""
    tool = SleepTool()
    provider = ScriptedProvider([ScriptedReply(tool_calls=_calls(2, 0.3)), ScriptedReply("ok")])
    chat = make_chat(make_context(provider, tools=(tool,)))
    started = time.perf_counter()
    turn = await chat.send("go")
    elapsed = time.perf_counter() - started
    assert [result.result for result in turn.tool_results] == ["t0", "t1"]
    assert tool.peak == 2
    assert elapsed < 0.55, elapsed


@given(count=st.integers(2, 12), limit=st.integers(1, 4))
async def test_concurrency_is_bounded_and_results_keep_call_order(count: int, limit: int) -> None:
    """Never more than the policy's limit at once; results in the order the model asked."""
    tool = SleepTool()
    replies = [ScriptedReply(tool_calls=_calls(count, 0.001)), ScriptedReply("done")]
    policy = ToolPolicy(max_concurrent_calls=limit)
    chat = make_chat(make_context(ScriptedProvider(replies), tools=(tool,), policy=policy))
    turn = await chat.send("go")
    assert [result.result for result in turn.tool_results] == [f"t{i}" for i in range(count)]
    assert [call.id for call in turn.tool_calls] == [r.call_id for r in turn.tool_results]
    assert 1 <= tool.peak <= min(limit, count)


async def test_cancelling_the_turn_cancels_its_running_tools() -> None:
    """A turn cancelled while its tools run cancels every one of them and stores nothing."""
    tool = SleepTool()
    tool.expected = 3
    provider = ScriptedProvider([ScriptedReply(tool_calls=_calls(3, 30)), ScriptedReply("x")])
    context = make_context(provider, tools=(tool,))
    chat = make_chat(context)
    task = asyncio.create_task(chat.send("go"))
    await asyncio.wait_for(tool.all_started.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (tool.cancelled, tool.finished, tool.running) == (3, 0, 0)
    assert await context.history.messages() == ()


async def test_a_call_past_its_timeout_is_stopped_and_reported() -> None:
    """The tool's own timeout ends the call; the model reads why; the other call completes."""
    slow = SleepTool("slow", timeout=0.05)
    fast = SleepTool("fast")
    registry = ToolRegistry((slow, fast), caller=CALLER)
    started = time.perf_counter()
    late, quick = await asyncio.gather(
        registry.run(ToolCallBlock.create("1", "slow", {"seconds": 5})),
        registry.run(ToolCallBlock.create("2", "fast", {"tag": "ok"})),
    )
    assert time.perf_counter() - started < 1.0
    assert late.error == "slow timed out after 0.05 s; it was stopped"
    assert quick.result == "ok"
    assert slow.cancelled == 1


async def test_the_policy_timeout_applies_when_the_tool_names_none() -> None:
    """Without a timeout of its own, a call ends at the policy's default."""
    registry = ToolRegistry((SleepTool(),), caller=CALLER, policy=ToolPolicy(timeout=0.02))
    result = await registry.run(ToolCallBlock.create("1", "sleep", {"seconds": 5}))
    assert result.error == "sleep timed out after 0.02 s; it was stopped"


async def test_a_timeout_raised_inside_a_tool_is_a_failure_not_our_timeout() -> None:
    """A tool's own `TimeoutError` is reported as its failure, not as the scope's timeout."""

    class Raises(SleepTool):
        async def run(
            self, arguments: Mapping[str, Any], context: ToolContext | None = None
        ) -> str:
            raise TimeoutError("upstream took too long")

    result = await ToolRegistry((Raises(),), caller=CALLER).run(
        ToolCallBlock.create("1", "sleep", {})
    )
    assert result.error == "tool failed: TimeoutError: upstream took too long"


class Approvals:
    """An approver that answers from a script and records what it was asked."""

    def __init__(self, *answers: bool) -> None:
        self.answers = list(answers)
        self.asked: list[ApprovalRequest] = []

    async def __call__(self, request: ApprovalRequest) -> bool:
        self.asked.append(request)
        return self.answers.pop(0)


async def test_a_tool_that_needs_approval_runs_only_when_approved() -> None:
    """Yes runs it; no reports the refusal to the model; the approver sees the caller."""
    tool = SleepTool(approval=True)
    approver = Approvals(True, False)
    registry = ToolRegistry((tool,), caller=CALLER, approver=approver)
    approved = await registry.run(ToolCallBlock.create("1", "sleep", {"tag": "yes"}))
    declined = await registry.run(ToolCallBlock.create("2", "sleep", {"tag": "no"}))
    assert approved.result == "yes"
    assert declined.error == "the user declined to run sleep; it was not run"
    assert tool.finished == 1
    assert [(r.tool, r.arguments["tag"], r.context) for r in approver.asked] == [
        ("sleep", "yes", CALLER),
        ("sleep", "no", CALLER),
    ]


async def test_without_an_approver_a_tool_that_needs_approval_is_refused() -> None:
    """No approver means no: the tool never runs, and the model is told how to allow it."""
    tool = SleepTool(approval=True)
    result = await ToolRegistry((tool,), caller=CALLER).run(ToolCallBlock.create("1", "sleep", {}))
    assert result.error is not None
    assert "needs approval" in result.error
    assert "tools.auto_approve" in result.error
    assert tool.finished == 0


@pytest.mark.parametrize("allowed", [frozenset({"sleep"}), frozenset({"*"})])
async def test_auto_approved_tools_run_without_asking(allowed: frozenset[str]) -> None:
    """A tool named in `auto_approve` (or `*`) runs and the approver is never asked."""
    approver = Approvals()
    registry = ToolRegistry(
        (SleepTool(approval=True),),
        caller=CALLER,
        approver=approver,
        policy=ToolPolicy(auto_approve=allowed),
    )
    result = await registry.run(ToolCallBlock.create("1", "sleep", {"tag": "ran"}))
    assert (result.result, approver.asked) == ("ran", [])


async def test_an_approver_that_fails_is_an_error_result() -> None:
    """An approver raising is reported as the call's error; the chat goes on."""

    async def broken(request: ApprovalRequest) -> bool:
        raise RuntimeError("no terminal")

    registry = ToolRegistry((SleepTool(approval=True),), caller=CALLER, approver=broken)
    result = await registry.run(ToolCallBlock.create("1", "sleep", {}))
    assert result.error == "tool failed: RuntimeError: no terminal"


async def test_the_scope_passes_its_identity_to_every_call() -> None:
    """A tool receives the calling scope's context: its ids, provider and model."""
    seen: list[ToolContext | None] = []

    class Who(SleepTool):
        async def run(
            self, arguments: Mapping[str, Any], context: ToolContext | None = None
        ) -> str:
            seen.append(context)
            return "me"

    provider = ScriptedProvider([ScriptedReply(tool_calls=[("sleep", {})]), ScriptedReply("ok")])
    context = make_context(provider, tools=(Who(),))
    events = [event async for event in make_chat(context).stream("who")]
    assert [type(e) for e in events].count(ToolResultEvent) == 1
    [caller] = seen
    assert caller is not None
    assert (caller.runtime_id, caller.session_id) == (context.runtime_id, context.state.session_id)
    assert (caller.provider, caller.model) == (context.state.provider, context.state.model)
    assert "key" not in " ".join(ToolContext.__dataclass_fields__)


@given(names=st.lists(st.sampled_from(["a", "b", "sleep", "echo"]), unique=True, max_size=4))
async def test_an_unknown_tool_is_answered_with_the_tools_there_are(names: list[str]) -> None:
    registry = ToolRegistry([SleepTool(name) for name in names], caller=CALLER)
    result = await registry.run(ToolCallBlock.create("c1", "rm_rf", {}))
    known = ", ".join(names) or "none"
    assert (result.call_id, result.name, result.result) == ("c1", "rm_rf", None)
    assert result.error == f"unknown tool 'rm_rf'; available tools: {known}"


async def test_arguments_that_could_not_be_read_are_answered_and_the_tool_is_not_run() -> None:
    tool = SleepTool()
    registry = ToolRegistry([tool], caller=CALLER)
    call = ToolCallBlock.from_json("c2", "sleep", '{"seconds": 0.1')
    result = await registry.run(call)
    assert (result.call_id, result.name, result.result) == ("c2", "sleep", None)
    assert result.error == (
        f"the arguments of sleep could not be read: {call.arguments_error}; it was not run. "
        "Call it again with its arguments as one JSON object"
    )
    assert tool.finished == 0
