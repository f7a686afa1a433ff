"""The OpenAI Responses adapter against recorded traffic, a mock transport and properties."""

from __future__ import annotations

import asyncio
import itertools
import json
import string
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.adapters.providers.openai.responses import OpenAIResponsesProvider
from chatscope.errors import (
    ErrorCategory,
    InvalidRequestError,
    MissingProviderRuntimeError,
    ModelNotFoundError,
    ProviderError,
    ProviderNetworkError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
)
from chatscope.services.events import FinishReason, TextDelta, ThinkingDelta, ToolCallEvent
from chatscope.services.frozen import thaw
from chatscope.services.messages import (
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
    Usage,
)
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.ports import ModelProvider
from tests.support.adapter_helpers import (
    PROPERTY,
    SOCKET_PROPERTY,
    assistant_message,
    collect,
    declaration,
    is_json_object,
    make_invocation,
    mock_client,
    mocked_events,
    outcome,
    recording_client,
    replay_events,
    scripted,
    secrets,
    split_at,
    sse_body,
)
from tests.support.adapter_helpers import openai_arguments as arguments
from tests.support.adapter_helpers import openai_json_values as json_values
from tests.support.cassettes import Interaction, fixture_path, load_cassette
from tests.support.replay_server import ReplayServer, ScriptedResponse, replay_server

NAME = "openai-responses"
SUCCESS = [
    ("test_openai_responses_model_simple_response.yaml", 0),
    ("test_responses_create_basic[content_mode0].yaml", 0),
    ("test_openai_responses_model_simple_response_with_tool_call.yaml", 0),
    ("test_openai_responses_model_simple_response_with_tool_call.yaml", 1),
    ("test_responses_create_captures_tool_call_content[content_mode0].yaml", 0),
    ("test_openai_responses_stream.yaml", 0),
    ("test_openai_responses_stream.yaml", 1),
    ("test_responses_basic_streaming.yaml", 0),
    ("test_openai_responses_streaming_usage.yaml", 0),
    ("test_openai_responses_thinking_with_tool_calls.yaml", 0),
    ("test_openai_responses_thinking_with_tool_calls.yaml", 1),
    ("test_reasoning_summary_auto.yaml", 0),
]
ERRORS = [
    (
        "test_openai_responses_model_http_error.yaml",
        InvalidRequestError,
        ErrorCategory.INVALID_REQUEST,
    ),
    (
        "test_responses_create_api_error[content_mode0].yaml",
        ModelNotFoundError,
        ErrorCategory.NOT_FOUND,
    ),
]
MULTI_TURN = [
    "test_openai_responses_model_simple_response_with_tool_call.yaml",
    "test_openai_responses_stream.yaml",
    "test_openai_responses_thinking_with_tool_calls.yaml",
]
STREAMED = [
    (name, index) for name, index in SUCCESS if load_cassette(f"openai/{name}")[index].is_sse
]
PASSED_PARAMS = ("include", "reasoning", "store", "temperature", "tool_choice", "service_tier")


def recorded(name: str, index: int = 0) -> Interaction:
    return load_cassette(f"openai/{name}")[index]


def invocation_for(interaction: Interaction, base_url: str, **overrides: Any) -> ModelInvocation:
    """An invocation mirroring a recorded request: model, instructions, tools and parameters."""
    request = interaction.request_body
    items = request["input"]
    user = (
        items
        if isinstance(items, str)
        else next(i["content"] for i in items if i.get("role") == "user")
    )
    params = {key: request[key] for key in PASSED_PARAMS if key in request}
    if not request.get("stream"):
        params["stream"] = False
    options: dict[str, Any] = {
        "model": request["model"],
        "system": request.get("instructions"),
        "history": [Message.user(user)],
        "tools": [
            declaration(t["name"], t.get("description"), t["parameters"])
            for t in request.get("tools", [])
        ],
        "params": params,
        "provider": NAME,
    }
    return make_invocation(base_url, **(options | overrides))


def sse_payloads(body: bytes) -> list[dict[str, Any]]:
    return [
        json.loads(line[6:]) for line in body.decode().splitlines() if line.startswith("data: ")
    ]


def output_items(interaction: Interaction) -> list[dict[str, Any]]:
    """The finished output items of a recorded response, streamed or whole."""
    if interaction.is_sse:
        payloads = sse_payloads(interaction.body)
        return [p["item"] for p in payloads if p["type"] == "response.output_item.done"]
    return list(interaction.json()["output"])


def final_response(interaction: Interaction) -> dict[str, Any]:
    if interaction.is_sse:
        payloads = sse_payloads(interaction.body)
        return next(p["response"] for p in payloads if p["type"] == "response.completed")
    return dict(interaction.json())


def expected_from_recording(interaction: Interaction) -> dict[str, Any]:
    """Text, thinking, calls, reasoning ids, usage and status read straight off the recording."""
    items = output_items(interaction)
    if interaction.is_sse:
        payloads = sse_payloads(interaction.body)
        text = "".join(p["delta"] for p in payloads if p["type"] == "response.output_text.delta")
    else:
        text = "".join(
            part["text"] for i in items if i["type"] == "message" for part in i["content"]
        )
    reasoning = [i for i in items if i["type"] == "reasoning"]
    usage = final_response(interaction)["usage"]
    return {
        "text": text,
        "thinking": "".join("\n\n".join(p["text"] for p in i["summary"]) for i in reasoning),
        "calls": [
            (i["call_id"], i["name"], json.loads(i["arguments"]))
            for i in items
            if i["type"] == "function_call"
        ],
        "signatures": [(i["id"], i["encrypted_content"]) for i in reasoning],
        "usage": Usage(
            usage["input_tokens"],
            usage["output_tokens"],
            usage["input_tokens_details"]["cached_tokens"],
            usage["output_tokens_details"]["reasoning_tokens"],
        ),
        "status": final_response(interaction)["status"],
    }


def event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields}


