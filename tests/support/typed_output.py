"""Typed invocations and request capture shared by the typed-output adapter tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import BaseModel

from chatscope.services.chat import output_spec
from chatscope.services.frozen import thaw
from chatscope.services.runtime.invocation import ModelInvocation, OutputSchema
from chatscope.services.runtime.ports import ModelProvider
from tests.support.adapter_helpers import collect, declaration, make_invocation, recording_client

__all__ = [
    "ANSWER",
    "TOOL",
    "VERDICT",
    "VERDICT_SCHEMA",
    "Verdict",
    "sent_body",
    "typed",
    "with_schema",
]


class Verdict(BaseModel):
    """Whether a claim holds, and why."""

    holds: bool
    reason: str
    confidence: float | None = None


VERDICT = output_spec(Verdict).schema
VERDICT_SCHEMA = thaw(VERDICT.schema)
ANSWER = {"holds": True, "reason": "checked", "confidence": None}
TOOL = declaration("lookup", "Look a fact up", {"type": "object", "properties": {}})


def with_schema(invocation: ModelInvocation, schema: OutputSchema) -> ModelInvocation:
    """`invocation` asking for a typed answer of `schema`."""
    fields = {name: getattr(invocation, name) for name in invocation.__dataclass_fields__}
    return ModelInvocation(**{**fields, "output_schema": schema})


def typed(base_url: str, **options: Any) -> ModelInvocation:
    """`make_invocation(...)` asking for a `Verdict`."""
    return with_schema(make_invocation(base_url, **options), VERDICT)


async def sent_body(
    provider: Callable[[httpx.AsyncClient], ModelProvider],
    invocation: ModelInvocation,
    reply: httpx.Response,
) -> dict[str, Any]:
    """The JSON body `provider` sends for `invocation` (answered with `reply`)."""
    seen: list[httpx.Request] = []
    async with recording_client(lambda _: reply, seen) as client:
        await collect(provider(client), invocation)
    body: dict[str, Any] = json.loads(seen[0].content)
    return body
