"""A chat over a fallback chain, with fake providers: who answers, what is stored, what is told."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from chatscope.config.ephemeral import EphemeralSettings
from chatscope.errors import InvalidRequestError, ServerError
from chatscope.services.chat.session import ChatSession
from chatscope.services.events import AnsweredBy, ProviderEvent, ThinkingDelta
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.messages import Role, ThinkingBlock
from chatscope.services.runtime.auth import AuthResolver, AuthSpec
from chatscope.services.runtime.context import (
    AgentRuntimeContext,
    ProviderCatalog,
    create_agent_runtime_context,
    tool_context_of,
)
from chatscope.services.runtime.fallback import (
    ChainConfig,
    ChainMember,
    FallbackChain,
    FallbackChains,
)
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.services.runtime.state import AgentRuntimeState
from chatscope.services.tools.function import tool
from chatscope.services.tools.registry import ToolRegistry
from chatscope.testing import FunctionProvider, ScriptedReply
from tests.support.scopes import FAST_RETRY, make_chat, make_context

OWN_KEY = "sk-own-key-0123456789"
BACKUP_KEY = "sk-backup-key-0123456789"


class Failing:
    """A provider whose every call fails with `error` before any output."""

    def __init__(self, name: str, error: Exception) -> None:
        self.name = name
        self.error = error
        self.calls = 0

    async def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
        """Fail."""
        self.calls += 1
        raise self.error
        yield  # pragma: no cover - makes this an async generator


def _member(provider: str, model: str, variable: str | None) -> ChainMember:
    auth = AuthSpec(provider, env_vars=(variable,) if variable else (), required=bool(variable))
    return ChainMember(provider, model, f"http://{model}.test", auth)


def _context(
    *adapters: Any, chain: FallbackChain, sink: RecordingSink, tools: tuple[Any, ...] = ()
) -> AgentRuntimeContext:
    own = chain.members[0]
    state = AgentRuntimeState.create(provider=own.provider, model=own.model, base_url=own.base_url)
    return create_agent_runtime_context(
        state=state,
        history=InMemoryHistory(),
        telemetry_sink=sink,
        providers=ProviderCatalog.of(*adapters),
        tools=ToolRegistry(tools, caller=tool_context_of(state)),
        auth=AuthSpec(own.provider, SecretStr(OWN_KEY)),
        ephemerals=EphemeralSettings(),
        fallback=chain,
    )


def _chat(context: AgentRuntimeContext) -> ChatSession:
    return ChatSession(
        context, auth_resolver=AuthResolver({"BACKUP": BACKUP_KEY}), retry_policy=FAST_RETRY
    )


def _chain(mode: str = "failover", second: str = "anthropic") -> FallbackChain:
    members = (_member("openai", "own", None), _member(second, "backup", "BACKUP"))
    return FallbackChain(ChainConfig(mode, members))


async def test_without_a_chain_the_scopes_own_endpoint_answers() -> None:
    """The turn records the scope's own provider and model, with no chain position."""
    context = make_context(FunctionProvider(lambda _: ScriptedReply("hi"), name="openai"))
    turn = await make_chat(context).send("hello")
    assert turn.answered_by == AnsweredBy("openai", "test-model", None)


async def test_the_answering_providers_name_is_on_its_reasoning() -> None:
    """After a switch, reasoning is stored as the answering provider's, so only that provider
    is ever sent it back; the switch is told without any key."""
    sink = RecordingSink()
    backup = FunctionProvider(
        lambda _: [ThinkingDelta("hmm", signature="sig"), *ScriptedReply("ok").events()],
        name="anthropic",
    )
    own = Failing("openai", ServerError("busy", provider="openai", status=500))
    context = _context(own, backup, chain=_chain(), sink=sink)
    chat = _chat(context)
    turn = await chat.send("hello")
    assert turn.answered_by == AnsweredBy("anthropic", "backup", 1)
    [_, reply] = await context.history.messages()
    [thinking] = [block for block in reply.blocks if isinstance(block, ThinkingBlock)]
    assert thinking.provider == "anthropic"
    [switch] = sink.named("provider_switch")
    assert switch["from"] == "openai:own"
    assert switch["to"] == "anthropic:backup"
    assert (switch["reason"], switch["status"]) == ("server", 500)
    assert OWN_KEY not in repr(sink.events)
    assert BACKUP_KEY not in repr(sink.events)
    assert backup.invocations[0].credentials.secret() == BACKUP_KEY


async def test_a_failure_no_retry_can_help_is_raised_without_a_switch() -> None:
    """A refused request (400) is the request's fault, not the endpoint's: no other member is
    asked, the circuit stays closed, and nothing is stored."""
    sink = RecordingSink()
    backup = FunctionProvider(lambda _: ScriptedReply("never"), name="anthropic")
    own = Failing("openai", InvalidRequestError("bad", provider="openai", status=400))
    chain = _chain()
    context = _context(own, backup, chain=chain, sink=sink)
    with pytest.raises(InvalidRequestError):
        await make_chat(context).send("hello")
    assert backup.invocations == []
    assert sink.named("provider_switch") == []
    assert chain.state(0) == "closed"
    assert await context.history.messages() == ()


async def test_a_turn_stays_with_its_member_and_the_next_turn_moves_on() -> None:
    """Round-robin spreads turns, not calls: a turn's tool loop stays on the member that
    answered its first call; the next turn starts at the next member."""

    @tool
    def now() -> str:
        """The time."""
        return "noon"

    def answer(invocation: ModelInvocation) -> ScriptedReply:
        last = invocation.history[-1]
        if last.role is Role.USER:
            return ScriptedReply(tool_calls=[("now", {})])
        return ScriptedReply(f"{invocation.provider} says noon")

    own = FunctionProvider(answer, name="openai")
    other = FunctionProvider(answer, name="gemini")
    chain = _chain("round-robin", second="gemini")
    context = _context(own, other, chain=chain, sink=RecordingSink(), tools=(now,))
    chat = _chat(context)
    first = await chat.send("time?")
    second = await chat.send("and now?")
    assert (first.text, first.answered_by) == ("openai says noon", AnsweredBy("openai", "own", 0))
    assert second.answered_by == AnsweredBy("gemini", "backup", 1)
    assert (len(own.invocations), len(other.invocations)) == (2, 2)


def test_an_application_keeps_one_chain_per_distinct_config() -> None:
    """Equal configs share one chain (and its breakers); another config gets another."""
    chains = FallbackChains()
    config = _chain().config
    same = ChainConfig(config.mode, config.members)
    other = ChainConfig("round-robin", config.members)
    assert chains.chain(config) is chains.chain(same)
    assert chains.chain(other) is not chains.chain(config)
    assert FallbackChains().chain(config) is not chains.chain(config)


@pytest.mark.parametrize(("mode", "members"), [("sideways", 1), ("failover", 0)])
def test_a_chain_needs_a_known_mode_and_a_member(mode: str, members: int) -> None:
    """A chain config built by hand is checked like the settings."""
    with pytest.raises(ValueError, match=r"mode|member"):
        ChainConfig(mode, _chain().members[:members])
