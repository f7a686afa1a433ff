"""Properties of the interactive chat: the slash-command parser, the settled part of streamed
Markdown, the rendering of any stream of events, the prompt history, and the loop itself."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import tempfile
import threading
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from chatscope.cli.interactive.conversation import ChatOptions, Compressed, Conversation
from chatscope.cli.interactive.handlers import compression_message
from chatscope.cli.interactive.launch import color_disabled, not_interactive_reason, read_prompt
from chatscope.cli.interactive.prompt import LazyFileHistory
from chatscope.cli.interactive.render import (
    TurnView,
    footer_line,
    make_console,
    shortened,
    stable_end,
)
from chatscope.cli.interactive.slash import (
    COMMANDS,
    Empty,
    Invalid,
    Prompt,
    SlashCommand,
    help_text,
    parse_line,
)
from chatscope.services.events import (
    ChatEvent,
    CompletedTurn,
    FinishReason,
    TextDelta,
    ThinkingDelta,
    ToolCallEvent,
    ToolResultEvent,
)
from chatscope.services.messages import ToolCallBlock, ToolResultBlock, Usage
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.testing import FunctionProvider, ScriptedReply, build_test_app
from tests.support.repl import driven_chat

_WORD = st.text(st.characters(categories=("L", "N", "P", "S")), min_size=1, max_size=12)
_ARG = _WORD.filter(lambda word: not word.endswith("\\"))  # a final backslash continues a line
_MARKDOWN_PIECES = (*"ab #*_`~-|>[]()!1.", "\n", "\n\n", "  ", "```", "~~~", "```python\n")
_MARKDOWN = st.lists(st.sampled_from(_MARKDOWN_PIECES), max_size=60).map("".join)


@given(st.text())
def test_parse_line_never_raises_and_returns_a_line(text: str) -> None:
    assert isinstance(parse_line(text), Prompt | SlashCommand | Invalid | Empty)


@given(st.text())
def test_text_that_does_not_start_with_a_slash_is_a_prompt(text: str) -> None:
    line = parse_line(text)
    if not text.strip():
        assert line == Empty()
    elif not text.strip().startswith("/"):
        assert line == Prompt(text.strip("\n"))


@given(st.text(st.characters(min_codepoint=ord("a"), max_codepoint=ord("z")), min_size=1))
def test_an_unknown_command_gets_a_help_hint(word: str) -> None:
    known = [name for name in (*COMMANDS, "quit", "q") if name.startswith(word)]
    line = parse_line(f"/{word}")
    if not known:
        assert isinstance(line, Invalid)
        assert line.message.startswith(f"unknown command /{word}")
        assert "/help lists the commands" in line.message


@given(st.sampled_from(sorted(COMMANDS)), st.data())
def test_a_command_its_unique_prefixes_and_its_arguments_parse(
    name: str, data: st.DataObject
) -> None:
    spec = COMMANDS[name]
    args = data.draw(st.lists(_ARG, max_size=spec.max_args))
    unique = [
        name[:size]
        for size in range(1, len(name) + 1)
        if [other for other in COMMANDS if other.startswith(name[:size])] == [name]
    ]
    typed = data.draw(st.sampled_from(unique))
    assert parse_line(" ".join([f"/{typed.upper()}", *args])) == SlashCommand(name, tuple(args))


@given(st.sampled_from(sorted(COMMANDS)), st.lists(_ARG, min_size=1, max_size=4))
def test_too_many_arguments_show_the_usage(name: str, extra: list[str]) -> None:
    args = ["x"] * COMMANDS[name].max_args + extra
    assert parse_line(" ".join([f"/{name}", *args])) == Invalid(f"usage: {COMMANDS[name].usage}")


@given(st.text(min_size=1).filter(lambda t: t.strip() == t and "\n" not in t))
def test_a_double_slash_sends_the_rest_with_one_slash(text: str) -> None:
    assert parse_line(f"//{text}") == Prompt(f"/{text}")


@given(st.one_of(st.none(), st.text(max_size=20)))
def test_help_text_never_raises(topic: str | None) -> None:
    shown = help_text(topic)
    assert shown
    if topic is None:
        assert all(spec.usage in shown for spec in COMMANDS.values())


@given(_MARKDOWN)
def test_the_settled_part_ends_at_a_line_start(text: str) -> None:
    end = stable_end(text)
    assert 0 <= end <= len(text)
    assert end == 0 or text[end - 1] in "\n\r"
    assert stable_end(text[:end]) == end  # the settled part is settled on its own


@given(_MARKDOWN, _MARKDOWN)
def test_the_settled_part_only_grows(text: str, more: str) -> None:
    assert stable_end(text + more) >= stable_end(text)


_PARAGRAPH = st.lists(st.sampled_from(["word", "*em*", "`x`", "#", "-"]), min_size=1, max_size=6)
_CODE = st.lists(st.sampled_from(["x = 1", "", "  y", "# c", "**"]), min_size=1, max_size=5)


@given(
    st.lists(st.tuples(st.booleans(), st.one_of(_PARAGRAPH, _CODE)), min_size=1, max_size=6),
    st.data(),
)
def test_the_settled_part_never_ends_inside_a_code_block(
    blocks: list[tuple[bool, list[str]]], data: st.DataObject
) -> None:
    """Streamed up to any point, a document of paragraphs and code blocks is never cut
    inside a code block."""
    document, spans = "", []
    for is_code, words in blocks:
        text = "```\n" + "\n".join(words) + "\n```\n" if is_code else " ".join(words) + "\n"
        if is_code:
            spans.append((len(document), len(document) + len(text)))
        document += text + "\n"
    cut = data.draw(st.integers(0, len(document)))
    end = stable_end(document[:cut])
    assert not [span for span in spans if span[0] < end < span[1]]


def _events() -> st.SearchStrategy[ChatEvent]:
    call = st.builds(
        ToolCallBlock.create,
        id=st.just("c1"),
        name=st.sampled_from(["read_file", "task", "x"]),
        arguments=st.dictionaries(st.sampled_from(["path", "subagent_name"]), _WORD, max_size=2),
    )
    result = st.one_of(
        st.builds(ToolResultBlock, call_id=st.just("c1"), name=st.just("t"), result=st.text()),
        st.builds(ToolResultBlock, call_id=st.just("c1"), name=st.just("task"), result=st.text()),
        st.builds(ToolResultBlock, call_id=st.just("c1"), name=st.just("t"), error=st.text()),
    )
    return st.one_of(
        st.builds(TextDelta, _MARKDOWN),
        st.builds(ThinkingDelta, st.text(max_size=10)),
        st.builds(ToolCallEvent, call),
        st.builds(ToolResultEvent, result),
    )


@given(st.lists(_events(), max_size=25), st.booleans())
def test_any_stream_of_events_renders(events: list[ChatEvent], stopped: bool) -> None:
    """Markdown of random partial text, folded tools and a footer or a stop never raise."""
    screen = io.StringIO()
    console = make_console(screen, no_color=True, terminal=False, width=60)
    with TurnView(console) as view:
        for event in events:
            view.show(event)
        with view.paused():
            console.print("question")
        if stopped:
            view.stopped("stopped")
        else:
            view.finish("the footer")
    assert screen.getvalue().rstrip().endswith("stopped" if stopped else "the footer")


@given(st.lists(_MARKDOWN, max_size=12), st.booleans())
def test_the_live_area_holds_exactly_the_unsettled_text(deltas: list[str], terminal: bool) -> None:
    """While a reply streams, everything up to its settled end is printed and the rest is in
    the live area, whether or not the console is a terminal."""
    console = make_console(io.StringIO(), no_color=True, terminal=terminal, width=60)
    streamed = ""
    with TurnView(console) as view:
        for delta in deltas:
            view.show(TextDelta(delta))
            streamed += delta
            assert streamed.endswith(view.in_progress)
            assert len(streamed) - len(view.in_progress) == stable_end(streamed)
        view.finish("done")
    assert view.in_progress == ""


@given(st.text(), st.integers(min_value=2, max_value=200))
def test_shortened_is_one_line_within_the_limit(text: str, limit: int) -> None:
    short = shortened(text, limit)
    assert len(short) <= limit
    assert "\n" not in short


@given(_WORD, _WORD, st.text(st.characters(categories=("Ll", "Nd")), min_size=8))
def test_the_footer_names_provider_model_and_session(
    provider: str, model: str, session: str
) -> None:
    assert footer_line(provider, model, session, None) == (
        f"{provider} · {model} · session {session[:8]}"
    )


@given(st.text(max_size=20), st.integers(0, 10**6), st.integers(0, 10**6))
def test_every_compression_outcome_has_a_message(status: str, before: int, after: int) -> None:
    assert compression_message(Compressed(status, before, after))


@given(st.text().filter(lambda text: text != "-"))
def test_a_prompt_other_than_dash_is_taken_as_given(prompt: str) -> None:
    assert read_prompt(prompt, io.StringIO("not read")) == prompt


@given(
    st.sampled_from([None, "chat"]),
    st.booleans(),
    st.one_of(st.none(), st.just(Path("s.json"))),
    st.booleans(),
)
def test_an_interactive_chat_needs_a_terminal_and_no_scripted_output(
    command: str | None, as_json: bool, schema: Path | None, terminal: bool
) -> None:
    args = argparse.Namespace(command=command, prompt=None, json=as_json, output_schema=schema)
    reason = not_interactive_reason(args, terminal=terminal)
    scripted = command == "chat" and (as_json or schema is not None)
    assert (reason is None) == (terminal and not scripted)


@given(st.booleans(), st.one_of(st.none(), st.text(max_size=5)))
def test_colours_go_with_either_switch(flag: bool, no_color: str | None) -> None:
    environ = {} if no_color is None else {"NO_COLOR": no_color}
    assert color_disabled(argparse.Namespace(no_color=flag), environ) == bool(flag or no_color)


@given(st.lists(st.text(st.characters(categories=("L", "N", "Zs")), min_size=1), max_size=8))
@settings(max_examples=20)
def test_history_lines_stored_before_the_file_is_known_are_kept(lines: list[str]) -> None:
    """Lines entered while the settings are still read are written, in order, once known."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "deep" / "prompt-history"
        known = threading.Event()
        history = LazyFileHistory(lambda timeout: path if known.wait(timeout) else None)
        half = len(lines) // 2
        for line in lines[:half]:
            history.store_string(line)
        known.set()
        for line in lines[half:]:
            history.store_string(line)
        history.flush(1.0)
        assert list(reversed(list(history.load_history_strings()))) == lines
        if lines:
            assert path.stat().st_mode & 0o077 == 0  # only the user may read it


