"""Typed output on the OpenAI and Gemini wires: where the schema goes, and typed turns against a
real local server (Chat Completions, Gemini)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from chatscope.adapters.providers.gemini import GeminiProvider
from chatscope.adapters.providers.openai.chat import OpenAIChatProvider
from chatscope.adapters.providers.openai.responses import OpenAIResponsesProvider
from chatscope.services.chat import output_spec
from tests.support.adapter_helpers import make_invocation, sse_body
from tests.support.replay_server import ScriptedResponse, replay_server
from tests.support.scopes import make_chat, make_context
from tests.support.typed_output import (
    TOOL,
    VERDICT_SCHEMA,
    Verdict,
    sent_body,
    typed,
    with_schema,
)


def _openai_reply(text: str = "{}") -> httpx.Response:
    chunk = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop"}]}
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=sse_body([chunk], done=True)
    )


# --- OpenAI Chat Completions ---------------------------------------------------------------------


async def test_chat_completions_sends_the_schema_as_a_strict_response_format() -> None:
    """`response_format: {type: json_schema, json_schema: {name, schema, strict}}`, over params."""
    params = {"response_format": {"type": "json_object"}, "temperature": 0}
    body = await sent_body(
        OpenAIChatProvider, typed("http://llm/v1", params=params), _openai_reply()
    )
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Verdict", "schema": VERDICT_SCHEMA, "strict": True},
    }
    assert body["temperature"] == 0
    assert VERDICT_SCHEMA["required"] == ["holds", "reason", "confidence"]
    assert VERDICT_SCHEMA["additionalProperties"] is False


async def test_chat_completions_sends_no_response_format_without_a_schema() -> None:
    """An untyped call's body is unchanged."""
    body = await sent_body(OpenAIChatProvider, make_invocation("http://llm/v1"), _openai_reply())
    assert "response_format" not in body


async def test_a_schema_that_cannot_be_strict_is_sent_with_strict_false() -> None:
    """An open object (a dict) goes as it is, without claiming strict mode."""
    loose = output_spec(dict[str, int]).schema
    invocation = with_schema(make_invocation("http://llm/v1"), loose)
    body = await sent_body(OpenAIChatProvider, invocation, _openai_reply())
    assert body["response_format"]["json_schema"] == {
        "name": "dict",
        "schema": {"type": "object", "additionalProperties": {"type": "integer"}},
        "strict": False,
    }


async def test_a_typed_chat_completions_turn_over_a_real_socket() -> None:
    """A local server answers with JSON content; the turn's output is the validated model."""
    chunks: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        for piece in ('{"holds": true, ', '"reason": "seen", ', '"confidence": 0.5}')
    ]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    with replay_server(ScriptedResponse.sse(sse_body(chunks, done=True))) as server:
        async with httpx.AsyncClient() as client:
            provider = OpenAIChatProvider(client)
            context = make_context(provider, api_key="sk-test-key-1234", base_url=server.url)
            turn = await make_chat(context).send("Is it?", output_type=Verdict)
    assert turn.output == Verdict(holds=True, reason="seen", confidence=0.5)
    [request] = server.requests
    assert request.json()["response_format"]["json_schema"]["name"] == "Verdict"


# --- OpenAI Responses ----------------------------------------------------------------------------


def _responses_reply() -> httpx.Response:
    events = [
        {"type": "response.output_text.delta", "item_id": "msg_1", "delta": "{}"},
        {"type": "response.completed", "response": {"status": "completed", "output": []}},
    ]
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=sse_body(events)
    )


async def test_responses_sends_the_schema_as_the_text_format() -> None:
    """`text: {format: {type: json_schema, name, schema, strict}}`; other `text` params stay."""
    params = {"text": {"verbosity": "low", "format": {"type": "text"}}}
    body = await sent_body(
        OpenAIResponsesProvider, typed("http://llm/v1", params=params), _responses_reply()
    )
    assert body["text"] == {
        "verbosity": "low",
        "format": {
            "type": "json_schema",
            "name": "Verdict",
            "schema": VERDICT_SCHEMA,
            "strict": True,
        },
    }


async def test_responses_sends_no_text_format_without_a_schema() -> None:
    """An untyped call has no `text` field at all."""
    body = await sent_body(
        OpenAIResponsesProvider, make_invocation("http://llm/v1"), _responses_reply()
    )
    assert "text" not in body


# --- Gemini --------------------------------------------------------------------------------------


def _gemini_chunk(text: str) -> dict[str, Any]:
    return {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2},
    }


async def test_gemini_sends_a_json_mime_type_and_the_json_schema() -> None:
    """`generationConfig.responseMimeType` + `responseJsonSchema`; a `responseSchema` goes."""
    reply = httpx.Response(
        200,
        headers={"content-type": "text/event-stream"},
        content=sse_body([_gemini_chunk("{}")]),
    )
    params = {"responseSchema": {"type": "STRING"}, "temperature": 0.1}
    body = await sent_body(
        GeminiProvider, typed("http://llm/v1beta", params=params, model="gemini-x"), reply
    )
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == VERDICT_SCHEMA
    assert "responseSchema" not in config
    assert config["temperature"] == 0.1


def _gemini_reply() -> httpx.Response:
    return httpx.Response(
        200,
        headers={"content-type": "text/event-stream"},
        content=sse_body([_gemini_chunk("{}")]),
    )


@pytest.mark.parametrize("model", ["gemini-3-pro-preview", "models/gemini-3.1-flash", "gemini-4"])
async def test_gemini_3_and_later_take_the_schema_beside_function_declarations(model: str) -> None:
    """Newer models combine a JSON response schema with tools: it goes natively."""
    invocation = typed("http://llm/v1beta", model=model, tools=[TOOL])
    body = await sent_body(GeminiProvider, invocation, _gemini_reply())
    assert body["generationConfig"]["responseJsonSchema"] == VERDICT_SCHEMA
    assert body["tools"][0]["functionDeclarations"][0]["name"] == "lookup"
    assert "systemInstruction" not in body


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "local-model"])
async def test_older_gemini_models_with_tools_are_asked_for_the_schema_in_words(
    model: str,
) -> None:
    """Before Gemini 3 the API refuses the pair: the schema goes in the system instruction."""
    invocation = typed("http://llm/v1beta", model=model, tools=[TOOL], system="Be brief.")
    body = await sent_body(GeminiProvider, invocation, _gemini_reply())
    config = body["generationConfig"]
    assert "responseMimeType" not in config
    assert "responseJsonSchema" not in config
    [part] = body["systemInstruction"]["parts"]
    assert part["text"].startswith("Be brief.\n\nWhen you give your final answer")
    assert json.dumps(VERDICT_SCHEMA, separators=(",", ":")) in part["text"]


async def test_a_typed_gemini_turn_over_a_real_socket() -> None:
    """A local Gemini-shaped server answers with JSON text; a wrapped type comes back bare."""
    stream = b"".join(
        f"data: {json.dumps(_gemini_chunk(piece))}\r\n\r\n".encode()
        for piece in ('{"result": ', "[3, 1, 2]}")
    )
    with replay_server(ScriptedResponse.sse(stream)) as server:
        async with httpx.AsyncClient() as client:
            provider = GeminiProvider(client)
            context = make_context(provider, api_key="key-1234567890", base_url=server.url)
            turn = await make_chat(context).send("numbers", output_type=list[int])
    assert turn.output == [3, 1, 2]
    [request] = server.requests
    schema = request.json()["generationConfig"]["responseJsonSchema"]
    assert schema["properties"]["result"] == {"type": "array", "items": {"type": "integer"}}
