"""The OpenAI-compatible endpoints: `GET /v1/models` and `POST /v1/chat/completions`.

A completion is stateless: the request's earlier messages become the scope's history, in
memory, and nothing is stored. Tools and subagents run on the server; the client sees the
answer (streamed as `chat.completion.chunk` events, then `data: [DONE]`) and its usage.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from chatscope.services.events import CompletedTurn, FinishReason, TextDelta, TurnDone
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.messages import Usage
from chatscope.services.runtime.state import new_id
from chatscope.web.errors import ApiError
from chatscope.web.scopes import (
    CompletionRequest,
    model_ids,
    read_conversation,
    resolve_model,
    scope_request,
)
from chatscope.web.tenancy import CallerDep, ServerDep
from chatscope.web.turns import TurnFeed

__all__ = [
    "SSE_HEADERS",
    "EventStreamResponse",
    "completion_body",
    "completions_router",
    "finish_reason_of",
    "sse_data",
]

SSE_HEADERS = MappingProxyType({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


class EventStreamResponse(StreamingResponse):
    """A turn's server-sent events, streamed without also watching for the client to leave.

    A turn runs to its end in a task of its own whether or not its client stays (see
    `chatscope.web.turns`), and the server drops what is sent after a disconnect, so the task
    group and the waiting `receive` that Starlette adds to every streamed response to notice
    a disconnect would only cost time on every response.
    """

    def __init__(self, events: AsyncIterator[str]) -> None:
        super().__init__(events, media_type="text/event-stream", headers=SSE_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.stream_response(send)


_FINISH_REASONS = MappingProxyType(
    {
        FinishReason.STOP: "stop",
        FinishReason.LENGTH: "length",
        FinishReason.TOOL_CALLS: "tool_calls",
        FinishReason.CONTENT_FILTER: "content_filter",
        FinishReason.MAX_TURNS: "length",
        FinishReason.OTHER: "stop",
    }
)


def completions_router() -> APIRouter:
    """The router of the OpenAI-compatible endpoints."""
    router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
    router.add_api_route("/models", list_models, methods=["GET"])
    router.add_api_route(
        "/chat/completions", create_completion, methods=["POST"], response_model=None
    )
    return router


async def list_models(server: ServerDep, caller: CallerDep) -> dict[str, Any]:
    """Every model id: each subagent profile, and each provider's default model."""
    ids = model_ids(server.settings, server.profiles())
    data = [{"id": name, "object": "model", "owned_by": "chatscope"} for name in ids]
    return {"object": "list", "data": data}


async def create_completion(
    body: CompletionRequest, server: ServerDep, caller: CallerDep
) -> JSONResponse | EventStreamResponse:
    """One stateless turn, streamed (`"stream": true`) or answered whole."""
    choice = resolve_model(body.model, None, settings=server.settings, profiles=server.profiles())
    conversation = read_conversation(body.messages)
    request = scope_request(
        choice,
        tenant=caller.tenant,
        provider_key=caller.provider_key,
        history=InMemoryHistory(conversation.history),
        system=conversation.system,
        overrides=body.overrides(),
    )
    max_turns = choice.profile.max_turns if choice.profile else None
    chat = server.open_chat(request, max_turns=max_turns)
    slot = server.limiter.acquire(caller.tenant)
    feed = server.turns.start(
        chat, conversation.prompt, slot=slot, secret=caller.secret(), output_type=choice.output_type
    )
    head = _Head(f"chatcmpl-{new_id()}", int(time.time()), body.model)
    if body.stream:
        return EventStreamResponse(_chunks(feed, head))
    return JSONResponse(completion_body(head.id, head.created, head.model, await feed.result()))


@dataclass(frozen=True, slots=True)
class _Head:
    """What every chunk of one completion repeats."""

    id: str
    created: int
    model: str

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }


async def _chunks(feed: TurnFeed, head: _Head) -> AsyncIterator[str]:
    yield sse_data(head.chunk({"role": "assistant", "content": ""}))
    async for item in feed:
        if isinstance(item, ApiError):
            yield sse_data(item.body())
            break
        if isinstance(item, TextDelta) and item.text:
            yield sse_data(head.chunk({"content": item.text}))
        elif isinstance(item, TurnDone):
            last = head.chunk({}, finish_reason_of(item.turn.finish_reason))
            yield sse_data(last | {"usage": _usage(item.turn.usage)})
    yield "data: [DONE]\n\n"


def sse_data(payload: dict[str, Any]) -> str:
    """One server-sent event with a JSON payload (JSON has no raw newline: one data line)."""
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def finish_reason_of(reason: FinishReason) -> str:
    """The Chat Completions word for why a turn ended."""
    return _FINISH_REASONS[reason]


def completion_body(
    completion_id: str, created: int, model: str, turn: CompletedTurn
) -> dict[str, Any]:
    """A whole `chat.completion` object for one completed turn."""
    message = {"role": "assistant", "content": turn.text}
    choice = {"index": 0, "message": message, "finish_reason": finish_reason_of(turn.finish_reason)}
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": _usage(turn.usage),
    }


def _usage(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
