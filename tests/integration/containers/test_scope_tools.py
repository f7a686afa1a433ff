"""Tools as per-scope factories: an application's tools, a scope's own tools, and approvals.

A class-based tool declared in the containers is a `providers.Factory` called once per scope;
a tool handed to `ScopeRequest.create(tools=...)` belongs to that scope alone. Nothing a tool
object holds can reach another scope, however many run at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dependency_injector import providers
from hypothesis import given, settings
from hypothesis import strategies as st

from chatscope.containers import ApplicationContainer
from chatscope.services.frozen import deep_freeze, thaw
from chatscope.services.messages import Role
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.services.tools.ports import ApprovalRequest, ToolContext, ToolDeclaration
from chatscope.testing import FunctionProvider, ScriptedReply, build_test_app

COUNT = ToolDeclaration(
    "count",
    "Add one to this chat's counter and return it with the tag.",
    deep_freeze({"type": "object", "properties": {"tag": {"type": "string"}}}),
)


class CounterTool:
    """A stateful class-based tool: a counter and a log of who called it."""

    declaration = COUNT

    def __init__(self, start: int = 0) -> None:
        self.value = start
        self.callers: set[str] = set()
        self.tags: list[str] = []

    async def run(self, arguments: Mapping[str, Any], context: ToolContext | None = None) -> str:
        assert context is not None
        self.callers.add(context.runtime_id)
        self.tags.append(str(arguments["tag"]))
        await asyncio.sleep(0)  # let other scopes' calls interleave with this one
        self.value += 1
        return json.dumps({"value": self.value, "tag": arguments["tag"], "tool": id(self)})


def _calls_then_done(invocation: ModelInvocation) -> ScriptedReply:
    """Call `count` once per tag the prompt lists; once results are back, answer with them."""
    last = invocation.history[-1]
    if last.role is Role.TOOL:
        return ScriptedReply(text="|".join(str(block.result) for block in last.tool_results))
    tags = last.text.split()
    return ScriptedReply(tool_calls=[("count", {"tag": tag}) for tag in tags])


def _app(tmp_path: Path, **settings_: Any) -> ApplicationContainer:
    return build_test_app(FunctionProvider(_calls_then_done), workspace=tmp_path, **settings_)


@settings(max_examples=15, deadline=None)
@given(
    tags_per_scope=st.lists(
        st.lists(st.text("abcdefgh", min_size=1, max_size=4), min_size=1, max_size=5),
        min_size=2,
        max_size=12,
    )
)
def test_concurrent_scopes_never_share_a_tool_or_its_state(
    tmp_path_factory: Any, tags_per_scope: list[list[str]]
) -> None:
    """Many scopes at once: each gets its own tool object, counting from zero, seeing only
    its own calls and returning only its own tags."""
    app = _app(tmp_path_factory.mktemp("ws"))
    app.tools.application_tools.override(providers.List(providers.Factory(CounterTool)))

    async def one_chat(tags: list[str]) -> tuple[Any, list[dict[str, Any]], str]:
        context = app.runtime.scopes().foreground()
        turn = await app.runtime.chat_session(context=context).send(" ".join(tags))
        return context, [json.loads(result.result) for result in turn.tool_results], turn.text

    async def all_chats() -> list[tuple[Any, list[dict[str, Any]], str]]:
        return await asyncio.gather(*(one_chat(tags) for tags in tags_per_scope))

    outcomes = asyncio.run(all_chats())
    tool_ids = set()
    for tags, (context, results, _text) in zip(tags_per_scope, outcomes, strict=True):
        tool = context.tools.get("count")
        assert isinstance(tool, CounterTool)
        assert tool.callers == {context.runtime_id}
        assert tool.tags == tags
        assert tool.value == len(tags)
        assert [result["tag"] for result in results] == tags
        assert sorted(result["value"] for result in results) == list(range(1, len(tags) + 1))
        assert {result["tool"] for result in results} == {id(tool)}
        tool_ids.add(id(tool))
    assert len(tool_ids) == len(tags_per_scope)


async def test_an_application_tool_is_built_once_per_scope_and_can_be_overridden(
    tmp_path: Path,
) -> None:
    """The declared factory runs for each scope; a test replaces it with a fake as usual."""
    app = _app(tmp_path)
    app.tools.application_tools.override(providers.List(providers.Factory(CounterTool, start=10)))
    first, second = app.runtime.scopes().foreground(), app.runtime.scopes().foreground()
    mine, theirs = first.tools.get("count"), second.tools.get("count")
    assert isinstance(mine, CounterTool)
    assert isinstance(theirs, CounterTool)
    assert mine is not theirs
    assert mine.value == theirs.value == 10

    fake = CounterTool(start=99)
    with app.tools.application_tools.override(providers.List(providers.Object(fake))):
        overridden = app.runtime.scopes().foreground()
        assert overridden.tools.get("count") is fake
    restored = app.runtime.scopes().foreground().tools.get("count")
    assert isinstance(restored, CounterTool)
    assert restored is not fake
    assert restored.value == 10


async def test_a_tool_given_with_the_request_belongs_to_that_scope_only(tmp_path: Path) -> None:
    """`ScopeRequest.create(tools=...)` adds the tool to that scope and to no other."""
    app = _app(tmp_path)
    counter = CounterTool()
    with_tool = app.runtime.scopes().foreground(ScopeRequest.create(tools=[counter]))
    without = app.runtime.scopes().foreground()
    assert with_tool.tools.get("count") is counter
    assert without.tools.get("count") is None
    turn = await app.runtime.chat_session(context=with_tool).send("a b")
    assert turn.text.count('"tag"') == 2
    assert counter.callers == {with_tool.runtime_id}


async def test_write_file_asks_the_scope_approver(tmp_path: Path) -> None:
    """`write_file` runs only after the scope's approver says yes; a no writes nothing."""
    asked: list[ApprovalRequest] = []
    answers = iter([False, True])

    async def approver(request: ApprovalRequest) -> bool:
        asked.append(request)
        return next(answers)

    def write_twice(invocation: ModelInvocation) -> ScriptedReply:
        if invocation.history[-1].role is Role.TOOL:
            return ScriptedReply(text="done")
        arguments = {"path": "out.txt", "content": "hello"}
        return ScriptedReply(tool_calls=[("write_file", arguments)])

    app = build_test_app(FunctionProvider(write_twice), workspace=tmp_path)
    scopes = app.runtime.scopes()
    context = scopes.foreground(ScopeRequest.create(approver=approver))
    chat = app.runtime.chat_session(context=context)
    declined = await chat.send("write")
    assert declined.tool_results[0].error == "the user declined to run write_file; it was not run"
    assert not (tmp_path / "out.txt").exists()
    approved = await chat.send("write")
    assert approved.tool_results[0].result is not None
    assert (tmp_path / "out.txt").read_text() == "hello"
    assert [thaw(request.arguments)["path"] for request in asked] == ["out.txt", "out.txt"]
    assert {request.context.runtime_id for request in asked} == {context.runtime_id}