def completed(
    status: str = "completed", usage: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    response = {
        "id": "resp_1",
        "object": "response",
        "status": status,
        "output": [],
        "usage": usage,
        **extra,
    }
    return event(f"response.{status}", response=response)


def usage_payload(inputs: int, outputs: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": inputs,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": outputs,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": inputs + outputs,
    }


def text_events(text: str, item_id: str = "msg_1") -> list[dict[str, Any]]:
    message = {"type": "message", "id": item_id, "role": "assistant", "status": "completed"}
    part = {"type": "output_text", "text": text, "annotations": []}
    return [
        event("response.output_item.added", output_index=0, item={**message, "content": []}),
        event("response.content_part.added", item_id=item_id, part={**part, "text": ""}),
        event("response.output_text.delta", item_id=item_id, delta=text),
        event("response.output_text.done", item_id=item_id, text=text),
        event("response.content_part.done", item_id=item_id, part=part),
        event("response.output_item.done", output_index=0, item={**message, "content": [part]}),
    ]


async def replay(response: ScriptedResponse, **options: Any) -> list[Any]:
    """Serve one response on a real socket and collect the adapter's events."""
    return await replay_events(OpenAIResponsesProvider, response, **options)


async def mocked(pieces: list[bytes], **options: Any) -> list[Any]:
    """Stream `pieces` through a mock transport and collect the adapter's events."""
    return await mocked_events(OpenAIResponsesProvider, pieces, **options)


async def whole(payload: dict[str, Any], **options: Any) -> list[Any]:
    """Answer with one JSON body and collect the adapter's events."""
    async with mock_client([json.dumps(payload).encode()], content_type="application/json") as c:
        return await collect(
            OpenAIResponsesProvider(c), make_invocation("http://llm/v1", **options)
        )


def text_reply(_: httpx.Request) -> httpx.Response:
    body = sse_body([*text_events("ok"), completed()])
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


# --- recorded traffic over a real socket ---------------------------------------------------


def test_every_responses_fixture_is_covered() -> None:
    """Every recorded Responses interaction in the fixtures is replayed by a test here."""
    files = {
        path.name
        for path in fixture_path("openai").glob("*.yaml")
        if load_cassette(f"openai/{path.name}")[0].uri.endswith("/responses")
    }
    assert {name for name, _ in SUCCESS} | {name for name, _, _ in ERRORS} == files
    for name in files - {name for name, _, _ in ERRORS}:
        indexes = {index for file, index in SUCCESS if file == name}
        assert indexes == set(range(len(load_cassette(f"openai/{name}"))))


@pytest.mark.parametrize(("name", "index"), SUCCESS)
async def test_recorded_response_parses_to_recorded_content(name: str, index: int) -> None:
    """Text, thinking, calls, reasoning ids, usage and finish equal what the recording holds."""
    interaction = recorded(name, index)
    with replay_server(scripted(interaction)) as server:
        async with httpx.AsyncClient() as client:
            events = await collect(
                OpenAIResponsesProvider(client), invocation_for(interaction, server.url + "/v1")
            )
    expected = expected_from_recording(interaction)
    result = outcome(events)
    assert result.text == expected["text"]
    assert result.thinking == expected["thinking"]
    assert result.calls == expected["calls"]
    assert result.signatures == expected["signatures"]
    assert result.usage == expected["usage"]
    assert result.finish.raw == expected["status"] == "completed"
    wanted = FinishReason.TOOL_CALLS if expected["calls"] else FinishReason.STOP
    assert result.finish.reason is wanted
    assert server.requests[0].path == "/v1/responses"


async def test_recorded_streamed_call_literal_values() -> None:
    """The streamed function call is assembled from its five argument deltas."""
    result = outcome(await replay(scripted(recorded("test_openai_responses_stream.yaml"))))
    assert result.calls == [("call_kL0PCQV7M2WMoVX8V8OtYSAL", "get_capital", {"country": "France"})]
    assert result.usage == Usage(input_tokens=255, output_tokens=16)
    assert result.finish.reason is FinishReason.TOOL_CALLS


async def test_recorded_stream_keeps_encrypted_reasoning_from_item_done() -> None:
    """Encrypted reasoning is taken from `output_item.done`; the `.added` copy is incomplete."""
    interaction = recorded("test_openai_responses_streaming_usage.yaml")
    payloads = sse_payloads(interaction.body)
    added, done = (
        p["item"]["encrypted_content"]
        for p in payloads
        if p.get("item", {}).get("type") == "reasoning"
    )
    result = outcome(await replay(scripted(interaction)))
    assert added != done
    assert result.signatures == [("rs_0050471a34b36ae60068c97bac4dcc819595fd0f80d6b3c405", done)]
    assert result.calls == [("call_CWXgs68YprAjp6t0371hiPOI", "final_result", {"result": 6666})]
    assert result.usage == Usage(input_tokens=53, output_tokens=469, reasoning_tokens=448)


async def test_recorded_reasoning_summary_literal_values() -> None:
    """A reasoning summary becomes thinking text before the message text, then usage."""
    events = await replay(scripted(recorded("test_reasoning_summary_auto.yaml")))
    result = outcome(events)
    assert result.thinking.startswith("**Generating factorial function**\n\nI need to respond")
    assert result.text.startswith("```python\ndef factorial(n: int) -> int:")
    assert result.usage == Usage(input_tokens=34, output_tokens=226, reasoning_tokens=59)
    assert isinstance(events[0], ThinkingDelta)
    assert events[1].signature == "rs_0b028a7a2aca8d68006942f4e0d380819398dfa502c33bce7b"
    assert isinstance(events[2], TextDelta)


async def test_recorded_cached_tokens_are_reported() -> None:
    """`input_tokens_details.cached_tokens` becomes the cached token count."""
    interaction = recorded("test_openai_responses_thinking_with_tool_calls.yaml", 1)
    result = outcome(await replay(scripted(interaction)))
    assert result.usage == Usage(input_tokens=2087, output_tokens=124, cached_tokens=2048)


@pytest.mark.parametrize(("name", "kind", "category"), ERRORS)
async def test_recorded_error_becomes_typed_error(
    name: str, kind: type[ProviderError], category: ErrorCategory
) -> None:
    """A recorded HTTP error raises its typed error with the provider's message and status."""
    interaction = recorded(name)
    with pytest.raises(kind) as caught:
        await replay(scripted(interaction))
    error = caught.value
    assert type(error) is kind
    assert error.category is category
    assert error.status == interaction.status == 400
    assert error.provider == NAME
    assert error.provider_message == interaction.json()["error"]["message"]


@pytest.mark.parametrize("name", MULTI_TURN)
async def test_second_turn_request_matches_recording(name: str) -> None:
    """Turn 1's parsed output plus tool results rebuild the recorded turn-2 input items."""
    first, second = load_cassette(f"openai/{name}")
    call_ids = {i["id"]: i["call_id"] for i in output_items(first) if i["type"] == "function_call"}
    with replay_server(scripted(first), scripted(second)) as server:
        async with httpx.AsyncClient() as client:
            provider = OpenAIResponsesProvider(client)
            invocation = invocation_for(first, server.url + "/v1")
            assistant = assistant_message(await collect(provider, invocation), provider.name)
            history = [*invocation.history, assistant, tool_results(second, assistant, call_ids)]
            events = await collect(
                provider, invocation_for(second, server.url + "/v1", history=history)
            )
    sent, wanted = server.requests[1].json(), second.request_body
    assert item_shape(sent["input"], call_ids) == item_shape(wanted["input"], call_ids)
    for key in ("model", "instructions", *PASSED_PARAMS):
        assert sent.get(key) == wanted.get(key)
    assert [(t["name"], t["parameters"]) for t in sent["tools"]] == [
        (t["name"], t["parameters"]) for t in wanted["tools"]
    ]
    result = outcome(events)
    assert result.text == expected_from_recording(second)["text"]
    assert result.finish.reason is FinishReason.STOP


def tool_results(interaction: Interaction, assistant: Message, call_ids: dict[str, str]) -> Message:
    """The recorded second request's function outputs as a neutral tool message."""
    names = {call.id: call.name for call in assistant.tool_calls}
    outputs = [
        i for i in interaction.request_body["input"] if i.get("type") == "function_call_output"
    ]
    results = []
    for item in outputs:
        call_id = call_ids.get(item["call_id"], item["call_id"])
        results.append(ToolResultBlock(call_id, names[call_id], result=item["output"]))
    return Message(Role.TOOL, tuple(results))


def item_shape(items: list[dict[str, Any]], call_ids: dict[str, str]) -> list[Any]:
    """Item types, roles, contents, call ids, names, arguments and reasoning ids/content.

    An older pydantic-ai sent the `fc_` item id as `call_id`; OpenAI pairs on `call_id`, which
    this adapter sends, so recorded item ids are translated to their call ids first.
    """
    shapes: list[Any] = []
    for item in items:
        kind = item.get("type", "message")
        call_id = call_ids.get(item.get("call_id", ""), item.get("call_id"))
        if kind == "message":
            shapes.append((kind, item["role"], item["content"]))
        elif kind == "function_call":
            shapes.append((kind, call_id, item["name"], json.loads(item["arguments"])))
        elif kind == "function_call_output":
            shapes.append((kind, call_id, item["output"]))
        else:
            summary = "\n\n".join(part["text"] for part in item["summary"])
            shapes.append((kind, item["id"], item["encrypted_content"], summary))
    return shapes


async def test_replayed_reasoning_item_carries_id_and_encrypted_content() -> None:
    """The recorded reasoning item goes back with its id and its full encrypted content."""
    first, second = load_cassette("openai/test_openai_responses_thinking_with_tool_calls.yaml")
    with replay_server(scripted(first), scripted(second)) as server:
        async with httpx.AsyncClient() as client:
            provider = OpenAIResponsesProvider(client)
            invocation = invocation_for(first, server.url + "/v1")
            assistant = assistant_message(await collect(provider, invocation), provider.name)
            history = [*invocation.history, assistant]
            await collect(provider, invocation_for(second, server.url + "/v1", history=history))
    (reasoning,) = [i for i in server.requests[1].json()["input"] if i.get("type") == "reasoning"]
    (wanted,) = [i for i in second.request_body["input"] if i.get("type") == "reasoning"]
    assert reasoning["id"] == wanted["id"] == "rs_68c42d29124881968e24c1ca8c1fc7860e8bc41441c948f6"
    assert reasoning["encrypted_content"] == wanted["encrypted_content"]
    assert len(reasoning["encrypted_content"]) == 9572


# --- the request: mock transport --------------------------------------------------------------


async def test_request_carries_url_auth_and_body_fields() -> None:
    """URL, method, bearer key, model, instructions, tools, params and stream flag are sent."""
    seen: list[httpx.Request] = []
    invocation = make_invocation(
        "https://api.example.test/v1",
        key="sk-live-abcdef123456",
        model="gpt-5",
        system="Be brief.",
        tools=[declaration("get_capital", "Capital of a country", {"type": "object"})],
        params={"reasoning": {"effort": "low"}, "include": ["reasoning.encrypted_content"]},
    )
    async with recording_client(text_reply, seen) as client:
        await collect(OpenAIResponsesProvider(client), invocation)
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "https://api.example.test/v1/responses"
    assert request.headers["authorization"] == "Bearer sk-live-abcdef123456"
    assert json.loads(request.content) == {
        "model": "gpt-5",
        "input": [{"role": "user", "content": "hi"}],
        "instructions": "Be brief.",
        "tools": [
            {
                "type": "function",
                "name": "get_capital",
                "description": "Capital of a country",
                "parameters": {"type": "object"},
            }
        ],
        "reasoning": {"effort": "low"},
        "include": ["reasoning.encrypted_content"],
        "stream": True,
    }


async def test_stream_false_sends_a_non_streaming_request() -> None:
    """`stream: False` asks for a whole body, which is parsed as JSON."""
    seen: list[httpx.Request] = []
    payload = recorded("test_openai_responses_model_simple_response.yaml").json()

    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=payload)

    async with recording_client(answer, seen) as client:
        invocation = make_invocation("http://x/v1", params={"stream": False})
        events = await collect(OpenAIResponsesProvider(client), invocation)
    assert json.loads(seen[0].content)["stream"] is False
    assert outcome(events).text == "The capital of France is Paris."


