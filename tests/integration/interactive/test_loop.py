"""The interactive loop driven through prompt_toolkit's pipe input: prompts, every slash
command, approvals in place, and Ctrl-C leaving no half turn behind."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatscope.cli.interactive.conversation import ChatOptions, Conversation
from chatscope.cli.interactive.handlers import CommandResult, run_command
from chatscope.cli.interactive.render import make_console
from chatscope.cli.interactive.slash import SlashCommand
from chatscope.errors import ErrorCategory, ProviderError, UnknownSessionError
from chatscope.services.events import (
    FinishEvent,
    FinishReason,
    ProviderEvent,
    TextDelta,
    UsageEvent,
)
from chatscope.services.history.plan import SUMMARY_INTRO
from chatscope.services.messages import Role, Usage
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.testing import FunctionProvider, ScriptedProvider, ScriptedReply, build_test_app
from tests.support.repl import driven_chat, started_app


def _echo(name: str = "demo") -> FunctionProvider:
    """Answers `<model> heard: <last prompt>`."""

    def answer(invocation: ModelInvocation) -> ScriptedReply:
        prompt = invocation.history[-1].text
        return ScriptedReply(f"{invocation.model} heard: {prompt}", usage=Usage(7, 3))

    return FunctionProvider(answer, name=name)


class _Slow:
    """Streams one word, then waits (for a Ctrl-C) before the rest."""

    name = "demo"

    def __init__(self) -> None:
        self.streaming = asyncio.Event()

    async def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
        yield TextDelta("partial ")
        self.streaming.set()
        await asyncio.sleep(60)
        yield UsageEvent(Usage(1, 1))
        yield FinishEvent(FinishReason.STOP)


async def test_a_prompt_is_answered_with_markdown_and_a_footer(tmp_path: Path) -> None:
    """The answer is rendered (no raw `**`), then provider · model · session · tokens."""
    markdown = "**Bold** words\n\n```python\nx = 1\n```\n"
    reply = ScriptedReply(markdown, usage=Usage(12, 34), chunks=7)
    app = build_test_app(ScriptedProvider([reply]), workspace=tmp_path)
    async with driven_chat(app) as chat:
        chat.type("hello\r")
        await chat.until("12 in / 34 out tokens")
        assert await chat.finish() == 0
    assert "Bold words" in chat.screen
    assert "**" not in chat.screen
    assert "x = 1" in chat.screen
    session_id = chat.repl.conversation.state.session_id  # type: ignore[union-attr]
    assert f"demo · chatscope-demo · session {session_id[:8]}" in chat.screen


async def test_ctrl_c_stops_the_answer_and_stores_nothing_of_it(tmp_path: Path) -> None:
    """Interrupting a streaming turn returns to the prompt; history holds no half turn."""
    slow = _Slow()
    app = build_test_app(slow, workspace=tmp_path)
    async with driven_chat(app) as chat:
        chat.type("tell me everything\r")
        await asyncio.wait_for(slow.streaming.wait(), 10)
        chat.repl.interrupt()
        await chat.until("stopped: nothing of this turn was saved")
        conversation = chat.repl.conversation
        assert conversation is not None
        assert await conversation.context.history.messages() == ()
        chat.type("/session\r")
        await chat.until("0 turns")
        assert await chat.finish() == 0


async def test_ctrl_c_at_the_prompt_clears_the_line_and_the_chat_goes_on(tmp_path: Path) -> None:
    """Ctrl-C while typing drops the line; the next line is sent as usual."""
    app = build_test_app(_echo(), workspace=tmp_path)
    async with driven_chat(app) as chat:
        chat.type("never sent\x03")
        chat.type("sent\r")
        await chat.until("heard: sent")
        assert await chat.finish() == 0
    assert "never sent" not in chat.screen


async def test_model_switch_keeps_the_conversation(tmp_path: Path) -> None:
    """`/model` shows, then switches; the next turn goes to that model with the history."""
    fake = _echo()
    app = build_test_app(fake, workspace=tmp_path)
    async with driven_chat(app) as chat:
        chat.type("/model\r")
        await chat.until("model chatscope-demo (provider demo)")
        chat.type("first\r/model other-model\rsecond\r")
        await chat.until("other-model heard: second")
        assert await chat.finish() == 0
    assert "now demo · other-model; the conversation goes on" in chat.screen
    last = fake.invocations[-1]
    assert last.model == "other-model"
    assert [m.text for m in last.history if m.role is Role.USER] == ["first", "second"]


async def test_provider_switch_keeps_the_conversation_and_rejects_unknown_names(
    tmp_path: Path,
) -> None:
    """`/provider` lists, switches to the provider's default model, refuses a bad name."""
    demo, openai = _echo(), _echo("openai")
    app = build_test_app(demo, openai, workspace=tmp_path)
    async with driven_chat(app) as chat:
        chat.type("/provider\r")
        await chat.until("available: demo, openai")
        chat.type("one\r/provider nowhere\r/provider openai\rtwo\r")
        await chat.until("gpt-4o-mini heard: two")
        assert await chat.finish() == 0
    assert "error: unknown provider 'nowhere'" in chat.screen
    assert "now openai · gpt-4o-mini" in chat.screen
    [moved] = openai.invocations
    assert [m.text for m in moved.history if m.role is Role.USER] == ["one", "two"]


