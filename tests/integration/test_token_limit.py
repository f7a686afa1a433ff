"""An answer that stopped at the output token limit, even an empty one, is stored as it was.

The turn keeps an assistant message (empty if the model said nothing) so roles still alternate
on the next request, each wire format gets a history it accepts, and the CLI says that the
limit was hit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.adapters.providers.anthropic.messages import AnthropicProvider
from chatscope.adapters.providers.gemini import GeminiProvider
from chatscope.adapters.providers.openai.chat import OpenAIChatProvider
from chatscope.adapters.providers.openai.responses import OpenAIResponsesProvider
from chatscope.errors import ProviderError
from chatscope.services.events import FinishReason
from chatscope.services.messages import Message, Role
from chatscope.services.runtime.ports import ModelProvider
from chatscope.testing.fakes import ScriptedProvider, ScriptedReply
from tests.support.adapter_helpers import collect, native_invocation, responding_client
from tests.support.cli import cli_env, openai_text_stream, run_cli
from tests.support.replay_server import ScriptedResponse, replay_server
from tests.support.scopes import make_chat, make_context

SESSION_NOTICE = re.compile(r"\[session ([0-9a-f]{32}): continue with --session\]")
EMPTY_AT_LIMIT = (
    b'data: {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, '
    b'"finish_reason": null}]}\n\n'
    b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}\n\n'
    b"data: [DONE]\n\n"
)


async def test_the_cli_says_the_limit_was_hit_and_the_next_turn_alternates(
    tmp_path: Path,
) -> None:
    """An empty answer cut at the limit: a note on stderr, and the continued chat sends
    user, assistant (empty), user, never two user prompts in a row."""
    env = cli_env(tmp_path / "data", OPENAI_API_KEY="sk-local-test-key-1")
    with replay_server(
        ScriptedResponse.sse(EMPTY_AT_LIMIT), ScriptedResponse.sse(openai_text_stream("Short."))
    ) as server:
        options = ("--provider", "openai", "--model", "m1", "--base-url", f"{server.url}/v1")
        first = await run_cli("chat", "Write an epic.", *options, cwd=tmp_path, env=env)
        assert first.returncode == 0, first.stderr
        assert "output token limit" in first.stderr
        notice = SESSION_NOTICE.search(first.stderr)
        assert notice, first.stderr
        second = await run_cli(
            "chat", "Shorter, please.", *options, "--session", notice.group(1),
            cwd=tmp_path, env=env,
        )  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert "output token limit" not in second.stderr
    sent = server.requests[1].json()["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "Write an epic."),
        ("assistant", ""),
        ("user", "Shorter, please."),
    ]


@given(
    replies=st.lists(
        st.tuples(st.sampled_from(["", "", "some text"]), st.sampled_from(list(FinishReason))),
        min_size=1,
        max_size=6,
    )
)
async def test_roles_alternate_whatever_the_answers(
    replies: list[tuple[str, FinishReason]],
) -> None:
    """Empty or not, at the limit or not, each answer is stored, so every request's history
    alternates user and assistant and ends with the new prompt."""
    scripted = [ScriptedReply(text=text, finish=finish) for text, finish in replies]
    provider = ScriptedProvider(scripted)
    chat = make_chat(make_context(provider))
    for index, (_, finish) in enumerate(replies):
        turn = await chat.send(f"prompt {index}")
        assert turn.finish_reason is finish
    for invocation in provider.invocations:
        roles = [message.role for message in invocation.history]
        assert roles == [Role.USER, Role.ASSISTANT] * (len(roles) // 2) + [Role.USER]
    stored = await chat.context.history.messages()
    assert [m.role for m in stored] == [Role.USER, Role.ASSISTANT] * len(replies)
    assert [m.text for m in stored[1::2]] == [text for text, _ in replies]


HISTORY = (Message.user("Write an epic."), Message(Role.ASSISTANT, ()), Message.user("Shorter."))


async def request_body(provider: str) -> dict[str, Any]:
    """What an adapter sends for a history holding an empty assistant message."""
    seen: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(400, json={"error": {"message": "stop here"}})

    adapters: dict[str, Callable[[httpx.AsyncClient], ModelProvider]] = {
        "openai": OpenAIChatProvider,
        "openai-responses": OpenAIResponsesProvider,
        "anthropic": AnthropicProvider,
        "gemini": GeminiProvider,
    }
    async with responding_client(respond) as client:
        invocation = native_invocation(
            "http://llm/v1", HISTORY, provider=provider, key="sk-test-0123456789", model="m"
        )
        with pytest.raises(ProviderError):
            await collect(adapters[provider](client), invocation)
    body: dict[str, Any] = json.loads(seen[0].content)
    return body


async def test_each_wire_format_gets_an_empty_answer_it_accepts() -> None:
    """Chat Completions takes an empty assistant content; Anthropic refuses empty content, so
    it and Gemini (no empty parts) leave the message out; Responses sends no empty item."""
    chat = (await request_body("openai"))["messages"]
    assert [(m["role"], m["content"]) for m in chat] == [
        ("user", "Write an epic."),
        ("assistant", ""),
        ("user", "Shorter."),
    ]
    anthropic = (await request_body("anthropic"))["messages"]
    assert all(m["content"] for m in anthropic)
    assert all(block.get("text") for m in anthropic for block in m["content"])
    gemini = (await request_body("gemini"))["contents"]
    assert all(part.get("text") for c in gemini for part in c["parts"])
    responses = (await request_body("openai-responses"))["input"]
    assert [i["content"] for i in responses] == ["Write an epic.", "Shorter."]