async def test_response_is_parsed_by_content_type_not_by_request() -> None:
    """An SSE answer to a non-streaming request parses as a stream."""
    body = recorded("test_responses_basic_streaming.yaml").body
    assert outcome(await mocked([body], params={"stream": False})).text == "pong"


async def test_missing_base_url_raises_missing_runtime() -> None:
    """No base URL means no call: the runtime scope is incomplete, and no default is used."""
    async with httpx.AsyncClient() as client:
        with pytest.raises(MissingProviderRuntimeError) as caught:
            await collect(OpenAIResponsesProvider(client), make_invocation(None, runtime_id="r9"))
    assert caught.value.missing == ("base_url",)
    assert caught.value.runtime_id == "r9"


async def test_provider_holds_its_client_name_and_sent_history() -> None:
    """No per-call state can hide on the adapter: no instance dict, and three slots, its client,
    its name and the wire form of the history it last sent (reused only for the same messages)."""
    async with httpx.AsyncClient() as client:
        provider = OpenAIResponsesProvider(client)
        assert provider.name == NAME
        assert isinstance(provider, ModelProvider)
        assert not hasattr(provider, "__dict__")
        slots = {
            slot
            for kind in OpenAIResponsesProvider.__mro__
            for slot in getattr(kind, "__slots__", ())
        }
        assert slots == {"_client", "_name", "_sent"}


async def test_history_mapping_sends_own_reasoning_and_omits_the_rest() -> None:
    """Own encrypted reasoning is sent; foreign or unencrypted thinking is left out on purpose."""
    seen: list[httpx.Request] = []
    call = ToolCallBlock.create("call_1", "lookup", {"q": "x"})
    history = [
        Message(Role.USER, (TextBlock("one"), TextBlock("two"))),
        Message(
            Role.ASSISTANT,
            (
                ThinkingBlock("other", signature="sig", redacted_data="zzz", provider="anthropic"),
                ThinkingBlock("plain", signature="rs_0", provider=NAME),
                ThinkingBlock("why", signature="rs_1", redacted_data="gAAA", provider=NAME),
                TextBlock("Let me "),
                TextBlock("check."),
                call,
            ),
        ),
        Message(Role.TOOL, (ToolResultBlock("call_1", "lookup", result="42"),)),
    ]
    async with recording_client(text_reply, seen) as client:
        invocation = make_invocation("http://x/v1", history=history)
        await collect(OpenAIResponsesProvider(client), invocation)
    assert json.loads(seen[0].content)["input"] == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "one"},
                {"type": "input_text", "text": "two"},
            ],
        },
        {
            "type": "reasoning",
            "id": "rs_1",
            "encrypted_content": "gAAA",
            "summary": [{"type": "summary_text", "text": "why"}],
        },
        {"role": "assistant", "content": "Let me check."},
        {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": '{"q":"x"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "42"},
    ]