_LINES = st.one_of(
    st.sampled_from(
        ["/help", "/tools", "/model", "/provider", "/session", "/compress", "/clear", "/"]
    ),
    st.builds(lambda c, a: f"/{c} {a}", st.sampled_from(sorted(set(COMMANDS) - {"exit"})), _ARG),
    st.builds(lambda w: f"/{w}", _ARG),
    _ARG,
).filter(lambda line: parse_line(line) != SlashCommand("exit"))


def _echo(invocation: ModelInvocation) -> ScriptedReply:
    return ScriptedReply(f"heard {len(invocation.history)}")


@given(st.lists(_LINES, max_size=6))
@settings(max_examples=15)
def test_the_loop_survives_any_lines(lines: list[str]) -> None:
    """Whatever is typed (but /exit), the chat answers or explains, and goes on."""

    async def chat() -> str:
        with tempfile.TemporaryDirectory() as directory:
            app = build_test_app(FunctionProvider(_echo), workspace=Path(directory))
            async with driven_chat(app) as driver:
                driver.type("".join(f"{line}\r" for line in lines) + "/session show\r/exit\r")
                assert await asyncio.wait_for(driver.task, 20) == 0
                return driver.screen

    screen = asyncio.run(chat())
    assert screen.rstrip().endswith(" turns")


