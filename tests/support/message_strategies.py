"""Hypothesis strategies for stored conversation: blocks with every optional field, messages, turns.

Optional `str | None` fields are found from the dataclasses themselves, so a field added to a
block later is generated (and round-trip tested) without touching this module.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import strategies as st

from chatscope.services.frozen import deep_freeze
from chatscope.services.messages import (
    Block,
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
    Usage,
)
from tests.support.adapter_helpers import JSON_OBJECTS

__all__ = ["blocks", "messages", "turns", "usages"]

texts = st.text(max_size=30)
optional_texts = st.none() | st.text(max_size=12)


def _with_optional_fields(
    cls: type[Block], **given: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    optional = {
        spec.name: optional_texts
        for spec in dataclasses.fields(cls)
        if spec.name not in given and spec.default is None
    }
    return st.builds(cls, **given, **optional)


blocks: st.SearchStrategy[Block] = st.one_of(
    _with_optional_fields(TextBlock, text=texts),
    _with_optional_fields(ThinkingBlock, text=texts),
    _with_optional_fields(
        ToolCallBlock,
        id=st.text(min_size=1, max_size=10),
        name=st.text(min_size=1, max_size=10),
        arguments=JSON_OBJECTS.map(deep_freeze),
    ),
    st.builds(ToolResultBlock, call_id=texts, name=texts, result=texts),
    st.builds(ToolResultBlock, call_id=texts, name=texts, error=texts),
)
messages: st.SearchStrategy[Message] = st.builds(
    Message, role=st.sampled_from(Role), blocks=st.lists(blocks, max_size=4).map(tuple)
)
usages: st.SearchStrategy[Usage] = st.builds(
    Usage, *(st.integers(min_value=0, max_value=10**6) for _ in range(4))
)
# A completed turn as `ChatSession` stores it: the prompt, then replies and tool results.
turns: st.SearchStrategy[list[Message]] = st.builds(
    lambda prompt, rest: [Message.user(prompt), *rest],
    st.text(max_size=40),
    st.lists(messages, max_size=3),
)