async def test_timeout_becomes_retryable_timeout_error() -> None:
    """A read timeout on a real socket becomes ProviderNetworkError with category timeout."""
    slow = ScriptedResponse.sse(sse_body(text_events("late")), first_byte_delay=0.5)
    with replay_server(slow) as server:
        async with httpx.AsyncClient(timeout=0.05) as client:
            with pytest.raises(ProviderNetworkError) as caught:
                await collect(OpenAIResponsesProvider(client), make_invocation(server.url + "/v1"))
    assert caught.value.category is ErrorCategory.TIMEOUT
    assert caught.value.retryable


# --- stream events ----------------------------------------------------------------------------


async def test_streamed_summary_parts_are_joined_and_closed_by_the_item() -> None:
    """Summary parts stream as thinking joined by a blank line; the done item closes the block."""
    item = {"type": "reasoning", "id": "rs_9", "summary": []}
    parts = [
        event("response.output_item.added", item=item),
        event("response.reasoning_summary_part.added", item_id="rs_9", summary_index=0),
        event("response.reasoning_summary_text.delta", item_id="rs_9", delta="First"),
        event("response.reasoning_summary_part.added", item_id="rs_9", summary_index=1),
        event("response.reasoning_summary_text.delta", item_id="rs_9", delta="Sec"),
        event("response.reasoning_summary_text.delta", item_id="rs_9", delta="ond"),
        event(
            "response.output_item.done",
            item={
                **item,
                "encrypted_content": "gAAAenc",
                "summary": [
                    {"type": "summary_text", "text": "First"},
                    {"type": "summary_text", "text": "Second"},
                ],
            },
        ),
        completed(),
    ]
    events = await mocked([sse_body(parts)])
    assert events[:-1] == [
        ThinkingDelta("First"),
        ThinkingDelta("\n\n"),
        ThinkingDelta("Sec"),
        ThinkingDelta("ond"),
        ThinkingDelta("", signature="rs_9", redacted_data="gAAAenc"),
    ]


async def test_refusal_delta_is_shown_as_text() -> None:
    """A refusal streams as visible text rather than being dropped."""
    body = sse_body(
        [event("response.refusal.delta", item_id="msg_1", delta="I can't."), completed()]
    )
    assert outcome(await mocked([body])).text == "I can't."


# --- malformed input --------------------------------------------------------------------------


async def test_invalid_json_data_line_is_a_protocol_error() -> None:
    """A `data:` line that is not JSON raises StreamProtocolError."""
    with pytest.raises(StreamProtocolError, match="invalid JSON"):
        await mocked([b'event: response.created\ndata: {"type": \n\n'])


async def test_arguments_for_an_unannounced_call_are_a_protocol_error() -> None:
    """Argument deltas for an item that was never added cannot be assembled."""
    body = sse_body([event("response.function_call_arguments.delta", item_id="fc_x", delta="{")])
    with pytest.raises(StreamProtocolError, match="unknown function call"):
        await mocked([body])


async def test_tool_arguments_that_are_not_json_give_a_call_with_an_arguments_error() -> None:
    """Assembled arguments that do not parse become a call the model is told to correct."""
    item = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "f",
        "arguments": "",
    }
    body = sse_body(
        [
            event("response.output_item.added", item=item),
            event("response.function_call_arguments.delta", item_id="fc_1", delta='{"a": '),
            event("response.function_call_arguments.delta", item_id="fc_1", delta="oops}"),
            event("response.output_item.done", item={**item, "arguments": '{"a": oops}'}),
            completed(),
        ]
    )
    [call] = [e.call for e in await mocked([body]) if isinstance(e, ToolCallEvent)]
    assert (call.id, call.name, dict(call.arguments)) == ("call_1", "f", {})
    assert "not valid JSON" in (call.arguments_error or "")


async def test_stream_ending_before_completion_is_a_protocol_error() -> None:
    """A clean end of body without `response.completed` is an incomplete stream."""
    with pytest.raises(StreamProtocolError, match="stream ended before completion"):
        await mocked([sse_body(text_events("half"))])


async def test_dropped_connection_is_a_network_error() -> None:
    """A socket closed mid-body on a real server raises a retryable ProviderNetworkError."""
    body = recorded("test_openai_responses_stream.yaml", 1).body
    with pytest.raises(ProviderNetworkError) as caught:
        await replay(ScriptedResponse.sse(body, drop_after=2))
    assert caught.value.category is ErrorCategory.NETWORK


# --- properties -------------------------------------------------------------------------------


def pieces_of(text: str, data: st.DataObject) -> list[str]:
    """`text` cut at drawn offsets; an empty text gives no pieces."""
    cuts = data.draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=5))
    bounds = sorted({0, len(text), *(cut for cut in cuts if cut < len(text))})
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize(("name", "index"), STREAMED)
@PROPERTY
@given(data=st.data())
async def test_any_byte_split_of_a_recorded_stream_gives_same_events(
    name: str, index: int, data: st.DataObject
) -> None:
    """Cutting a recorded SSE body at arbitrary byte offsets changes no event."""
    body = recorded(name, index).body
    points = data.draw(st.lists(st.integers(1, len(body) - 1), max_size=40))
    assert await mocked(split_at(body, points)) == await mocked([body])


@pytest.mark.parametrize(("name", "index"), STREAMED)
@SOCKET_PROPERTY
@given(pieces=st.integers(1, 64))
async def test_any_chunking_on_a_real_socket_gives_same_events(
    shared_server: ReplayServer, name: str, index: int, pieces: int
) -> None:
    """The recorded stream sent in any number of HTTP chunks over a socket parses identically."""
    body = recorded(name, index).body
    shared_server.enqueue(ScriptedResponse.sse(body, pieces=pieces))
    async with httpx.AsyncClient() as client:
        invocation = make_invocation(shared_server.url + "/v1")
        events = await collect(OpenAIResponsesProvider(client), invocation)
    assert events == await mocked([body])


@PROPERTY
@given(text=st.text(), data=st.data())
async def test_text_split_into_any_deltas_reassembles(text: str, data: st.DataObject) -> None:
    """However the text is cut into `output_text` deltas, the emitted text is the original."""
    deltas = [
        event("response.output_text.delta", item_id="msg_1", delta=piece)
        for piece in pieces_of(text, data)
    ]
    message = {"type": "message", "id": "msg_1", "role": "assistant"}
    done = {**message, "content": [{"type": "output_text", "text": text}]}
    body = sse_body(
        [
            event("response.output_item.added", item={**message, "content": []}),
            *deltas,
            event("response.output_item.done", item=done),
            completed(),
        ]
    )
    result = outcome(await mocked([body]))
    assert result.text == text
    assert result.finish.reason is FinishReason.STOP


