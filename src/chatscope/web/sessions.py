"""Saved sessions over HTTP: create, list, read, delete, and send a message (streamed).

Every session belongs to the tenant that created it; another tenant's session does not exist
for a caller, in every endpoint (404). A message runs one turn in a fresh scope on the session's
history (as stored), streamed as named server-sent events: `text`, `thinking`, `tool_call`,
`tool_result`, `usage`, then `done` or `error`. The turn is stored whole when it completes,
even if the client has gone by then (see `chatscope.web.turns`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from chatscope.adapters.pricing import PriceTable, cost_json
from chatscope.adapters.storage.catalog import SessionSummary
from chatscope.services.events import (
    ChatEvent,
    CompletedTurn,
    TextDelta,
    ThinkingDelta,
    ToolCallEvent,
    ToolResultEvent,
    TurnDone,
    UsageEvent,
)
from chatscope.services.frozen import thaw
from chatscope.services.messages import Message, ToolCallBlock, ToolResultBlock, Usage
from chatscope.services.runtime.state import AgentRuntimeState, new_id
from chatscope.web.completions import EventStreamResponse, finish_reason_of
from chatscope.web.errors import ApiError
from chatscope.web.scopes import ModelChoice, resolve_model, scope_request
from chatscope.web.tenancy import CallerDep, ServerDep, ServerState
from chatscope.web.turns import TurnFeed

__all__ = [
    "NewMessage",
    "NewSession",
    "event_of",
    "message_json",
    "sessions_router",
    "sse_event",
    "summary_json",
]


class NewSession(BaseModel):
    """`POST /v1/sessions`: the model id (or provider and model) and a system prompt."""

    model_config = ConfigDict(extra="ignore")

    provider: str | None = None
    model: str | None = None
    system: str | None = None


class NewMessage(BaseModel):
    """`POST /v1/sessions/{id}/messages`: the prompt, and optionally another model."""

    model_config = ConfigDict(extra="ignore")

    content: str = Field(min_length=1)
    provider: str | None = None
    model: str | None = None


def sessions_router() -> APIRouter:
    """The router of the session endpoints."""
    router = APIRouter(prefix="/v1/sessions", tags=["sessions"])
    router.add_api_route("", create_session, methods=["POST"], status_code=201)
    router.add_api_route("", list_sessions, methods=["GET"])
    router.add_api_route("/{session_id}", read_session, methods=["GET"])
    router.add_api_route(
        "/{session_id}",
        delete_session,
        methods=["DELETE"],
        status_code=204,
        response_class=Response,
    )
    router.add_api_route(
        "/{session_id}/messages", send_message, methods=["POST"], response_model=None
    )
    return router


async def create_session(body: NewSession, server: ServerDep, caller: CallerDep) -> JSONResponse:
    """A new, empty session of the caller's, on the model the body names (or the default)."""
    catalog = server.catalog()
    choice = _resolve(server, body.model, body.provider)
    summary = await catalog.create(
        new_id(),
        owner=caller.tenant,
        provider=choice.provider,
        model=choice.model,
        system_prompt=body.system,
    )
    return JSONResponse(summary_json(summary), status_code=201)


async def list_sessions(server: ServerDep, caller: CallerDep) -> dict[str, Any]:
    """The caller's sessions, the most recently updated first."""
    summaries = await server.catalog().list_sessions(caller.tenant)
    return {"data": [summary_json(summary) for summary in summaries]}


async def read_session(session_id: str, server: ServerDep, caller: CallerDep) -> dict[str, Any]:
    """One of the caller's sessions with its messages."""
    catalog = server.catalog()
    summary = await catalog.get(session_id, caller.tenant)
    stored = await catalog.transcript(session_id, caller.tenant)
    return summary_json(summary) | {"messages": [message_json(item.message) for item in stored]}


async def delete_session(session_id: str, server: ServerDep, caller: CallerDep) -> Response:
    """Delete one of the caller's sessions and its messages."""
    await server.catalog().delete(session_id, caller.tenant)
    return Response(status_code=204)