async def test_help_lists_every_command_and_explains_one(tmp_path: Path) -> None:
    """`/help` and `/help model`; an unknown command gets a hint, `//x` goes to the model."""
    app = build_test_app(_echo(), workspace=tmp_path)
    async with driven_chat(app) as chat:
        chat.type("/help\r/help mod\r/modle x\r//help\r")
        await chat.until("heard: /help")
        assert await chat.finish() == 0
    for usage in ("/provider [NAME]", "/session [show | list | new | switch ID]", "/compress"):
        assert usage in chat.screen
    assert "show the model, or switch to NAME" in chat.screen
    assert "unknown command /modle (did you mean /model?); /help lists the commands" in chat.screen


async def test_exit_and_ctrl_d_leave(tmp_path: Path) -> None:
    """`/exit` ends the loop with status 0, as Ctrl-D does."""
    app = build_test_app(_echo(), workspace=tmp_path)
    async with driven_chat(app) as chat:
        chat.type("/exit\r")
        assert await asyncio.wait_for(chat.task, 10) == 0
    async with driven_chat(app) as chat:
        assert await chat.finish() == 0


async def test_session_commands_in_memory(tmp_path: Path) -> None:
    """`/session` shows the session; `new` and `/clear` start empty ones; `list` needs a
    database."""
    app = build_test_app(_echo(), workspace=tmp_path)
    async with driven_chat(app) as chat:
        chat.type("hello\r")
        await chat.until("heard: hello")
        first = chat.repl.conversation.state.session_id  # type: ignore[union-attr]
        chat.type("/session show\r")
        await chat.until("1 turns")
        chat.type("/session list\r")
        await chat.until("saved sessions need history_backend=database")
        chat.type("/session new\r")
        await chat.until("new session")
        second = chat.repl.conversation.state.session_id  # type: ignore[union-attr]
        chat.type("/clear\r/session\r")
        await chat.until("0 turns")
        third = chat.repl.conversation.state.session_id  # type: ignore[union-attr]
        chat.type("/session bogus\r")
        await chat.until("usage: /session")
        assert await chat.finish() == 0
    assert len({first, second, third}) == 3
    assert f"session {first} (in memory only)" in chat.screen


async def test_saved_sessions_are_listed_and_switched_to_by_prefix(tmp_path: Path) -> None:
    """With the database backend `/session list` shows saved sessions, `switch` continues one."""
    fake = _echo()
    app = build_test_app(fake, workspace=tmp_path, history_backend="database", data_dir=tmp_path)
    async with started_app(app), driven_chat(app) as chat:
        chat.type("remember the tulips\r")
        await chat.until("heard: remember the tulips")
        first = chat.repl.conversation.state.session_id  # type: ignore[union-attr]
        chat.type("/session new\rsomething else\r")
        await chat.until("heard: something else")
        chat.type("/session list\r")
        await chat.until("/session switch ID continues one")
        chat.type(f"/session switch {first[:10]}\r")
        await chat.until(f"continuing session {first} (1 turns)")
        chat.type("and now?\r/session switch zzz\r")
        await chat.until("no saved session 'zzz'")
        assert await chat.finish() == 0
    assert "remember the tulips" in chat.screen  # the listing's title
    resumed = fake.invocations[-1]
    assert [m.text for m in resumed.history if m.role is Role.USER] == [
        "remember the tulips",
        "and now?",
    ]