@PROPERTY
@given(calls=st.lists(arguments, min_size=1, max_size=3), data=st.data())
async def test_tool_argument_fragments_reassemble_to_same_dict(
    calls: list[dict[str, Any]], data: st.DataObject
) -> None:
    """Arguments cut anywhere, fragments of several calls interleaved, parse to the original."""
    items = [
        {"type": "function_call", "id": f"fc_{i}", "call_id": f"call_{i}", "name": f"f{i}"}
        for i in range(len(calls))
    ]
    fragments = {i: pieces_of(json.dumps(args), data) for i, args in enumerate(calls)}
    slots = [i for i, pieces in fragments.items() for _ in pieces]
    payloads = [
        event("response.output_item.added", item={**item, "arguments": ""}) for item in items
    ]
    cursor = dict.fromkeys(fragments, 0)
    for i in data.draw(st.permutations(slots)):
        piece = fragments[i][cursor[i]]
        cursor[i] += 1
        payloads.append(
            event("response.function_call_arguments.delta", item_id=f"fc_{i}", delta=piece)
        )
    for item, args in zip(items, calls, strict=True):
        payloads.append(
            event("response.output_item.done", item={**item, "arguments": json.dumps(args)})
        )
    result = outcome(await mocked([sse_body([*payloads, completed()])]))
    assert result.calls == [(f"call_{i}", f"f{i}", args) for i, args in enumerate(calls)]
    assert result.finish.reason is FinishReason.TOOL_CALLS


@st.composite
def histories(draw: st.DrawFn) -> list[Message]:
    """Random conversations: user text, assistant text/thinking/calls, results in any order."""
    messages: list[Message] = []
    thinking = st.builds(
        ThinkingBlock,
        text=st.text(max_size=5),
        signature=st.none() | st.just("rs_x"),
        redacted_data=st.none() | st.just("gAAA"),
        provider=st.sampled_from([NAME, "openai", "anthropic", None]),
    )
    for _ in range(draw(st.integers(0, 4))):
        messages.append(Message.user(draw(st.text(max_size=10))))
        call_ids = st.text(max_size=8) | st.text(min_size=65, max_size=120)
        ids = draw(st.lists(call_ids, max_size=4, unique=True))
        blocks: list[Any] = [
            ToolCallBlock.create(i, f"tool{n}", draw(arguments)) for n, i in enumerate(ids)
        ]
        for extra in draw(st.lists(st.sampled_from(["text", "thinking"]), max_size=3)):
            block = TextBlock(draw(st.text(max_size=4))) if extra == "text" else draw(thinking)
            blocks.insert(draw(st.integers(0, len(blocks))), block)
        messages.append(Message(Role.ASSISTANT, tuple(blocks)))
        if ids:
            results = [
                ToolResultBlock(i, "tool", result=f"r{i}") for i in draw(st.permutations(ids))
            ]
            messages.append(Message(Role.TOOL, tuple(results)))
    return messages


@PROPERTY
@given(history=histories())
async def test_history_mapping_keeps_items_in_order_and_pairs_results(
    history: list[Message],
) -> None:
    """Calls, results and own encrypted reasoning keep order and count; results pair by call_id."""
    seen: list[httpx.Request] = []
    async with recording_client(text_reply, seen) as client:
        invocation = make_invocation("http://x/v1", history=history)
        await collect(OpenAIResponsesProvider(client), invocation)
    wire = json.loads(seen[0].content)["input"]
    kinds = [item.get("type", item.get("role")) for item in wire]
    expected_kinds = [kind for message in history for kind in expected_item_kinds(message)]
    assert kinds == expected_kinds
    calls = [call for m in history for call in m.tool_calls]
    wire_calls = [item for item in wire if item.get("type") == "function_call"]
    assert [(c["name"], json.loads(c["arguments"])) for c in wire_calls] == [
        (c.name, thaw(c.arguments)) for c in calls
    ]
    id_of = {call.id: item["call_id"] for call, item in zip(calls, wire_calls, strict=True)}
    results = [r for m in history for r in m.tool_results]
    outputs = [item for item in wire if item.get("type") == "function_call_output"]
    assert [(o["call_id"], o["output"]) for o in outputs] == [
        (id_of[r.call_id], r.content) for r in results
    ]
    assert all(0 < len(c["call_id"]) <= 64 for c in wire_calls)
    assert len(set(id_of.values())) == len(id_of)
    reasoning = [item for item in wire if item.get("type") == "reasoning"]
    assert all(item["id"] == "rs_x" and item["encrypted_content"] == "gAAA" for item in reasoning)


def expected_item_kinds(message: Message) -> list[str]:
    """The input item kinds one message should become, in order; adjacent texts merge."""
    if message.role is Role.USER:
        return ["user"]
    kinds: list[str] = []
    for block in message.blocks:
        if isinstance(block, ToolCallBlock):
            kinds.append("function_call")
        elif isinstance(block, ToolResultBlock):
            kinds.append("function_call_output")
        elif isinstance(block, ThinkingBlock):
            kinds += ["reasoning"] if sendable(block) else []
        elif block.text and kinds[-1:] != ["assistant"]:
            kinds.append("assistant")
    return kinds


def sendable(block: ThinkingBlock) -> bool:
    return block.provider == NAME and bool(block.redacted_data) and bool(block.signature)


@PROPERTY
@given(
    secret=secrets,
    status=st.sampled_from([400, 401, 403, 404, 429, 500, 503]),
    where=st.sampled_from(["http", "error_event", "failed_event", "transport"]),
)
async def test_secret_never_appears_in_a_raised_error(secret: str, status: int, where: str) -> None:
    """Even a provider echoing the key verbatim never gets it into the raised error's message."""
    echo = f"Incorrect API key provided: {secret}. Authorization: Bearer {secret} ({secret})"

    def answer(request: httpx.Request) -> httpx.Response:
        if where == "transport":
            raise httpx.RemoteProtocolError(echo, request=request)
        if where == "http":
            return httpx.Response(status, json={"error": {"message": echo, "code": None}})
        error = {"code": "server_error", "message": echo}
        payload = (
            event("error", **error)
            if where == "error_event"
            else event("response.failed", response={"status": "failed", "error": error})
        )
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=sse_body([payload])
        )

    seen: list[httpx.Request] = []
    async with recording_client(answer, seen) as client:
        invocation = make_invocation("http://x/v1", key=secret)
        with pytest.raises(ProviderError) as caught:
            await collect(OpenAIResponsesProvider(client), invocation)
    assert seen[0].headers["authorization"] == f"Bearer {secret}"
    assert secret not in str(caught.value)
    assert secret not in caught.value.provider_message
    assert secret not in str(caught.value.__cause__)


