"""Conversation histories for the compression and tool-pair tests: builders and strategies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from pydantic import SecretStr

from chatscope.config.ephemeral import EphemeralSettings
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.messages import (
    Block,
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)
from chatscope.services.runtime.auth import AuthSpec
from chatscope.services.runtime.context import (
    AgentRuntimeContext,
    ProviderCatalog,
    create_agent_runtime_context,
)
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.services.runtime.ports import HistoryStore, ModelProvider
from chatscope.services.runtime.state import AgentRuntimeState
from chatscope.services.tools.registry import ToolRegistry
from chatscope.testing import ScriptedProvider

# --- builders ------------------------------------------------------------------------------


def user(text: str) -> Message:
    """A user prompt."""
    return Message.user(text)


def reply(text: str) -> Message:
    """An assistant answer with text only."""
    return Message(Role.ASSISTANT, (TextBlock(text),))


def calling(*call_ids: str, text: str = "") -> Message:
    """An assistant message asking for one tool call per id (tool name `t_<id>`)."""
    calls: tuple[Block, ...] = tuple(
        ToolCallBlock.create(call_id, f"t_{call_id}", {"n": index})
        for index, call_id in enumerate(call_ids)
    )
    return Message(Role.ASSISTANT, ((TextBlock(text),) if text else ()) + calls)


def results(*call_ids: str, size: int = 8) -> Message:
    """A TOOL message answering each id (in this order) with `size` characters."""
    return Message(
        Role.TOOL,
        tuple(ToolResultBlock(i, f"t_{i}", result="r" * size) for i in call_ids),
    )


def answered(message: Message, size: int = 8) -> Message:
    """The TOOL message answering every call of `message`."""
    return results(*(call.id for call in message.tool_calls), size=size)


def conversation(turns: int, size: int = 80) -> tuple[Message, ...]:
    """`turns` plain exchanges whose texts are `size` characters and name their turn."""
    messages: list[Message] = []
    for index in range(turns):
        messages += [user(f"q{index}:" + "x" * size), reply(f"a{index}:" + "y" * size)]
    return tuple(messages)


# --- fakes ---------------------------------------------------------------------------------


class Summaries:
    """A fake summariser: answers with `text`, or raises `error`; records what it was given."""

    def __init__(self, text: str = "the gist", error: Exception | None = None) -> None:
        self.text = text
        self.error = error
        self.calls: list[tuple[Message, ...]] = []

    async def __call__(self, messages: tuple[Message, ...], context: AgentRuntimeContext) -> str:
        self.calls.append(messages)
        if self.error is not None:
            raise self.error
        return self.text


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- scopes --------------------------------------------------------------------------------


def compression_context(
    history: HistoryStore | Sequence[Message] = (),
    *,
    sink: RecordingSink | None = None,
    provider: ModelProvider | None = None,
    knobs: Mapping[str, float | int] | None = None,
    **ephemerals: float | int,
) -> AgentRuntimeContext:
    """A scope around `history` whose ephemerals are the seed defaults, then `knobs`, `ephemerals`.

    Ephemerals are named by field (`context_limit=1000`).
    """
    provider = provider or ScriptedProvider([])
    store = history if isinstance(history, HistoryStore) else InMemoryHistory(history)
    return create_agent_runtime_context(
        state=AgentRuntimeState.create(provider=provider.name, model="test-model"),
        history=store,
        telemetry_sink=sink if sink is not None else RecordingSink(),
        providers=ProviderCatalog.of(provider),
        tools=ToolRegistry(),
        auth=AuthSpec(provider.name, SecretStr("sk-test-scope-key-1234"), required=False),
        ephemerals=EphemeralSettings.model_validate({**(knobs or {}), **ephemerals}),
    )


# --- requests on the wire -------------------------------------------------------------------


def wire_items(provider: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """The request's calls, results and texts in wire order, as (kind, id or role)."""
    items: list[tuple[str, str]] = []
    if provider == "anthropic":
        for message in body["messages"]:
            for part in message["content"]:
                kind = part["type"]
                key = {"tool_use": "id", "tool_result": "tool_use_id"}.get(kind)
                items.append((kind, part[key] if key else message["role"]))
    elif provider == "gemini":
        for content in body["contents"]:
            for part in content["parts"]:
                name = next(k for k in ("functionCall", "functionResponse", "text") if k in part)
                items.append((name, part[name]["id"] if name != "text" else content["role"]))
    else:
        for message in body["messages"]:
            if message["role"] == "tool":
                items.append(("result", message["tool_call_id"]))
                continue
            items.append(("text", message["role"]))
            items += [("call", call["id"]) for call in message.get("tool_calls", [])]
    return items


