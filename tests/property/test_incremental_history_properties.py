"""What a conversation keeps from one request to the next changes nothing that is sent.

A chat session repairs each request's history incrementally (`ToolPairRepairer`), and each
adapter maps only the messages its last request did not have (`SentHistory`). For any sequence
of histories, appended to, compressed, rewound or read back as equal twins, and across provider
switches and concurrent scopes, what is sent must be exactly what a fresh start would send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatscope.services.chat.tool_pairs import ToolPairRepairer, is_well_paired, repair_tool_pairs
from chatscope.services.messages import Message
from chatscope.services.runtime.invocation import ModelInvocation
from tests.support.adapter_helpers import make_invocation
from tests.support.request_sequences import (
    FORMATS,
    Adapter,
    Step,
    next_history,
    refusing_client,
    sent_body,
    steps,
)

_SYSTEM_PROMPTS = st.none() | st.just("Be brief.")


def _invocation(provider: str, history: tuple[Message, ...], system: str | None) -> ModelInvocation:
    return make_invocation(
        "http://llm.test/v1", history=history, provider=provider, model="m", system=system
    )


async def _from_scratch(provider: str, invocation: ModelInvocation) -> bytes | str:
    """The body a brand-new adapter sends: nothing kept from anywhere."""
    seen: list[httpx.Request] = []
    async with refusing_client(seen) as client:
        return await sent_body(FORMATS[provider](client, name=provider), invocation, seen)


@settings(max_examples=300)  # pure and quick: room for the rarer rewinds
@given(moves=steps(max_size=10))
def test_incremental_repair_equals_repair_from_scratch(moves: list[Step]) -> None:
    """Each request's repair is that of `repair_tool_pairs`, down to the types of its values;
    a well-paired history comes back as the very same tuple."""
    repairer = ToolPairRepairer()
    history: tuple[Message, ...] = ()
    for move in moves:
        history = next_history(history, move)
        repaired = repairer.repair(history)
        expected = repair_tool_pairs(history)
        assert repaired == expected
        assert repr(repaired) == repr(expected)  # `1` and `1.0` are equal, not the same
        if is_well_paired(history):
            assert repaired is history


@given(moves=steps(max_size=10), pending=st.lists(st.integers(0, 3), min_size=1, max_size=10))
def test_incremental_repair_of_requests_within_turns(moves: list[Step], pending: list[int]) -> None:
    """As a session asks: stored history plus a turn's pending messages, the turn growing."""
    repairer = ToolPairRepairer()
    stored: tuple[Message, ...] = ()
    for move, count in zip(moves, pending, strict=False):
        stored = next_history(stored, move)
        turn = move[1][:count]
        for end in range(len(turn) + 1):
            request = (*stored, *turn[:end])
            assert repr(repairer.repair(request)) == repr(repair_tool_pairs(request))


@pytest.mark.parametrize("provider", sorted(FORMATS))
@settings(max_examples=30)
@given(moves=steps(), system=_SYSTEM_PROMPTS)
async def test_each_request_body_equals_the_body_built_from_scratch(
    provider: str, moves: list[Step], system: str | None
) -> None:
    """One adapter (one scope) sends a sequence of histories: every body, byte for byte, is
    the one a fresh adapter would send, and a refused history is refused the same way."""
    seen: list[httpx.Request] = []
    history: tuple[Message, ...] = ()
    async with refusing_client(seen) as client:
        adapter = FORMATS[provider](client, name=provider)
        for move in moves:
            history = next_history(history, move)
            invocation = _invocation(provider, history, system)
            sent = await sent_body(adapter, invocation, seen)
            assert sent == await _from_scratch(provider, invocation)


@settings(max_examples=30)
@given(
    moves=steps(),
    route=st.lists(st.sampled_from(sorted(FORMATS)), min_size=10, max_size=10),
)
async def test_bodies_stay_exact_across_provider_switches(
    moves: list[Step], route: list[str]
) -> None:
    """A scope whose calls switch between providers (a fallback chain: one adapter per member)
    and back: each adapter's body is still the one built from scratch, however many requests
    it missed in between."""
    seen: list[httpx.Request] = []
    history: tuple[Message, ...] = ()
    async with refusing_client(seen) as client:
        members = {name: FORMATS[name](client, name=name) for name in FORMATS}
        for move, provider in zip(moves, route, strict=False):
            history = next_history(history, move)
            invocation = _invocation(provider, history, None)
            sent = await sent_body(members[provider], invocation, seen)
            assert sent == await _from_scratch(provider, invocation)


async def _converse(
    adapter_name: str,
    adapter: Adapter,
    moves: Sequence[Step],
    start: tuple[Message, ...],
    seen: list[httpx.Request],
) -> list[tuple[bytes | str, bytes | str]]:
    """One scope's requests, each with the body a fresh adapter would send, yielding to the
    event loop between them so that another scope's requests come in between."""
    pairs = []
    history = start
    for move in moves:
        history = next_history(history, move)
        invocation = _invocation(adapter_name, history, None)
        sent = await sent_body(adapter, invocation, seen)
        pairs.append((sent, await _from_scratch(adapter_name, invocation)))
        await asyncio.sleep(0)
    return pairs


@pytest.mark.parametrize("provider", sorted(FORMATS))
@settings(max_examples=20)
@given(first=steps(), second=steps(), shared=steps(max_size=3))
async def test_concurrent_scopes_never_see_each_others_history(
    provider: str, first: list[Step], second: list[Step], shared: list[Step]
) -> None:
    """Two scopes, two adapters, requests interleaved on one event loop, both conversations
    starting from the very same message objects: each sends only its own history."""
    start: tuple[Message, ...] = ()
    for move in shared:
        start = next_history(start, move)
    one: list[httpx.Request] = []
    two: list[httpx.Request] = []
    async with refusing_client(one) as client_one, refusing_client(two) as client_two:
        scopes = (
            _converse(provider, FORMATS[provider](client_one, name=provider), first, start, one),
            _converse(provider, FORMATS[provider](client_two, name=provider), second, start, two),
        )
        for pairs in await asyncio.gather(*scopes):
            for sent, expected in pairs:
                assert sent == expected


@pytest.mark.parametrize("provider", sorted(FORMATS))
@settings(max_examples=20)
@given(first=steps(), second=steps(), order=st.lists(st.booleans(), max_size=16))
async def test_one_adapter_shared_by_two_conversations_stays_exact(
    provider: str, first: list[Step], second: list[Step], order: list[bool]
) -> None:
    """An adapter handed to two scopes (as `ProviderCatalog.of` does in tests and embedding
    apps) alternating in any order: the kept history is replaced, never mixed in."""
    seen: list[httpx.Request] = []
    histories: list[tuple[Message, ...]] = [(), ()]
    queues = [list(first), list(second)]
    async with refusing_client(seen) as client:
        adapter = FORMATS[provider](client, name=provider)
        for which in (int(flag) for flag in order):
            if not queues[which]:
                continue
            histories[which] = next_history(histories[which], queues[which].pop(0))
            invocation = _invocation(provider, histories[which], None)
            sent = await sent_body(adapter, invocation, seen)
            assert sent == await _from_scratch(provider, invocation)