@PROPERTY
@given(
    calls=st.lists(
        st.tuples(
            secrets,
            st.sampled_from(["gpt-5", "gpt-4o", "o4-mini"]),
            st.sampled_from(
                ["http://a.test/v1", "http://b.test:8080/v1", "https://api.openai.com/v1"]
            ),
        ),
        min_size=2,
        max_size=5,
    )
)
async def test_one_provider_serves_concurrent_invocations_with_their_own_values(
    calls: list[tuple[str, str, str]],
) -> None:
    """Concurrent calls through one adapter each carry their own key, model and base URL."""
    seen: list[httpx.Request] = []
    async with recording_client(text_reply, seen) as client:
        provider = OpenAIResponsesProvider(client)
        invocations = [make_invocation(url, key=key, model=model) for key, model, url in calls]
        await asyncio.gather(*(collect(provider, invocation) for invocation in invocations))
    sent = sorted(
        (r.headers["authorization"], json.loads(r.content)["model"], str(r.url)) for r in seen
    )
    assert sent == sorted((f"Bearer {key}", model, f"{url}/responses") for key, model, url in calls)


@PROPERTY
@given(
    key=st.none() | secrets,
    system=st.none() | st.text(max_size=20),
    params=st.dictionaries(
        st.sampled_from(
            ["temperature", "max_output_tokens", "store", "model", "input", "instructions"]
        ),
        st.integers(0, 5) | st.booleans(),
    ),
)
async def test_request_carries_the_invocations_values_and_params_never_replace_them(
    key: str | None, system: str | None, params: dict[str, Any]
) -> None:
    """Key (or no header), instructions and params are sent; params never replace the call."""
    seen: list[httpx.Request] = []
    invocation = make_invocation("http://x/v1", key=key, system=system, params=params)
    async with recording_client(text_reply, seen) as client:
        await collect(OpenAIResponsesProvider(client), invocation)
    (request,) = seen
    body = json.loads(request.content)
    assert request.headers.get("authorization") == (f"Bearer {key}" if key else None)
    assert body["model"] == "gpt-4o"
    assert body["input"] == [{"role": "user", "content": "hi"}]
    assert body.get("instructions") == (
        system if system is not None else params.get("instructions")
    )
    for name, value in params.items():
        if name not in ("model", "input", "instructions"):
            assert body[name] == value


@st.composite
def responses(draw: st.DrawFn) -> dict[str, Any]:
    """A random Responses output: messages, reasoning with summaries, function calls."""
    output: list[dict[str, Any]] = []
    for n in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["message", "reasoning", "function_call"]))
        if kind == "message":
            parts = draw(st.lists(st.text(max_size=12), min_size=1, max_size=2))
            content = [{"type": "output_text", "text": t, "annotations": []} for t in parts]
            output.append(
                {"type": "message", "id": f"msg_{n}", "role": "assistant", "content": content}
            )
        elif kind == "reasoning":
            summary = [
                {"type": "summary_text", "text": t}
                for t in draw(st.lists(st.text(max_size=12), max_size=3))
            ]
            encrypted = draw(
                st.none() | st.text(alphabet=string.ascii_letters, min_size=1, max_size=20)
            )
            item = {"type": "reasoning", "id": f"rs_{n}", "summary": summary}
            output.append(item | ({"encrypted_content": encrypted} if encrypted else {}))
        else:
            args = json.dumps(draw(arguments))
            output.append(
                {
                    "type": "function_call",
                    "id": f"fc_{n}",
                    "call_id": f"call_{n}",
                    "name": "f",
                    "arguments": args,
                }
            )
    usage = usage_payload(*draw(st.tuples(*[st.integers(0, 10**6)] * 4)))
    status = draw(st.sampled_from(["completed", "incomplete"]))
    reason = {
        "incomplete_details": {
            "reason": draw(st.sampled_from(["max_output_tokens", "content_filter"]))
        }
    }
    return {"id": "resp_1", "status": status, "output": output, "usage": usage} | (
        reason if status == "incomplete" else {}
    )


def stream_of(response: dict[str, Any], data: st.DataObject) -> list[dict[str, Any]]:
    """The SSE events OpenAI would send for `response`, text cut into drawn deltas."""
    payloads = [
        event("response.created", response={**response, "status": "in_progress", "output": []})
    ]
    for index, item in enumerate(response["output"]):
        payloads.append(event("response.output_item.added", output_index=index, item=started(item)))
        payloads.extend(item_deltas(item, data))
        payloads.append(event("response.output_item.done", output_index=index, item=item))
    payloads.append(event(f"response.{response['status']}", response=response))
    return payloads


def started(item: dict[str, Any]) -> dict[str, Any]:
    """The item as `output_item.added` announces it: content still empty."""
    empty: dict[str, dict[str, Any]] = {
        "message": {"content": []},
        "reasoning": {"summary": []},
        "function_call": {"arguments": ""},
    }
    return {**item, **empty[item["type"]]}


def item_deltas(item: dict[str, Any], data: st.DataObject) -> list[dict[str, Any]]:
    item_id = item["id"]
    if item["type"] == "message":
        text = "".join(part["text"] for part in item["content"])
        return [
            event("response.output_text.delta", item_id=item_id, delta=piece)
            for piece in pieces_of(text, data)
        ]
    if item["type"] == "function_call":
        return [
            event("response.function_call_arguments.delta", item_id=item_id, delta=piece)
            for piece in pieces_of(item["arguments"], data)
        ]
    deltas: list[dict[str, Any]] = []
    for index, part in enumerate(item["summary"]):
        deltas.append(
            event("response.reasoning_summary_part.added", item_id=item_id, summary_index=index)
        )
        deltas += [
            event("response.reasoning_summary_text.delta", item_id=item_id, delta=piece)
            for piece in pieces_of(part["text"], data)
        ]
        deltas.append(
            event("response.reasoning_summary_part.done", item_id=item_id, summary_index=index)
        )
    return deltas


@PROPERTY
@given(response=responses(), data=st.data())
async def test_streamed_and_whole_responses_give_the_same_content(
    response: dict[str, Any], data: st.DataObject
) -> None:
    """The same response streamed as events or sent as one JSON body yields the same content."""
    from_sse = outcome(await mocked([sse_body(stream_of(response, data))]))
    from_json = outcome(await whole(response))
    assert from_sse == from_json
    items = response["output"]
    assert from_json.text == "".join(
        part["text"] for item in items if item["type"] == "message" for part in item["content"]
    )
    assert from_json.calls == [
        (item["call_id"], "f", json.loads(item["arguments"]))
        for item in items
        if item["type"] == "function_call"
    ]
    assert [sig for sig, enc in from_json.signatures if enc] == [
        item["id"]
        for item in items
        if item["type"] == "reasoning" and item.get("encrypted_content")
    ]
    if response["status"] == "incomplete":
        assert from_json.finish.raw == response["incomplete_details"]["reason"]
    else:
        calls = any(item["type"] == "function_call" for item in items)
        assert from_json.finish.reason is (FinishReason.TOOL_CALLS if calls else FinishReason.STOP)


