"""How a compression summary is written: a `Summariser` turns the middle of a history into text.

`ModelSummariser` asks a model (the scope's own, or the `compression` settings' provider and
model); tests pass a plain async function. `render_transcript` is the plain-text form of the
messages the model is asked to summarise.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Protocol, assert_never

from chatscope.config.settings import Settings
from chatscope.errors import ChatscopeError
from chatscope.services.chat import (
    CallTelemetry,
    ResponseAssembler,
    RetryPolicy,
    Sleep,
    stream_with_retry,
)
from chatscope.services.events import FinishReason
from chatscope.services.messages import (
    Block,
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)
from chatscope.services.runtime.auth import AuthResolver, AuthSpec
from chatscope.services.runtime.context import AgentRuntimeContext, ProviderCatalog
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.ports import ModelProvider

__all__ = [
    "SUMMARY_PURPOSE",
    "SUMMARY_SYSTEM_PROMPT",
    "ModelSummariser",
    "Summariser",
    "SummaryError",
    "render_transcript",
]

SUMMARY_SYSTEM_PROMPT = (
    "You condense the older part of a conversation between a user and an assistant that uses "
    "tools, so that the conversation can go on without it. Write a faithful, compact summary: "
    "the user's goals and constraints, what was decided and done, the facts and tool results "
    "later turns may need (names, paths, values, errors), and what is still open. Use short "
    "paragraphs or bullet points, no preamble, and invent nothing."
)

SUMMARY_PURPOSE = "compression_summary"
"""The `purpose` of a summary call's api events and span."""


class SummaryError(ChatscopeError):
    """Summarising produced nothing usable (an empty or cut-off summary)."""


# --- the transcript ------------------------------------------------------------------------


def render_transcript(messages: Sequence[Message]) -> str:
    """The messages as plain text for a summariser; reasoning is left out."""
    lines = (_render_block(m.role, b) for m in messages for b in m.blocks)
    return "\n\n".join(line for line in lines if line)


def _render_block(role: Role, block: Block) -> str | None:
    match block:
        case TextBlock(text=text):
            return f"[{role}] {text}" if text else None
        case ThinkingBlock():
            return None
        case ToolCallBlock():
            return f"[assistant called {block.name}] {block.arguments_json()}"
        case ToolResultBlock():
            outcome = "failed" if block.is_error else "returned"
            return f"[{block.name} {outcome}] {block.content}"
        case _:
            assert_never(block)


# --- summarisers ---------------------------------------------------------------------------


class Summariser(Protocol):
    """Condenses messages of `context`'s history into a summary text."""

    async def __call__(self, messages: tuple[Message, ...], context: AgentRuntimeContext, /) -> str:
        """The summary of `messages`; raises a `ChatscopeError` when it cannot be made."""
        ...


@dataclass(frozen=True, slots=True)
class _SummaryRoute:
    adapter: ModelProvider
    provider: str
    model: str
    base_url: str | None
    auth: AuthSpec


class ModelSummariser:
    """Summarises with one model call, retried like any other and keyed per call.

    The model is the scope's own provider and model unless the `compression` settings name
    others. The call carries no tools and no model params (a thinking budget could exceed the
    summary's output cap), and `maxOutputTokens` is capped at `max_summary_tokens`. It reports
    like any model call of the scope (api events, a span under the turn being compressed for),
    with the purpose `compression_summary`.
    """

    __slots__ = ("_auth", "_catalog", "_retry", "_rng", "_settings", "_sleep")

    def __init__(
        self,
        *,
        auth_resolver: AuthResolver,
        retry_policy: RetryPolicy,
        provider_catalog: ProviderCatalog,
        settings: Settings,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._auth = auth_resolver
        self._retry = retry_policy
        self._catalog = provider_catalog
        self._settings = settings
        self._rng = rng
        self._sleep = sleep

    async def __call__(self, messages: tuple[Message, ...], context: AgentRuntimeContext) -> str:
        """Ask the model for a summary of `messages`."""
        route = self._route(context)
        invocation = self._invocation(route, messages, context)
        assembler = ResponseAssembler(route.provider)
        telemetry = context.telemetry
        with CallTelemetry(
            telemetry, invocation, assembler, telemetry.tracer, purpose=SUMMARY_PURPOSE
        ) as call:
            events = stream_with_retry(
                route.adapter,
                invocation,
                self._retry,
                rng=self._rng,
                sleep=self._sleep,
                on_retry=call.retrying,
            )
            async with aclosing(events):
                async for event in events:
                    assembler.add(event)
        if assembler.finish_reason is FinishReason.LENGTH:
            raise SummaryError(
                "the summary was cut off at compression.max_summary_tokens "
                f"({self._settings.compression.max_summary_tokens})"
            )
        return assembler.message().text.strip()

    def _route(self, context: AgentRuntimeContext) -> _SummaryRoute:
        wanted = self._settings.compression
        state = context.state
        if wanted.provider is None or wanted.provider == state.provider:
            adapter = context.provider.get_active_provider()
            model = wanted.model or state.model
            return _SummaryRoute(adapter, state.provider, model, state.base_url, context.auth)
        section = self._settings.providers.get(wanted.provider)
        auth = AuthSpec.for_provider(
            wanted.provider,
            api_key=section.api_key,
            key_file=section.key_file,
            required=section.auth_required,
        )
        model = wanted.model or section.default_model
        adapter = self._catalog.create(wanted.provider)
        return _SummaryRoute(adapter, wanted.provider, model, section.base_url, auth)

    def _invocation(
        self, route: _SummaryRoute, messages: tuple[Message, ...], context: AgentRuntimeContext
    ) -> ModelInvocation:
        cap = min(
            context.ephemerals.max_output_tokens, self._settings.compression.max_summary_tokens
        )
        request = f"Summarise this part of the conversation:\n\n{render_transcript(messages)}"
        return ModelInvocation(
            runtime_id=context.runtime_id,
            provider=route.provider,
            model=route.model,
            base_url=route.base_url,
            credentials=self._auth.resolve(route.auth),
            history=(Message.user(request),),
            ephemerals=context.ephemerals.with_overrides({"maxOutputTokens": cap}),
            system_prompt=SUMMARY_SYSTEM_PROMPT,
        )