def assert_wire_paired(items: list[tuple[str, str]]) -> None:
    """Every call is answered before the next text, and every result answers an open call."""
    open_calls: list[str] = []
    for kind, key in items:
        if kind in {"call", "tool_use", "functionCall"}:
            open_calls.append(key)
        elif kind in {"result", "tool_result", "functionResponse"}:
            open_calls.remove(key)
        elif key not in {"assistant", "model"}:
            assert open_calls == [], f"a {key} message came before results of {open_calls}"
    assert open_calls == []


# --- strategies ----------------------------------------------------------------------------

_sizes = st.integers(min_value=0, max_value=160)


@st.composite
def _text(draw: st.DrawFn, label: str) -> str:
    return label + "x" * draw(_sizes)


@st.composite
def _tool_step(draw: st.DrawFn, label: str) -> list[Message]:
    """An assistant message with 1-3 calls and the TOOL message answering them.

    Ids repeat across steps (`call_0`, `call_1`, ...) as several providers number them.
    """
    count = draw(st.integers(min_value=1, max_value=3))
    ids = [f"call_{index}" for index in range(count)]
    blocks: list[Block] = []
    if draw(st.booleans()):
        blocks.append(ThinkingBlock(draw(_text(f"{label}-think:")), provider="demo"))
    if draw(st.booleans()):
        blocks.append(TextBlock(draw(_text(f"{label}-pre:"))))
    blocks += [ToolCallBlock.create(i, f"t_{i}", {"label": label}) for i in ids]
    shuffled = draw(st.permutations(ids))
    answers = tuple(ToolResultBlock(i, f"t_{i}", result="r" * draw(_sizes)) for i in shuffled)
    return [Message(Role.ASSISTANT, tuple(blocks)), Message(Role.TOOL, answers)]


@st.composite
def _turn(draw: st.DrawFn, index: int) -> list[Message]:
    """A user prompt, up to 3 tool steps, and usually a final answer (absent: cut at max turns)."""
    messages = [user(draw(_text(f"q{index}:")))]
    for step in range(draw(st.integers(min_value=0, max_value=3))):
        messages += draw(_tool_step(f"t{index}.{step}"))
    if len(messages) == 1 or draw(st.integers(min_value=0, max_value=5)):
        messages.append(reply(draw(_text(f"a{index}:"))))
    return messages


@st.composite
def well_paired_histories(
    draw: st.DrawFn, min_turns: int = 0, max_turns: int = 12
) -> tuple[Message, ...]:
    """Histories as `ChatSession` stores them: whole turns, every call answered right after."""
    count = draw(st.integers(min_value=min_turns, max_value=max_turns))
    return tuple(message for index in range(count) for message in draw(_turn(index)))


_ids = st.sampled_from(["a", "b", "c"])


@st.composite
def _any_message(draw: st.DrawFn) -> Message:
    role = draw(st.sampled_from(list(Role)))
    if role is Role.TOOL:
        answers = draw(st.lists(_ids, max_size=3))
        return Message(role, tuple(ToolResultBlock(i, f"t_{i}", error="e") for i in answers))
    calls = draw(st.lists(_ids, max_size=3)) if role is Role.ASSISTANT else []
    blocks: tuple[Block, ...] = (TextBlock(draw(_text(f"{role}:"))),)
    return Message(role, blocks + tuple(ToolCallBlock.create(i, f"t_{i}", {}) for i in calls))


def messy_histories() -> st.SearchStrategy[tuple[Message, ...]]:
    """Any sequence of messages: calls without results, results without calls, duplicates."""
    return st.lists(_any_message(), max_size=14).map(tuple)


def ephemeral_knobs() -> st.SearchStrategy[dict[str, float | int]]:
    """Compression ephemerals over their whole allowed ranges (context limit kept small)."""
    return st.fixed_dictionaries(
        {
            "compression_threshold": st.floats(min_value=0.0, max_value=1.0),
            "compression_preserve_threshold": st.floats(min_value=0.0, max_value=1.0),
            "context_limit": st.integers(min_value=1, max_value=3000),
            "compression_min_age": st.integers(min_value=0, max_value=6),
        }
    )