@PROPERTY
@given(response=responses(), data=st.data())
async def test_parsed_turn_maps_back_to_the_same_items(
    response: dict[str, Any], data: st.DataObject
) -> None:
    """A parsed response, stored as a message and sent back, yields its calls and own reasoning,
    each with its own item id, so a reasoning item is followed by the call it produced."""
    events = await mocked([sse_body(stream_of(response, data))])
    seen: list[httpx.Request] = []
    history = [Message.user("q"), assistant_message(events, NAME)]
    async with recording_client(text_reply, seen) as client:
        await collect(
            OpenAIResponsesProvider(client), make_invocation("http://x/v1", history=history)
        )
    sent = [i for i in json.loads(seen[0].content)["input"] if i.get("type")]
    wanted = [
        i
        for i in response["output"]
        if i["type"] == "function_call" or (i["type"] == "reasoning" and i.get("encrypted_content"))
    ]
    assert [(i["type"], i.get("id"), i.get("call_id")) for i in sent] == [
        (i["type"], i["id"], i.get("call_id")) for i in wanted
    ]
    assert [i.get("encrypted_content") for i in sent] == [
        i.get("encrypted_content") for i in wanted
    ]


@PROPERTY
@given(
    code=st.sampled_from(
        [
            ("rate_limit_exceeded", RateLimitError, ErrorCategory.RATE_LIMIT),
            ("insufficient_quota", QuotaExceededError, ErrorCategory.QUOTA),
            ("context_length_exceeded", InvalidRequestError, ErrorCategory.CONTEXT_LENGTH),
            ("invalid_prompt", InvalidRequestError, ErrorCategory.INVALID_REQUEST),
            ("server_error", ServerError, ErrorCategory.SERVER),
            (None, ServerError, ErrorCategory.SERVER),
        ]
    ),
    message=st.text(alphabet=string.ascii_letters + " ", min_size=1, max_size=30).filter(str.strip),
    form=st.sampled_from(["error", "failed", "whole"]),
)
async def test_reported_failures_become_the_typed_error_of_their_code(
    code: tuple[str | None, type[ProviderError], ErrorCategory], message: str, form: str
) -> None:
    """`error`, `response.failed` and a failed whole body raise the error their code names."""
    name, kind, category = code
    error = {"code": name, "message": message}
    failed = {"id": "resp_1", "status": "failed", "error": error, "output": []}
    if form == "whole":
        call = whole(failed)
    else:
        payload = (
            event("error", param=None, **error)
            if form == "error"
            else event("response.failed", response=failed)
        )
        call = mocked([sse_body([*text_events("partial"), payload])])
    with pytest.raises(kind) as caught:
        await call
    assert type(caught.value) is kind
    assert caught.value.category is category
    assert caught.value.provider_message == message


@PROPERTY
@given(
    line=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40).filter(
        lambda text: not is_json_object(text) and text.strip() != "[DONE]"
    )
)
async def test_any_data_line_that_is_not_an_event_object_is_a_protocol_error(line: str) -> None:
    """Garbage, truncated JSON or a JSON non-object in a `data:` line raises StreamProtocolError."""
    body = f"data: {line}\n\n".encode() + sse_body([completed()])
    with pytest.raises(StreamProtocolError):
        await mocked([body])


@PROPERTY
@given(
    payloads=st.lists(
        json_values
        | st.fixed_dictionaries(
            {
                "type": st.sampled_from(
                    [
                        "response.output_item.added",
                        "response.output_item.done",
                        "response.completed",
                        "response.output_text.delta",
                    ]
                )
            },
            optional={
                "item": json_values,
                "response": json_values,
                "delta": json_values,
                "item_id": json_values,
            },
        ),
        max_size=4,
    )
)
async def test_any_json_payloads_raise_only_provider_errors(payloads: list[Any]) -> None:
    """Arbitrary JSON in data lines either parses or raises a ProviderError, never a crash."""
    try:
        events = await mocked([sse_body(payloads)])
    except ProviderError as error:
        failure: ProviderError | None = error
    else:
        failure = None
        outcome(events)
    assert failure is None or failure.provider == NAME


@PROPERTY
@given(
    role=st.sampled_from(list(Role)),
    block=st.sampled_from(
        [
            TextBlock("t"),
            ThinkingBlock("r", signature="rs", redacted_data="enc", provider=NAME),
            ToolCallBlock.create("c", "f", {}),
            ToolResultBlock("c", "f", result="x"),
        ]
    ),
)
async def test_a_block_is_sent_where_its_role_allows_and_refused_elsewhere(
    role: Role, block: Any
) -> None:
    """Blocks a role cannot carry raise InvalidRequestError; allowed ones become one input item."""
    allowed = {
        Role.USER: (TextBlock,),
        Role.ASSISTANT: (TextBlock, ThinkingBlock, ToolCallBlock),
        Role.TOOL: (ToolResultBlock,),
    }[role]
    seen: list[httpx.Request] = []
    history = [Message(role, (block,))]
    async with recording_client(text_reply, seen) as client:
        provider = OpenAIResponsesProvider(client)
        if not isinstance(block, allowed):
            with pytest.raises(InvalidRequestError, match=type(block).__name__):
                await collect(provider, make_invocation("http://x/v1", history=history))
            assert seen == []
            return
        await collect(provider, make_invocation("http://x/v1", history=history))
    assert len(json.loads(seen[0].content)["input"]) == 1


@SOCKET_PROPERTY
@given(drop_after=st.integers(1, 14))
async def test_connection_dropped_after_any_chunk_is_a_network_error(
    shared_server: ReplayServer, drop_after: int
) -> None:
    """Whichever HTTP chunk the socket closes after, the result is a retryable network error."""
    body = recorded("test_openai_responses_stream.yaml", 1).body
    shared_server.enqueue(ScriptedResponse.sse(body, drop_after=drop_after))
    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderNetworkError) as caught:
            await collect(
                OpenAIResponsesProvider(client), make_invocation(shared_server.url + "/v1")
            )
    assert caught.value.category is ErrorCategory.NETWORK


@PROPERTY
@given(
    texts=st.lists(st.text(min_size=1, max_size=5), max_size=4),
    terminal=st.sampled_from([None, "completed", "incomplete"]),
)
async def test_stream_completes_exactly_when_a_terminal_event_arrives(
    texts: list[str], terminal: str | None
) -> None:
    """Without `response.completed` or `response.incomplete` a stream is incomplete."""
    payloads = [event("response.output_text.delta", item_id="m", delta=t) for t in texts]
    if terminal:
        payloads.append(completed(terminal))
    if terminal is None:
        with pytest.raises(StreamProtocolError, match="stream ended before completion"):
            await mocked([sse_body(payloads)])
        return
    result = outcome(await mocked([sse_body(payloads)]))
    assert result.text == "".join(texts)
    assert result.finish.raw == terminal


