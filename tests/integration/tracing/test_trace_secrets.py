"""No key ever reaches a span: not its attributes, its events or its status, content or not."""

from __future__ import annotations

import asyncio
import string
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from chatscope.errors import RateLimitError
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.testing import FunctionProvider, ScriptedReply, build_test_app
from tests.support.subagents import profile, subagent_app
from tests.support.tracing import attribute, everything_recorded, record_spans

# Keys of no recognisable shape, so that only knowing the call's own key can blank them out.
keys = st.text(string.ascii_letters + string.digits, min_size=16, max_size=40)


def _leaky(key: str) -> FunctionProvider:
    """A model that puts `key` everywhere it can: in an error, in tool arguments (one tool
    fails naming it, one lists a file named after it) and in its answer."""
    calls: list[int] = []

    def respond(invocation: ModelInvocation) -> ScriptedReply:
        calls.append(1)
        if len(calls) == 1:
            raise RateLimitError(f"too fast for {key}", provider="openai", retry_after=0)
        if len(invocation.history) == 1:
            tools = [("read_file", {"path": key}), ("list_directory", {"path": "."})]
            return ScriptedReply(tool_calls=tools)
        return ScriptedReply(f"your key is {key}")

    return FunctionProvider(respond, name="openai")


@given(key=keys, capture=st.booleans())
def test_a_key_never_reaches_a_span(tmp_path: Path, key: str, capture: bool) -> None:
    """The call's key, wherever the model, a tool or an error repeats it, is blanked out of
    every span of the turn, with or without content capture."""
    (tmp_path / f"{key}.txt").write_text("x")
    app = build_test_app(
        _leaky(key),
        workspace=tmp_path,
        environ={"OPENAI_API_KEY": key},
        telemetry={"capture_content": capture},
    )
    recorder = record_spans(app)
    chat = app.runtime.chat_session(context=app.runtime.scopes().foreground())
    turn = asyncio.run(chat.send(f"what is my key? it is {key}"))
    assert key in turn.text  # the model did repeat it
    spans = recorder.spans()
    assert {span.name.split()[0] for span in spans} == {"invoke_agent", "chat", "execute_tool"}
    assert key not in everything_recorded(spans)
    if capture:
        assert "[REDACTED]" in everything_recorded(spans)
    (tmp_path / f"{key}.txt").unlink()


@given(key=keys, capture=st.booleans())
def test_a_subagent_key_never_reaches_its_spans(tmp_path: Path, key: str, capture: bool) -> None:
    """A subagent's own key (read from its profile's variable), repeated by its provider's
    error and by its answer, is blanked out of the subagent's spans; without content capture
    it is in no span at all. (With capture, what the subagent says is content of the parent's
    `task` result, blanked with the parent's key and of key-shaped text only.)"""
    calls: list[int] = []

    def parent(invocation: ModelInvocation) -> ScriptedReply:
        if len(invocation.history) == 1:
            task = {"subagent_name": "helper", "goal_prompt": "go"}
            return ScriptedReply(tool_calls=[("task", task)])
        return ScriptedReply("done")

    def helper(invocation: ModelInvocation) -> ScriptedReply:
        calls.append(1)
        if len(calls) == 1:
            raise RateLimitError(f"too fast for {key}", provider="anthropic", retry_after=0)
        return ScriptedReply(f"the key is {key}")

    app = subagent_app(
        FunctionProvider(parent, name="openai"),
        FunctionProvider(helper, name="anthropic"),
        workspace=tmp_path,
        provider="openai",
        profiles=[profile("helper", api_key_env="HELPER_KEY", allowed_tools=())],
        environ={"OPENAI_API_KEY": "parent-key-of-the-test", "HELPER_KEY": key},
        telemetry={"capture_content": capture},
    )
    recorder = record_spans(app)
    chat = app.runtime.chat_session(context=app.runtime.scopes().foreground())
    asyncio.run(chat.send("delegate"))
    [sub_turn] = recorder.named("invoke_agent helper")
    runtime = attribute(sub_turn, "chatscope.runtime.id")
    own = [span for span in recorder.spans() if attribute(span, "chatscope.runtime.id") == runtime]
    assert [span.name.split()[0] for span in own] == ["chat", "invoke_agent"]
    assert key not in everything_recorded(own)
    if not capture:
        assert key not in everything_recorded(recorder.spans())
