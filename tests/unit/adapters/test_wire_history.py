"""`SentHistory`: an adapter maps only what its last request did not send, and nothing else."""

from __future__ import annotations

import json

import httpx
import pytest

from chatscope.adapters.providers import gemini
from chatscope.adapters.providers._wire_history import SentHistory
from chatscope.adapters.providers.anthropic import messages as anthropic
from chatscope.errors import InvalidRequestError
from chatscope.services.messages import Message, Role, TextBlock, ToolCallBlock, ToolResultBlock
from tests.support.adapter_helpers import collect, make_invocation
from tests.support.histories import calling, conversation, results, user
from tests.support.request_sequences import FORMATS, equal_twin, refusing_client, sent_body

URL = "http://llm.test/v1"
NATIVE_APPEND = {"anthropic": anthropic._append_messages, "gemini": gemini._append_messages}


@pytest.mark.parametrize("provider", sorted(FORMATS))
async def test_the_next_request_reuses_the_items_of_the_last(provider: str) -> None:
    """The messages sent before are not mapped again: their wire items are the same objects."""
    seen: list[httpx.Request] = []
    history = conversation(3)
    async with refusing_client(seen) as client:
        adapter = FORMATS[provider](client, name=provider)
        await sent_body(adapter, make_invocation(URL, history=history, provider=provider), seen)
        before = adapter._sent._sent.items
        longer = (*history, user("and then?"))
        await sent_body(adapter, make_invocation(URL, history=longer, provider=provider), seen)
        after = adapter._sent._sent.items
    assert len(after) > len(before)
    assert all(map(lambda old, new: old is new, before[:-1], after))


@pytest.mark.parametrize("provider", sorted(FORMATS))
async def test_a_compressed_history_is_mapped_from_scratch(provider: str) -> None:
    """A history that does not start with the very messages sent last shares no item with it,
    even when it keeps their tail."""
    seen: list[httpx.Request] = []
    history = conversation(4)
    compressed = (user("summary of turns 0 and 1"), *history[4:], user("go on"))
    async with refusing_client(seen) as client:
        adapter = FORMATS[provider](client, name=provider)
        await sent_body(adapter, make_invocation(URL, history=history, provider=provider), seen)
        before = {id(item) for item in adapter._sent._sent.items}
        body = await sent_body(
            adapter, make_invocation(URL, history=compressed, provider=provider), seen
        )
        after = {id(item) for item in adapter._sent._sent.items}
    assert not before & after
    assert "turns 0 and 1" in str(body)
    assert "q0:" not in str(body)


@pytest.mark.parametrize("provider", sorted(FORMATS))
async def test_an_equal_history_of_other_objects_is_sent_as_it_is(provider: str) -> None:
    """Arguments `1` and `1.0` are equal in Python, not on the wire: equality is no reuse."""
    seen: list[httpx.Request] = []
    call = ToolCallBlock.create("call_1", "lookup", {"n": 1})
    history = (user("look"), Message(Role.ASSISTANT, (call,)), results("call_1"), user("next"))
    twin = tuple(equal_twin(message) for message in history)
    assert twin == history
    async with refusing_client(seen) as client:
        adapter = FORMATS[provider](client, name=provider)
        first = await sent_body(
            adapter, make_invocation(URL, history=history, provider=provider), seen
        )
        second = await sent_body(
            adapter, make_invocation(URL, history=twin, provider=provider), seen
        )
    assert isinstance(first, bytes)
    assert isinstance(second, bytes)
    assert b"1.0" not in first
    assert b"1.0" in second


@pytest.mark.parametrize("provider", sorted(NATIVE_APPEND))
def test_merging_into_a_kept_item_copies_it(provider: str) -> None:
    """Same-role neighbours merge (a prompt after tool results is one user turn); the item
    the last request sent is replaced by a merged copy, never changed under that request."""
    sent = SentHistory()
    step = (user("look"), calling("call_1"), results("call_1"))
    first = sent.items(step, NATIVE_APPEND[provider], provider)
    frozen = json.dumps(first)
    second = sent.items((*step, user("and?")), NATIVE_APPEND[provider], provider)
    assert json.dumps(first) == frozen
    assert len(second) == len(first)
    assert second[:-1] == first[:-1]
    assert second[-1] is not first[-1]
    assert len(next(iter(v for k, v in second[-1].items() if k != "role"))) == 2


async def test_a_history_the_wire_refuses_keeps_the_last_one() -> None:
    """A refused history maps nothing and keeps nothing: the next request reuses what the
    last good one sent, and sends exactly what a fresh adapter would."""
    seen: list[httpx.Request] = []
    good = conversation(2)
    refused = (*good, Message(Role.USER, (ToolResultBlock("x", "t", result="r"),)))
    async with refusing_client(seen) as client:
        adapter = FORMATS["openai"](client, name="openai")
        await sent_body(adapter, make_invocation(URL, history=good), seen)
        kept = adapter._sent._sent
        with pytest.raises(InvalidRequestError):
            await collect(adapter, make_invocation(URL, history=refused))
        assert adapter._sent._sent is kept
        longer = (*good, Message(Role.USER, (TextBlock("fine"),)))
        body = await sent_body(adapter, make_invocation(URL, history=longer), seen)
        fresh = FORMATS["openai"](client, name="openai")
        assert body == await sent_body(fresh, make_invocation(URL, history=longer), seen)