async def test_settings_can_approve_write_file_for_every_scope(tmp_path: Path) -> None:
    """`tools.auto_approve` lets `write_file` run with no approver."""
    app = _app(tmp_path, tools={"auto_approve": ["write_file"], "max_concurrent_calls": 3})
    context = app.runtime.scopes().foreground()
    assert context.tools.policy.max_concurrent_calls == 3
    assert context.tools.policy.approves("write_file")
    assert not context.tools.policy.approves("read_file")


async def test_a_subagent_asks_its_parents_approver(tmp_path: Path) -> None:
    """The person who approves the parent's calls approves its subagents' too."""

    async def approver(request: ApprovalRequest) -> bool:
        return True

    app = _app(tmp_path)
    scopes = app.runtime.scopes()
    parent = scopes.foreground(ScopeRequest.create(approver=approver))
    child = scopes.subagent(ScopeRequest.create(subagent_name="helper"), parent)
    assert child.tools.approver is approver
    assert child.state.parent_runtime_id == parent.runtime_id


def test_scope_headers_are_secrets_in_every_repr() -> None:
    """A token given as an MCP header never shows in the request's repr."""
    request = ScopeRequest.create(mcp_headers={"srv": {"Authorization": "Bearer sekrit-123"}})
    assert "sekrit-123" not in repr(request)
    assert request.mcp_headers["srv"]["Authorization"].get_secret_value() == "Bearer sekrit-123"