_NAMES = st.text(st.characters(min_codepoint=ord("a"), max_codepoint=ord("z")), min_size=1)


@given(st.lists(st.one_of(_NAMES.map(lambda m: ("model", m)), st.just(("provider", "demo")))))
@settings(max_examples=20)
def test_any_switches_keep_the_session_and_its_history(switches: list[tuple[str, str]]) -> None:
    """However often the model or provider changes, the session and its history stay, and the
    scope is the last one asked for."""

    async def converse() -> None:
        with tempfile.TemporaryDirectory() as directory:
            app = build_test_app(FunctionProvider(_echo), workspace=Path(directory))
            conversation = Conversation(app, ScopeRequest())
            await conversation.chat.send("hello")
            first = conversation
            for kind, name in switches:
                if kind == "model":
                    conversation = conversation.switch_model(name)
                else:
                    conversation = conversation.switch_provider(name)
            assert conversation.state.session_id == first.state.session_id
            assert await conversation.context.history.messages() == (
                await first.context.history.messages()
            )
            models = [name for kind, name in switches if kind == "model"]
            last_is_model = bool(switches) and switches[-1][0] == "model"
            expected = models[-1] if last_is_model else "chatscope-demo"
            assert conversation.state.model == expected

    asyncio.run(converse())


@given(
    st.one_of(st.none(), _WORD),
    st.one_of(st.none(), _WORD),
    st.one_of(st.none(), _WORD),
    st.booleans(),
)
def test_chat_options_take_the_chat_flags(
    provider: str | None, model: str | None, session: str | None, no_color: bool
) -> None:
    args = argparse.Namespace(
        command="chat", provider=provider, model=model, session=session, system=None
    )
    options = ChatOptions.from_args(args, no_color=no_color)
    assert (options.provider, options.model, options.session_id) == (provider, model, session)
    assert options.no_color is no_color
    assert ChatOptions.from_args(argparse.Namespace(command=None), no_color=False) == ChatOptions()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@given(st.one_of(_JSON, st.fixed_dictionaries({"usage": _JSON, "terminate_reason": _JSON})))