@PROPERTY
@given(
    reason=st.sampled_from(["max_output_tokens", "content_filter"])
    | st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=20),
    streamed=st.booleans(),
    usage=st.tuples(st.integers(0, 10**5), st.integers(0, 10**5)),
)
async def test_incomplete_response_reports_its_reason(
    reason: str, streamed: bool, usage: tuple[int, int]
) -> None:
    """An incomplete response keeps its text and usage and ends with the reason it names."""
    details = {"incomplete_details": {"reason": reason}}
    terminal = completed("incomplete", usage_payload(*usage), **details)
    if streamed:
        events = await mocked([sse_body([*text_events("cut sh"), terminal])])
    else:
        message = text_events("cut sh")[-1]["item"]
        events = await whole({**terminal["response"], "output": [message]})
    result = outcome(events)
    expected = {
        "max_output_tokens": FinishReason.LENGTH,
        "content_filter": FinishReason.CONTENT_FILTER,
    }
    assert result.text == "cut sh"
    assert result.finish.reason is expected.get(reason, FinishReason.OTHER)
    assert result.finish.raw == reason
    assert result.usage == Usage(*usage)


KNOWN_EVENTS = frozenset(
    {
        "error",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "response.output_item.added",
        "response.output_item.done",
        "response.output_text.delta",
        "response.refusal.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_summary_part.added",
        "response.function_call_arguments.delta",
    }
)
IGNORABLE = [
    event("response.in_progress", response={"status": "in_progress"}),
    event("response.queued", response={"status": "queued"}),
    event("response.content_part.added", item_id="x", part={"type": "output_text", "text": ""}),
    event("response.output_text.done", item_id="x", text="ignored text"),
    event("response.output_text.annotation.added", item_id="x", annotation={}),
    event("response.function_call_arguments.done", item_id="x", arguments="{}"),
    event("response.reasoning_summary_text.done", item_id="x", text="ignored"),
]


@PROPERTY
@given(
    name=st.text(alphabet=string.ascii_lowercase + "._", min_size=1, max_size=30).filter(
        lambda n: n not in KNOWN_EVENTS
    ),
)
async def test_unknown_events_raise_only_when_they_carry_content(name: str) -> None:
    """An unknown `*.delta` event raises; other unknown events are lifecycle notices, skipped."""
    body = sse_body([event(name, delta="payload"), *text_events("fine"), completed()])
    if name.endswith(".delta"):
        with pytest.raises(StreamProtocolError, match="unsupported stream event"):
            await mocked([body])
    else:
        assert outcome(await mocked([body])).text == "fine"


@pytest.mark.parametrize(("name", "index"), STREAMED)
@PROPERTY
@given(data=st.data())
async def test_informational_events_anywhere_change_nothing(
    name: str, index: int, data: st.DataObject
) -> None:
    """Known informational events inserted anywhere in a recorded stream change no event."""
    payloads = sse_payloads(recorded(name, index).body)
    noisy = list(payloads)
    for extra in data.draw(st.lists(st.sampled_from(IGNORABLE), max_size=6)):
        noisy.insert(data.draw(st.integers(0, len(noisy) - 1)), extra)
    assert await mocked([sse_body(noisy)]) == await mocked([sse_body(payloads)])


@PROPERTY
@given(
    kind=st.sampled_from(
        ["web_search_call", "file_search_call", "computer_call", "image_generation_call"]
    )
    | st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=20).filter(
        lambda k: k not in ("message", "reasoning", "function_call", "output_text", "refusal")
    ),
    part=st.booleans(),
    streamed=st.booleans(),
)
async def test_output_chatscope_cannot_represent_raises(
    kind: str, part: bool, streamed: bool
) -> None:
    """An unknown output item or message part type raises, streamed or whole, never dropped."""
    item: dict[str, Any] = {"type": kind, "id": "x_1", "status": "completed"}
    if part:
        item = {"type": "message", "id": "m_1", "role": "assistant", "content": [{"type": kind}]}
    added = event("response.output_item.added", item=item)
    done = event("response.output_item.done", item=item)
    body = sse_body([added, done, completed()])
    with pytest.raises(StreamProtocolError, match=kind):
        await (mocked([body]) if streamed else whole({"status": "completed", "output": [item]}))


@PROPERTY
@given(text=st.text(max_size=40), thinking=st.text(max_size=40), data=st.data())
async def test_text_the_deltas_missed_comes_from_the_finished_item(
    text: str, thinking: str, data: st.DataObject
) -> None:
    """Deltas carrying only a prefix of an item's text are completed from `output_item.done`."""
    shown = text[: data.draw(st.integers(0, len(text)))]
    thought = thinking[: data.draw(st.integers(0, len(thinking)))]
    reasoning = {"type": "reasoning", "id": "rs_1", "encrypted_content": "enc"}
    message = {"type": "message", "id": "msg_1", "role": "assistant"}
    payloads = [
        event("response.output_item.added", item={**reasoning, "summary": []}),
        *(
            event("response.reasoning_summary_text.delta", item_id="rs_1", delta=piece)
            for piece in pieces_of(thought, data)
        ),
        event(
            "response.output_item.done",
            item={**reasoning, "summary": [{"type": "summary_text", "text": thinking}]},
        ),
        event("response.output_item.added", item={**message, "content": []}),
        *(
            event("response.output_text.delta", item_id="msg_1", delta=piece)
            for piece in pieces_of(shown, data)
        ),
        event(
            "response.output_item.done",
            item={**message, "content": [{"type": "output_text", "text": text}]},
        ),
        completed(),
    ]
    result = outcome(await mocked([sse_body(payloads)]))
    assert result.text == text
    assert result.thinking == thinking
    assert result.signatures == [("rs_1", "enc")]


async def test_function_call_item_ids_go_back_only_to_the_adapter_that_issued_them() -> None:
    """An `fc_` id is meaningless to OpenAI when another provider's call happens to carry one."""
    own = ToolCallBlock.create("call_a", "f", {}, item_id="fc_a", provider=NAME)
    foreign = ToolCallBlock.create("call_b", "g", {}, item_id="fc_b", provider="openai")
    history = [
        Message.user("q"),
        Message(Role.ASSISTANT, (own, foreign)),
        Message(
            Role.TOOL,
            (
                ToolResultBlock("call_a", "f", result="1"),
                ToolResultBlock("call_b", "g", result="2"),
            ),
        ),
    ]
    seen: list[httpx.Request] = []
    async with recording_client(text_reply, seen) as client:
        await collect(
            OpenAIResponsesProvider(client), make_invocation("http://x/v1", history=history)
        )
    calls = [i for i in json.loads(seen[0].content)["input"] if i.get("type") == "function_call"]
    assert [(c["call_id"], c.get("id")) for c in calls] == [("call_a", "fc_a"), ("call_b", None)]
