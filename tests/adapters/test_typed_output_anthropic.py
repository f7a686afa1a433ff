"""Typed output on the Anthropic wire (a forced output tool whose input is the answer), a typed
turn against a real local server, and the offline demo provider's schema-shaped answers."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from chatscope.adapters.providers.anthropic.messages import AnthropicProvider
from chatscope.adapters.providers.demo import OFFLINE_LABEL, DemoProvider
from chatscope.errors import OutputValidationError
from chatscope.services.events import FinishReason, TextDelta, ToolCallEvent
from chatscope.services.runtime.invocation import OUTPUT_TOOL_NAME
from tests.support.adapter_helpers import collect, make_invocation, outcome, recording_client
from tests.support.replay_server import ScriptedResponse, replay_server
from tests.support.scopes import make_chat, make_context
from tests.support.typed_output import (
    ANSWER,
    TOOL,
    VERDICT,
    VERDICT_SCHEMA,
    Verdict,
    sent_body,
    typed,
    with_schema,
)

# --- Anthropic -----------------------------------------------------------------------------------


def _anthropic_events(blocks: list[dict[str, Any]], stop_reason: str) -> bytes:
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 5}}}
    ]
    for index, block in enumerate(blocks):
        if block["type"] == "tool_use":
            start = {**block, "input": {}}
            events.append({"type": "content_block_start", "index": index, "content_block": start})
            text = json.dumps(block["input"])
            for cut in (text[:10], text[10:]):
                delta = {"type": "input_json_delta", "partial_json": cut}
                events.append({"type": "content_block_delta", "index": index, "delta": delta})
        else:
            start = {"type": "text", "text": ""}
            events.append({"type": "content_block_start", "index": index, "content_block": start})
            delta = {"type": "text_delta", "text": block["text"]}
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
        events.append({"type": "content_block_stop", "index": index})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason},
            "usage": {"output_tokens": 7},
        }
    )
    events.append({"type": "message_stop"})
    return "".join(
        f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events
    ).encode()


def _answer_block(answer: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": "toolu_1", "name": OUTPUT_TOOL_NAME, "input": answer}


def _anthropic_reply(blocks: list[dict[str, Any]], stop_reason: str = "tool_use") -> httpx.Response:
    return httpx.Response(
        200,
        headers={"content-type": "text/event-stream"},
        content=_anthropic_events(blocks, stop_reason),
    )


async def test_anthropic_forces_the_output_tool_when_it_is_the_only_tool() -> None:
    """The schema is the output tool's `input_schema`; `tool_choice` names that tool."""
    reply = _anthropic_reply([_answer_block(ANSWER)])
    body = await sent_body(AnthropicProvider, typed("http://llm", model="claude-sonnet-4-5"), reply)
    [tool] = body["tools"]
    assert tool["name"] == OUTPUT_TOOL_NAME
    assert tool["input_schema"] == VERDICT_SCHEMA
    assert "final answer" in tool["description"]
    assert body["tool_choice"] == {"type": "tool", "name": OUTPUT_TOOL_NAME}


async def test_anthropic_lets_the_model_call_other_tools_first() -> None:
    """With other tools the choice is `any`: some tool, the output tool last."""
    reply = _anthropic_reply([_answer_block(ANSWER)])
    invocation = typed("http://llm", model="claude-sonnet-4-5", tools=[TOOL])
    body = await sent_body(AnthropicProvider, invocation, reply)
    assert [tool["name"] for tool in body["tools"]] == ["lookup", OUTPUT_TOOL_NAME]
    assert body["tool_choice"] == {"type": "any"}


async def test_anthropic_does_not_force_a_tool_while_thinking() -> None:
    """The API refuses a forced tool with thinking on: the choice is `auto` then."""
    reply = _anthropic_reply([_answer_block(ANSWER)])
    params = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    invocation = typed("http://llm", model="claude-sonnet-4-5", params=params)
    body = await sent_body(AnthropicProvider, invocation, reply)
    assert body["tool_choice"] == {"type": "auto"}
    assert body["thinking"] == params["thinking"]


async def test_anthropic_sends_no_output_tool_without_a_schema() -> None:
    """An untyped call has neither the tool nor a tool choice."""
    reply = _anthropic_reply([{"type": "text", "text": "hi"}], "end_turn")
    body = await sent_body(AnthropicProvider, make_invocation("http://llm"), reply)
    assert "tools" not in body
    assert "tool_choice" not in body


async def test_the_streamed_output_tool_call_is_the_answer_text_not_a_call() -> None:
    """Its input streams out as text, no call is made, and the response ends with `stop`."""
    reply = _anthropic_reply([_answer_block(ANSWER)])
    async with recording_client(lambda _: reply, []) as client:
        events = await collect(AnthropicProvider(client), typed("http://llm"))
    assert not [event for event in events if isinstance(event, ToolCallEvent)]
    summary = outcome(events)
    assert json.loads(summary.text) == ANSWER
    assert summary.finish.reason is FinishReason.STOP
    assert summary.finish.raw == "tool_use"


