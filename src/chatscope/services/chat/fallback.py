"""Opening a model call's stream through a scope's fallback chain.

The chain (`chatscope.services.runtime.fallback`) says which members to try, in order. Each
member is tried with the scope's retry policy (`open_stream`); when its attempts are spent on a
transient failure (`is_transient`: a 5xx, an overload, a rate limit, a dropped connection, a
first-byte timeout) before any output reached the caller, the next member is tried. A failure
after output is never switched: the stream is already the caller's (the turn fails, and stores
nothing). A switch is told to `on_switch` as a `ProviderSwitch`, and so is a member skipped
because its circuit is open.

Every member's call is its own invocation: the member's provider, model, endpoint and key
(resolved from the member's own `AuthSpec` for this call), never another member's. The history
is the same provider-neutral history, so a switch mid-turn needs nothing remapped by hand: each
adapter maps tool call ids to its wire's rules, exactly as when a saved session is continued
with another provider, and leaves out reasoning that another provider signed. Model params are
wire-specific: a member of another provider than the scope's gets none.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass

from chatscope.errors import ProviderError
from chatscope.services.chat.retry import (
    OpenedStream,
    RetryNotice,
    RetryPolicy,
    Sleep,
    is_transient,
    open_stream,
)
from chatscope.services.events import AnsweredBy
from chatscope.services.frozen import FrozenDict
from chatscope.services.runtime.auth import AuthSpec
from chatscope.services.runtime.fallback import ScopeFallback
from chatscope.services.runtime.invocation import Credentials, ModelInvocation

__all__ = ["CIRCUIT_OPEN", "ProviderSwitch", "Routed", "open_routed"]

CIRCUIT_OPEN = "circuit_open"
"""The reason of a switch past a member whose circuit is open (it failed too often lately)."""


@dataclass(frozen=True, slots=True)
class ProviderSwitch:
    """A model call moved from one member of the chain to another, and why.

    `reason` is the failure's category (`server`, `network`, `timeout`, ...) or
    `circuit_open`; `status` its HTTP status, if it had one. Members are named by position and
    label (`provider:model`): never by key or endpoint.
    """

    from_member: int
    to_member: int
    from_label: str
    to_label: str
    reason: str
    status: int | None = None


@dataclass(frozen=True, slots=True)
class Routed:
    """A stream opened through the chain, and the member that answered."""

    opened: OpenedStream
    member: int
    answered_by: AnsweredBy


async def open_routed(
    fallback: ScopeFallback,
    invocation: ModelInvocation,
    policy: RetryPolicy,
    *,
    resolve: Callable[[AuthSpec], Credentials],
    sticky: int | None = None,
    rng: random.Random | None = None,
    sleep: Sleep = asyncio.sleep,
    on_retry: Callable[[RetryNotice], None] | None = None,
    on_switch: Callable[[ProviderSwitch], None] | None = None,
) -> Routed:
    """Open `invocation` (built for the scope's own endpoint) at the first member that answers.

    `sticky` is the member that answered the turn's previous call: the turn stays with it while
    it answers. The last member's failure, and any failure that is not transient, is raised.
    """
    chain = fallback.chain
    plan = chain.plan(sticky)
    order = plan.order
    if order[0] != plan.wanted:
        _tell(on_switch, _switch(fallback, plan.wanted, order[0], CIRCUIT_OPEN, None))
    for position, index in enumerate(order):
        call = _for_member(fallback, index, invocation, resolve)
        try:
            opened = await open_stream(
                fallback.adapter(index), call, policy, rng=rng, sleep=sleep, on_retry=on_retry
            )
        except ProviderError as error:
            if not is_transient(error):
                raise
            chain.failed(index)
            if position + 1 == len(order):
                raise
            following = order[position + 1]
            _tell(on_switch, _switch(fallback, index, following, str(error.category), error))
            continue
        chain.succeeded(index)
        member = fallback.member(index)
        return Routed(opened, index, AnsweredBy(member.provider, member.model, index))
    raise AssertionError("a plan names at least one member")  # pragma: no cover


def _for_member(
    fallback: ScopeFallback,
    index: int,
    invocation: ModelInvocation,
    resolve: Callable[[AuthSpec], Credentials],
) -> ModelInvocation:
    """The call as member `index` receives it: member 0 is the scope's own endpoint."""
    if index == 0:
        return invocation
    member = fallback.member(index)
    same_wire = member.provider == invocation.provider
    return dataclasses.replace(
        invocation,
        provider=member.provider,
        model=member.model,
        base_url=member.base_url,
        credentials=resolve(member.auth),
        model_params=invocation.model_params if same_wire else FrozenDict(),
    )


def _switch(
    fallback: ScopeFallback, from_: int, to: int, reason: str, error: ProviderError | None
) -> ProviderSwitch:
    return ProviderSwitch(
        from_member=from_,
        to_member=to,
        from_label=fallback.member(from_).label,
        to_label=fallback.member(to).label,
        reason=reason,
        status=error.status if error is not None else None,
    )


def _tell(on_switch: Callable[[ProviderSwitch], None] | None, switch: ProviderSwitch) -> None:
    if on_switch is not None:
        on_switch(switch)
