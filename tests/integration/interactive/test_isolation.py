"""Two interactive chats in one process, on one application, at the same time: neither sees the
other's session, provider, model or history, whatever the other switches to."""

from __future__ import annotations

import asyncio
from pathlib import Path

from chatscope.services.messages import Role
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.testing import FunctionProvider, ScriptedReply, build_test_app
from tests.support.repl import ChatDriver, driven_chat


def _echo(name: str) -> FunctionProvider:
    async def answer(invocation: ModelInvocation) -> ScriptedReply:
        await asyncio.sleep(0.001)  # let the other chat's turn interleave with this one
        return ScriptedReply(f"{invocation.model} heard: {invocation.history[-1].text}")

    return FunctionProvider(answer, name=name)


_SWITCHED = {
    "/provider openai": "openai · gpt-4o-mini",
    "/model a-model": "openai · a-model",
    "/model b-model": "demo · b-model",
}


async def _converse(chat: ChatDriver, word: str, switch: list[str]) -> None:
    for index in range(3):
        chat.type(f"{word} {index}\r")
        await chat.until(f"heard: {word} {index}")
        if index < len(switch):
            chat.type(switch[index] + "\r")
            await chat.until(f"now {_SWITCHED[switch[index]]}")


def _prompts(invocation: ModelInvocation) -> list[str]:
    return [message.text for message in invocation.history if message.role is Role.USER]


async def test_two_chats_never_share_scope_state(tmp_path: Path) -> None:
    """Concurrent loops with pipe inputs keep their own ids, providers, models and history."""
    demo, openai = _echo("demo"), _echo("openai")
    app = build_test_app(demo, openai, workspace=tmp_path)
    async with driven_chat(app) as first, driven_chat(app) as second:
        await asyncio.gather(
            _converse(first, "alpha", ["/provider openai", "/model a-model"]),
            _converse(second, "beta", ["/model b-model"]),
        )
        one, two = first.repl.conversation, second.repl.conversation
        assert one is not None
        assert two is not None
        assert (one.state.provider, one.state.model) == ("openai", "a-model")
        assert (two.state.provider, two.state.model) == ("demo", "b-model")
        assert one.state.session_id != two.state.session_id
        assert one.context.history is not two.context.history
        assert [m.text for m in await one.context.history.messages() if m.role is Role.USER] == [
            "alpha 0",
            "alpha 1",
            "alpha 2",
        ]
        assert [m.text for m in await two.context.history.messages() if m.role is Role.USER] == [
            "beta 0",
            "beta 1",
            "beta 2",
        ]
        assert await first.finish() == 0
        assert await second.finish() == 0
    for invocation in (*demo.invocations, *openai.invocations):
        words = {prompt.split()[0] for prompt in _prompts(invocation)}
        assert len(words) == 1, _prompts(invocation)  # never one chat's prompt in the other's
    assert {i.model for i in openai.invocations} == {"gpt-4o-mini", "a-model"}
    assert "a-model" not in second.screen
    assert "b-model" not in first.screen