async def send_message(
    session_id: str, body: NewMessage, server: ServerDep, caller: CallerDep
) -> EventStreamResponse:
    """Run one turn of the session and stream its events."""
    summary = await server.catalog().get(session_id, caller.tenant)
    choice = _message_choice(server, body, summary)
    request = scope_request(
        choice,
        tenant=caller.tenant,
        provider_key=caller.provider_key,
        session_id=summary.id,
        system=summary.system_prompt,
    )
    chat = server.open_chat(request, max_turns=choice.profile.max_turns if choice.profile else None)
    slot = server.limiter.acquire(caller.tenant, session_id=summary.id)
    feed = server.turns.start(
        chat, body.content, slot=slot, secret=caller.secret(), output_type=choice.output_type
    )
    events = _events(feed, chat.context.state, server.container.price_table())
    return EventStreamResponse(events)


def _resolve(server: ServerState, model: str | None, provider: str | None) -> ModelChoice:
    return resolve_model(model, provider, settings=server.settings, profiles=server.profiles())


def _message_choice(server: ServerState, body: NewMessage, summary: SessionSummary) -> ModelChoice:
    """The body's model if it names one, else the one the session was last continued with."""
    if body.model is not None or body.provider is not None:
        return _resolve(server, body.model, body.provider)
    if summary.provider is None:
        return _resolve(server, None, None)
    return _resolve(server, summary.model, summary.provider)


async def _events(
    feed: TurnFeed, state: AgentRuntimeState, prices: PriceTable
) -> AsyncIterator[str]:
    async for item in feed:
        if isinstance(item, ApiError):
            yield sse_event("error", {"message": item.message, "type": item.kind})
            return
        shown = event_of(item, state, prices)
        if shown is not None:
            yield sse_event(*shown)


def sse_event(name: str, data: dict[str, Any]) -> str:
    """One named server-sent event with a JSON payload on one data line."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def event_of(
    event: ChatEvent, state: AgentRuntimeState, prices: PriceTable
) -> tuple[str, dict[str, Any]] | None:
    """A chat event as the client sees it (name, data); None for what it is not shown.

    `usage` and `done` carry a `cost`: `{"amount": "0.0012", "currency": "USD"}`, or null when
    the price table does not know the model or endpoint."""
    shown: tuple[str, dict[str, Any]] | None = None
    match event:
        case TextDelta(text=text) if text:
            shown = "text", {"text": text}
        case ThinkingDelta(text=text) if text:
            shown = "thinking", {"text": text}
        case ToolCallEvent(call=call):
            shown = "tool_call", _call_json(call)
        case ToolResultEvent(result=result):
            shown = "tool_result", _result_json(result)
        case UsageEvent(usage=usage):
            shown = "usage", _usage_json(usage) | {"cost": _cost_json(usage, state, prices)}
        case TurnDone(turn=turn):
            shown = "done", _done_json(turn, state, prices)
    return shown


def _done_json(turn: CompletedTurn, state: AgentRuntimeState, prices: PriceTable) -> dict[str, Any]:
    return {
        "text": turn.text,
        "finish_reason": finish_reason_of(turn.finish_reason),
        "usage": _usage_json(turn.usage),
        "cost": _cost_json(turn.usage, state, prices),
        "provider": state.provider,
        "model": state.model,
        "session_id": state.session_id,
    }


def summary_json(summary: SessionSummary) -> dict[str, Any]:
    """A session as every endpoint shows it."""
    return {
        "id": summary.id,
        "provider": summary.provider,
        "model": summary.model,
        "title": summary.title,
        "created_at": summary.created_at.isoformat(),
        "updated_at": summary.updated_at.isoformat(),
        "turns": summary.turn_count,
    }


def message_json(message: Message) -> dict[str, Any]:
    """A stored message: its role, visible text, tool calls and tool results."""
    return {
        "role": str(message.role),
        "text": message.text,
        "tool_calls": [_call_json(call) for call in message.tool_calls],
        "tool_results": [_result_json(result) for result in message.tool_results],
    }


def _call_json(call: ToolCallBlock) -> dict[str, Any]:
    return {"id": call.id, "name": call.name, "arguments": thaw(call.arguments)}


def _result_json(result: ToolResultBlock) -> dict[str, Any]:
    return {
        "id": result.call_id,
        "name": result.name,
        "result": result.result,
        "error": result.error,
    }


def _usage_json(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}


def _cost_json(usage: Usage, state: AgentRuntimeState, prices: PriceTable) -> dict[str, str] | None:
    cost = prices.price(usage, provider=state.provider, model=state.model, base_url=state.base_url)
    return cost_json(cost)