async def test_resuming_a_session_from_the_command_line(tmp_path: Path) -> None:
    """`chatscope chat --session ID` without a prompt continues that session."""
    fake = _echo()
    app = build_test_app(fake, workspace=tmp_path, history_backend="database", data_dir=tmp_path)
    async with started_app(app):
        async with driven_chat(app) as chat:
            chat.type("first words\r")
            await chat.until("heard: first words")
            session_id = chat.repl.conversation.state.session_id  # type: ignore[union-attr]
            assert await chat.finish() == 0
        async with driven_chat(app, ChatOptions(session_id=session_id)) as chat:
            await chat.until(f"continuing session {session_id} (1 turns)")
            chat.type("more\r")
            await chat.until("heard: more")
            assert await chat.finish() == 0
    assert [m.text for m in fake.invocations[-1].history if m.role is Role.USER] == [
        "first words",
        "more",
    ]


async def test_an_unknown_session_ends_the_chat_with_its_error(tmp_path: Path) -> None:
    """`chat --session NOPE` shows the prompt, then ends with the error (as `chat` does)."""
    app = build_test_app(_echo(), workspace=tmp_path, history_backend="database", data_dir=tmp_path)
    async with started_app(app), driven_chat(app, ChatOptions(session_id="nope")) as chat:
        with pytest.raises(UnknownSessionError):
            await asyncio.wait_for(chat.task, 10)


async def test_tools_lists_the_scope_tools_and_marks_those_that_ask(tmp_path: Path) -> None:
    """`/tools` lists name and source; a tool that needs approval carries a star."""
    app = build_test_app(_echo(), workspace=tmp_path)
    async with driven_chat(app) as chat:
        chat.type("/tools\r")
        await chat.until("* asks y/N before it runs")
        assert await chat.finish() == 0
    assert "write_file *" in chat.screen
    assert "read_file" in chat.screen


async def test_tool_calls_show_folded_and_approval_is_asked_in_place(tmp_path: Path) -> None:
    """A call and its result take a line each; `write_file` asks y/N (here: y) first."""
    replies = [
        ScriptedReply(tool_calls=[("write_file", {"path": "out.txt", "content": "hi"})]),
        ScriptedReply("written"),
    ]
    app = build_test_app(ScriptedProvider(replies), workspace=tmp_path)
    async with driven_chat(app) as chat:
        chat.type("write it\ry\r")
        await chat.until("written")
        assert await chat.finish() == 0
    assert '▸ write_file {"path":"out.txt","content":"hi"}' in chat.screen
    assert '? write_file {"path": "out.txt", "content": "hi"}' in chat.screen
    assert "✓ write_file" in chat.screen
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == "hi"


async def test_a_refused_approval_writes_nothing(tmp_path: Path) -> None:
    """Answering no (or just Enter) refuses the call; the model is told, nothing is written."""
    replies = [
        ScriptedReply(tool_calls=[("write_file", {"path": "out.txt", "content": "hi"})]),
        ScriptedReply("not written"),
    ]
    app = build_test_app(ScriptedProvider(replies), workspace=tmp_path)
    async with driven_chat(app) as chat:
        chat.type("write it\r\r")
        await chat.until("not written")
        assert await chat.finish() == 0
    assert "✗ write_file" in chat.screen
    assert not (tmp_path / "out.txt").exists()