async def test_a_real_tool_call_next_to_the_answer_is_still_a_call() -> None:
    """Another tool's call keeps the response waiting for tool results."""
    lookup = {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": {"q": 1}}
    reply = _anthropic_reply([lookup])
    async with recording_client(lambda _: reply, []) as client:
        events = await collect(AnthropicProvider(client), typed("http://llm"))
    calls = [event.call.name for event in events if isinstance(event, ToolCallEvent)]
    assert calls == ["lookup"]
    assert outcome(events).finish.reason is FinishReason.TOOL_CALLS


async def test_a_whole_body_answer_is_read_the_same_way() -> None:
    """A non-streamed message with the output tool gives the same text and finish."""
    message = {
        "type": "message",
        "content": [_answer_block(ANSWER)],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 4, "output_tokens": 6},
    }
    reply = httpx.Response(200, json=message)
    async with recording_client(lambda _: reply, []) as client:
        events = await collect(AnthropicProvider(client), typed("http://llm"))
    summary = outcome(events)
    assert json.loads(summary.text) == ANSWER
    assert summary.calls == []
    assert summary.finish.reason is FinishReason.STOP


async def test_without_a_schema_a_tool_named_like_the_output_tool_is_an_ordinary_call() -> None:
    """Only a typed call reads the output tool as the answer."""
    reply = _anthropic_reply([_answer_block(ANSWER)])
    async with recording_client(lambda _: reply, []) as client:
        events = await collect(AnthropicProvider(client), make_invocation("http://llm"))
    assert [e.call.name for e in events if isinstance(e, ToolCallEvent)] == [OUTPUT_TOOL_NAME]


async def test_a_typed_anthropic_turn_over_a_real_socket_with_one_retry() -> None:
    """A wrong answer is sent back as text; the forced tool's second answer validates."""
    wrong = _anthropic_events([_answer_block({"holds": "maybe"})], "tool_use")
    right = _anthropic_events([_answer_block(ANSWER)], "tool_use")
    with replay_server(ScriptedResponse.sse(wrong), ScriptedResponse.sse(right)) as server:
        async with httpx.AsyncClient() as client:
            provider = AnthropicProvider(client)
            context = make_context(provider, api_key="sk-ant-test-123456", base_url=server.url)
            chat = make_chat(context)
            turn = await chat.send("Is it?", output_type=Verdict)
    assert turn.output == Verdict(holds=True, reason="checked")
    assert turn.finish_reason is FinishReason.STOP
    first, second = (request.json() for request in server.requests)
    assert first["tool_choice"] == second["tool_choice"]
    roles = [(m["role"], [part["type"] for part in m["content"]]) for m in second["messages"]]
    assert roles == [("user", ["text"]), ("assistant", ["text"]), ("user", ["text"])]
    assert "holds" in second["messages"][-1]["content"][0]["text"]


# --- demo ----------------------------------------------------------------------------------------


async def test_the_demo_provider_answers_with_the_smallest_matching_json() -> None:
    """Offline, a typed chat still completes: strings carry the offline label."""
    provider = DemoProvider()
    turn = await make_chat(make_context(provider)).send("Is it?", output_type=Verdict)
    assert turn.output == Verdict(holds=False, reason=OFFLINE_LABEL, confidence=0)


@pytest.mark.parametrize(
    ("output_type", "expected"),
    [
        (list[int], [0]),
        (
            {"type": "object", "properties": {"when": {"type": "string", "format": "date"}}},
            {"when": "1970-01-01"},
        ),
        (
            {
                "type": "object",
                "properties": {"kind": {"enum": ["a", "b"]}, "n": {"type": "integer"}},
                "required": ["kind", "n"],
            },
            {"kind": "a", "n": 0},
        ),
    ],
)
async def test_the_demo_provider_follows_the_schema(output_type: Any, expected: Any) -> None:
    """Wrapped types, formats, enums and integers come out schema-shaped (optional properties
    too: the strict schema makes every property required)."""
    turn = await make_chat(make_context(DemoProvider())).send("x", output_type=output_type)
    assert turn.output == expected


async def test_a_schema_the_demo_cannot_meet_is_reported_by_validation() -> None:
    """A pattern the offline label does not match fails clearly after the retry."""
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^[0-9]+$"}},
        "required": ["code"],
    }
    provider = DemoProvider()
    with pytest.raises(OutputValidationError, match="does not match"):
        await make_chat(make_context(provider)).send("x", output_type=schema)


async def test_the_demo_answer_is_streamed_as_text() -> None:
    """The typed answer is ordinary streamed text, pieces joined."""
    invocation = with_schema(make_invocation(None, provider="demo"), VERDICT)
    events = await collect(DemoProvider(), invocation)
    text = "".join(event.text for event in events if isinstance(event, TextDelta))
    assert json.loads(text) == {"holds": False, "reason": OFFLINE_LABEL, "confidence": 0}