@example({"usage": None, "terminate_reason": "\n"})
@example({"subagent_name": "a\nb", "model_calls": [1, 2], "usage": {"input_tokens": "x\ny"}})
def test_a_subagent_result_of_any_shape_shows_as_one_line(document: object) -> None:
    screen = io.StringIO()
    console = make_console(screen, no_color=True, terminal=False, width=80)
    result = ToolResultBlock(call_id="c", name="task", result=json.dumps(document))
    with TurnView(console) as view:
        view.show(ToolResultEvent(result))
    assert screen.getvalue().startswith("■ subagent")
    assert screen.getvalue().count("\n") == 1


@given(st.text(max_size=40), st.text(max_size=200))
def test_a_subagent_call_of_any_name_and_goal_shows_as_one_line(name: str, goal: str) -> None:
    screen = io.StringIO()
    console = make_console(screen, no_color=True, terminal=False, width=120)
    arguments = {"subagent_name": name, "goal_prompt": goal}
    with TurnView(console) as view:
        view.show(ToolCallEvent(ToolCallBlock.create(id="c", name="task", arguments=arguments)))
    assert screen.getvalue().startswith("▶ subagent")
    assert screen.getvalue().count("\n") == 1


@given(st.integers(0, 10**9), st.integers(0, 10**9))
def test_the_footer_counts_the_turns_tokens(tokens_in: int, tokens_out: int) -> None:
    turn = CompletedTurn("", (), (), Usage(tokens_in, tokens_out), FinishReason.STOP, 1)
    assert footer_line("p", "m", "s" * 32, turn).endswith(
        f"· {tokens_in} in / {tokens_out} out tokens"
    )