async def test_ctrl_c_at_an_approval_question_stops_the_turn(tmp_path: Path) -> None:
    """Ctrl-C at y/N refuses the call and stops the turn: nothing written, nothing stored."""
    replies = [
        ScriptedReply(tool_calls=[("write_file", {"path": "out.txt", "content": "hi"})]),
        ScriptedReply("never reached"),
    ]
    app = build_test_app(ScriptedProvider(replies), workspace=tmp_path)
    async with driven_chat(app) as chat:
        chat.type("write it\r")
        await chat.until("? write_file")
        chat.type("\x03")
        await chat.until("stopped: nothing of this turn was saved")
        conversation = chat.repl.conversation
        assert conversation is not None
        assert await conversation.context.history.messages() == ()
        assert await chat.finish() == 0
    assert not (tmp_path / "out.txt").exists()
    assert "never reached" not in chat.screen


async def test_help_and_exit_need_no_conversation(tmp_path: Path) -> None:
    """`run_command` answers `/help` and `/exit` itself, as the loop does."""
    app = build_test_app(_echo(), workspace=tmp_path)
    screen = io.StringIO()
    console = make_console(screen, no_color=True, terminal=False, width=100)
    conversation = Conversation(app, ScopeRequest())
    assert await run_command(SlashCommand("help", ("tools",)), conversation, console) == (
        CommandResult()
    )
    assert "/tools" in screen.getvalue()
    assert (await run_command(SlashCommand("exit"), conversation, console)).leave


async def test_subagent_runs_show_when_they_start_and_end(tmp_path: Path) -> None:
    """A `task` call shows the subagent starting, and its result how it ended."""
    profiles = tmp_path / "config" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "helper.toml").write_text(
        'name = "helper"\ndescription = "helps"\nprovider = "demo"\nmodel = "chatscope-demo"\n'
        'system_prompt = "help"\nallowed_tools = []\n',
        encoding="utf-8",
    )

    def answer(invocation: ModelInvocation) -> ScriptedReply:
        if invocation.history[-1].role is Role.TOOL:
            return ScriptedReply("the helper is done")
        if invocation.system_prompt == "help":
            return ScriptedReply("helped")
        return ScriptedReply(
            tool_calls=[("task", {"subagent_name": "helper", "goal_prompt": "help out"})]
        )

    app = build_test_app(FunctionProvider(answer), workspace=tmp_path)
    async with driven_chat(app) as chat:
        chat.type("delegate\r")
        await chat.until("the helper is done")
        assert await chat.finish() == 0
    assert "▶ subagent helper help out" in chat.screen
    assert "■ subagent helper: GOAL" in chat.screen


async def test_compress_condenses_a_long_conversation(tmp_path: Path) -> None:
    """`/compress` on a short chat says so; on a long one it swaps the middle for a summary."""

    def answer(invocation: ModelInvocation) -> ScriptedReply:
        if invocation.system_prompt and "condense" in invocation.system_prompt:
            return ScriptedReply("a short summary")
        return ScriptedReply("long answer " * 300)

    app = build_test_app(FunctionProvider(answer), workspace=tmp_path)
    async with driven_chat(app) as chat:
        chat.type("one\r")
        await chat.until("tokens")
        chat.type("/compress\r")
        await chat.until("nothing to compress yet")
        chat.type("two\rthree\rfour\r/compress\r")
        await chat.until("compressed: about")
        conversation = chat.repl.conversation
        assert conversation is not None
        messages = await conversation.context.history.messages()
        assert any(SUMMARY_INTRO in m.text for m in messages)
        assert await chat.finish() == 0


async def test_a_chatscope_error_is_one_line_and_the_chat_goes_on(tmp_path: Path) -> None:
    """A failing turn shows `error: ...` (no key in it) and the next prompt still works."""
    calls: list[ModelInvocation] = []

    def answer(invocation: ModelInvocation) -> ScriptedReply:
        calls.append(invocation)
        if len(calls) == 1:
            raise ProviderError(
                "upstream said no to sk-proj-abcdefghijklmnopqrstuvwx",
                provider="demo",
                category=ErrorCategory.INVALID_REQUEST,
            )
        return ScriptedReply("fine now")

    app = build_test_app(FunctionProvider(answer), workspace=tmp_path)
    async with driven_chat(app) as chat:
        chat.type("first\r")
        await chat.until("error: ")
        chat.type("second\r")
        await chat.until("fine now")
        assert await chat.finish() == 0
    assert "abcdefghijklmnopqrstuvwx" not in chat.screen
