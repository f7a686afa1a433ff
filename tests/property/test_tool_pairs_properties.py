"""Properties of tool-pair repair: every call answered once, nothing else touched, valid on wire."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from hypothesis import given, settings

from chatscope.adapters.providers.anthropic.messages import AnthropicProvider
from chatscope.adapters.providers.gemini import GeminiProvider
from chatscope.adapters.providers.openai.chat import OpenAIChatProvider
from chatscope.services.chat.tool_pairs import (
    INTERRUPTED_CALL_ERROR,
    is_well_paired,
    repair_tool_pairs,
)
from chatscope.services.events import ProviderEvent
from chatscope.services.messages import Message, Role
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.ports import ModelProvider
from chatscope.testing import FunctionProvider, ScriptedReply
from tests.support.adapter_helpers import collect, make_invocation, recording_client
from tests.support.histories import (
    assert_wire_paired,
    compression_context,
    messy_histories,
    well_paired_histories,
    wire_items,
)
from tests.support.scopes import make_chat
from tests.support.streams import minimal_stream

ADAPTERS: dict[str, Callable[..., ModelProvider]] = {
    "anthropic": AnthropicProvider,
    "openai": OpenAIChatProvider,
    "gemini": GeminiProvider,
}


@given(messages=messy_histories())
def test_after_repair_every_call_has_exactly_one_result(messages: tuple[Message, ...]) -> None:
    """Every call is answered once, right after it, and no result answers nothing."""
    repaired = repair_tool_pairs(messages)
    assert is_well_paired(repaired)
    for index, message in enumerate(repaired):
        if message.role is Role.ASSISTANT and message.tool_calls:
            answer = repaired[index + 1]
            assert sorted(r.call_id for r in answer.tool_results) == sorted(
                c.id for c in message.tool_calls
            )


@given(messages=messy_histories())
def test_repair_never_invents_or_loses_a_call(messages: tuple[Message, ...]) -> None:
    """The calls are those of the input, in order, and there are exactly as many results."""
    repaired = repair_tool_pairs(messages)
    calls = [call for m in repaired for call in m.tool_calls]
    assert calls == [call for m in messages for call in m.tool_calls]
    assert len(calls) == sum(len(m.tool_results) for m in repaired)


@given(messages=messy_histories())
def test_repair_keeps_every_other_message_and_real_result(messages: tuple[Message, ...]) -> None:
    """User and assistant messages survive in order; the only new results are synthetic."""
    repaired = repair_tool_pairs(messages)
    assert [m for m in repaired if m.role is not Role.TOOL] == [
        m for m in messages if m.role is not Role.TOOL
    ]
    original_results = [r for m in messages for r in m.tool_results]
    for result in (r for m in repaired for r in m.tool_results):
        assert result in original_results or result.error == INTERRUPTED_CALL_ERROR
    assert repair_tool_pairs(repaired) == repaired


@given(messages=well_paired_histories())
def test_repair_leaves_a_well_paired_history_alone(messages: tuple[Message, ...]) -> None:
    """A history as chatscope stores it comes back as the very same tuple."""
    assert is_well_paired(messages)
    assert repair_tool_pairs(messages) is messages


@settings(max_examples=25)
@given(stored=messy_histories())
async def test_every_request_a_provider_receives_is_well_paired(
    stored: tuple[Message, ...],
) -> None:
    """Whatever history a session resumes, the request it sends pairs every call with a result."""

    def respond(invocation: ModelInvocation) -> list[ProviderEvent]:
        return ScriptedReply(text="ok").events()

    provider = FunctionProvider(respond)
    context = compression_context(stored, provider=provider)
    await make_chat(context).send("go on")
    sent = provider.invocations[0].history
    assert is_well_paired(sent)
    assert sent[-1] == Message.user("go on")


@pytest.mark.parametrize("provider", sorted(ADAPTERS))
@settings(max_examples=20)
@given(stored=messy_histories())
async def test_a_repaired_history_is_paired_in_every_wire_format(
    provider: str, stored: tuple[Message, ...]
) -> None:
    """Mapped by the real adapter, each call is answered before the next prompt, once."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = minimal_stream(provider, "ok")
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    history = repair_tool_pairs((*stored, Message.user("go on")))
    invocation = make_invocation(
        "http://127.0.0.1:9", history=history, provider=provider, model="m"
    )
    async with recording_client(answer, seen) as client:
        await collect(ADAPTERS[provider](client, name=provider), invocation)
    items = wire_items(provider, json.loads(seen[0].content))
    assert_wire_paired(items)
    calls = sum(len(m.tool_calls) for m in stored)
    assert sum(1 for kind, _ in items if kind in {"call", "tool_use", "functionCall"}) == calls
