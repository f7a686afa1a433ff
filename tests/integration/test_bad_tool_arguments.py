"""Tool calls whose arguments are not a JSON object: an error result the model can correct.

Like any other bad tool input, arguments that do not parse reach the model as an error result
of that call, and the turn goes on; they never fail the turn. Served by real adapters over a
127.0.0.1 socket, and checked on the registry with any text at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st

from chatscope import tool
from chatscope.adapters.providers.openai.chat import OpenAIChatProvider
from chatscope.adapters.providers.openai.responses import OpenAIResponsesProvider
from chatscope.services.messages import Role, ToolCallBlock
from chatscope.services.runtime.ports import ModelProvider
from chatscope.services.tools.registry import ToolRegistry
from tests.support.adapter_helpers import is_json_object
from tests.support.cli import openai_text_stream
from tests.support.replay_server import ScriptedResponse, replay_server
from tests.support.scopes import make_chat, make_context

BROKEN = '{"city": "Paris"'  # a model cut off mid-object


@tool
async def weather(city: str) -> str:
    """Today's weather in a city."""
    return f"sunny in {city}"


def chat_tool_call(arguments: str) -> bytes:
    """A Chat Completions stream asking for `weather` with these raw arguments."""
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "weather", "arguments": arguments},
    }
    chunks: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


def responses_tool_call(arguments: str) -> bytes:
    """A Responses stream asking for `weather` with these raw arguments."""
    item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "weather"}
    events: list[dict[str, Any]] = [
        {"type": "response.output_item.added", "item": {**item, "arguments": ""}},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": arguments},
        {"type": "response.output_item.done", "item": {**item, "arguments": arguments}},
        {"type": "response.completed", "response": {"status": "completed", "output": []}},
    ]
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events)


def responses_text(text: str) -> bytes:
    message = {"type": "message", "id": "msg_1", "role": "assistant"}
    part = {"type": "output_text", "text": text}
    events: list[dict[str, Any]] = [
        {"type": "response.output_item.done", "item": {**message, "content": [part]}},
        {"type": "response.completed", "response": {"status": "completed", "output": []}},
    ]
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events)


async def run_turn(
    provider: Callable[[httpx.AsyncClient], ModelProvider], first: bytes, second: bytes
) -> Any:
    """One turn over a real socket: the broken call, then the model's answer to its error."""
    with replay_server(ScriptedResponse.sse(first), ScriptedResponse.sse(second)) as server:
        async with httpx.AsyncClient(trust_env=False) as client:
            adapter = provider(client)
            context = make_context(adapter, tools=(weather,), base_url=server.url + "/v1")
            turn = await make_chat(context).send("weather in Paris?")
            return turn, server.requests, await context.history.messages()


async def test_chat_completions_arguments_that_do_not_parse_come_back_as_an_error() -> None:
    """The turn goes on: the model reads why its call failed and answers."""
    turn, requests, stored = await run_turn(
        OpenAIChatProvider, chat_tool_call(BROKEN), openai_text_stream("Let me retry.")
    )
    [result] = turn.tool_results
    assert result.is_error
    assert "not valid JSON" in (result.error or "")
    assert turn.text == "Let me retry."
    assert "was not run" in (result.error or "")
    sent = requests[1].json()["messages"]
    assert sent[-1]["role"] == "tool"
    assert sent[-1]["tool_call_id"] == "call_1"
    assert "not valid JSON" in sent[-1]["content"]
    assert [m.role for m in stored] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]


async def test_responses_arguments_that_are_not_an_object_come_back_as_an_error() -> None:
    """A JSON array in place of the object is refused the same way by the Responses adapter."""
    turn, requests, _ = await run_turn(
        OpenAIResponsesProvider, responses_tool_call('["Paris"]'), responses_text("Retrying.")
    )
    [result] = turn.tool_results
    assert result.is_error
    assert "JSON object" in (result.error or "")
    outputs = [i for i in requests[1].json()["input"] if i.get("type") == "function_call_output"]
    assert [o["call_id"] for o in outputs] == ["call_1"]
    assert "sunny" not in outputs[0]["output"]


@given(raw=st.text(max_size=40).filter(lambda text: text != "" and not is_json_object(text)))
async def test_any_unreadable_arguments_give_an_error_result_and_never_run_the_tool(
    raw: str,
) -> None:
    """Whatever text the arguments are, if not a JSON object the tool does not run and the
    model is told, naming the tool."""
    call = ToolCallBlock.from_json("call_1", "weather", raw)
    assert call.arguments == {}
    assert call.arguments_error
    result = await ToolRegistry([weather]).run(call)
    assert result.is_error
    assert "weather" in (result.error or "")
    assert "JSON" in (result.error or "")
    assert "was not run" in (result.error or "")


@given(arguments=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5)))
def test_any_json_object_is_read_as_the_arguments(arguments: dict[str, Any]) -> None:
    """Arguments that are a JSON object are taken as they are, with no error."""
    call = ToolCallBlock.from_json("c", "f", json.dumps(arguments))
    assert (dict(call.arguments), call.arguments_error) == (arguments, None)
    assert ToolCallBlock.from_json("c", "f", "") == ToolCallBlock.create("c", "f", {})
