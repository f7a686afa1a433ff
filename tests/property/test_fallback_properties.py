"""Properties of fallback chains: the circuit breaker against a model of its own, the
round-robin spread, plans, which scopes get a chain, and that a call never carries one
member's key or endpoint to another."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from chatscope.config.loading import load_settings
from chatscope.config.settings import (
    PROVIDER_NAMES,
    ExplicitSettings,
    FallbackMember,
    FallbackSettings,
)
from chatscope.errors import (
    ConfigurationError,
    InvalidRequestError,
    ProviderError,
    ServerError,
)
from chatscope.services.chat.fallback import CIRCUIT_OPEN, ProviderSwitch, open_routed
from chatscope.services.chat.retry import RetryPolicy
from chatscope.services.events import FinishEvent, FinishReason, ProviderEvent, TextDelta
from chatscope.services.frozen import deep_freeze
from chatscope.services.messages import Message
from chatscope.services.runtime.auth import STANDARD_KEY_VARIABLES, AuthResolver, AuthSpec
from chatscope.services.runtime.fallback import (
    ChainConfig,
    ChainMember,
    CircuitBreaker,
    FallbackChain,
    ScopeFallback,
    member_from_settings,
)
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.runtime.observability.telemetry import RecordingSink
from chatscope.services.runtime.scopes import ScopeRequest
from tests.support.scopes import make_scope_factory


class Clock:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _member(index: int, provider: str = "openai") -> ChainMember:
    auth = AuthSpec(provider, env_vars=(f"KEY_{index}",))
    return ChainMember(provider, f"model-{index}", f"http://member{index}.test/v1", auth)


def _chain(size: int, mode: str, clock: Clock, threshold: int = 1) -> FallbackChain:
    members = tuple(_member(index) for index in range(size))
    return FallbackChain(ChainConfig(mode, members, threshold, 10.0), clock=clock)


operations = st.lists(
    st.one_of(
        st.just(("fail", 0.0)),
        st.just(("succeed", 0.0)),
        st.tuples(st.just("wait"), st.sampled_from([0.5, 40.0]) | st.floats(0.0, 50.0)),
    ),
    max_size=40,
)


def _model_state(
    history: list[tuple[str, float]], threshold: int, cooldown: float, now: float
) -> str:
    """The state the breaker must be in, read off the outcomes since the last success."""
    since_success: list[float] = []
    for outcome, at in history:
        since_success = [] if outcome == "succeed" else [*since_success, at]
    if len(since_success) < threshold:
        return "closed"
    return "open" if now < since_success[-1] + cooldown else "half-open"


@settings(max_examples=200)
@given(ops=operations, threshold=st.integers(1, 5), cooldown=st.floats(0.5, 30.0))
def test_the_breaker_follows_its_model(
    ops: list[tuple[str, float]], threshold: int, cooldown: float
) -> None:
    """After any sequence of failures, successes and waits the breaker is closed, open or
    half-open exactly as the outcomes since the last success say, and lets a call through
    unless open."""
    breaker = CircuitBreaker(threshold, cooldown)
    now = 0.0
    history: list[tuple[str, float]] = []
    for operation, amount in ops:
        if operation == "wait":
            now += amount
        elif operation == "fail":
            breaker.failed(now)
            history.append(("fail", now))
        else:
            breaker.succeeded()
            history.append(("succeed", now))
        expected = _model_state(history, threshold, cooldown, now)
        assert breaker.state(now) == expected
        assert breaker.allows(now) == (expected != "open")


@given(size=st.integers(1, 8), turns=st.integers(0, 300))
def test_round_robin_spreads_turns_evenly(size: int, turns: int) -> None:
    """Over any number of turns each member starts as many turns as any other, give or take
    one, and the first members get the extra ones."""
    chain = _chain(size, "round-robin", Clock())
    counts = [0] * size
    for _ in range(turns):
        counts[chain.plan().wanted] += 1
    assert max(counts) - min(counts) <= 1
    assert counts == sorted(counts, reverse=True)
    assert sum(counts) == turns


@given(
    size=st.integers(1, 6),
    mode=st.sampled_from(["failover", "round-robin"]),
    resting=st.sets(st.integers(0, 5)),
    turns=st.integers(0, 7),
    sticky=st.none() | st.integers(0, 5),
)
def test_a_plan_tries_every_member_at_most_once_skipping_those_resting(
    size: int, mode: str, resting: set[int], turns: int, sticky: int | None
) -> None:
    """A plan lists the members whose circuit is closed, in chain order from the one wanted
    (all of them when every one rests), each once; failover wants the first member."""
    clock = Clock()
    chain = _chain(size, mode, clock)
    for _ in range(turns):
        chain.plan()
    for index in resting & set(range(size)):
        chain.failed(index)
    wanted = None if sticky is None else sticky % size
    plan = chain.plan(wanted)
    rotation = [(plan.wanted + step) % size for step in range(size)]
    allowed = [index for index in rotation if index not in resting]
    assert list(plan.order) == (allowed or rotation)
    if wanted is not None:
        assert plan.wanted == wanted
    elif mode == "failover":
        assert plan.wanted == 0
    else:
        assert plan.wanted == turns % size


@dataclass
class RecordingAdapter:
    """Answers, fails retryably or fails for good, as its endpoint's behaviour says."""

    name: str
    behaviour: dict[str, str]
    calls: list[ModelInvocation] = field(default_factory=list)

    async def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
        """Record the call, then behave as told for its endpoint."""
        self.calls.append(invocation)
        what = self.behaviour[str(invocation.base_url)]
        if what == "transient":
            raise ServerError("busy", provider=self.name, status=503)
        if what == "fatal":
            raise InvalidRequestError("bad", provider=self.name, status=400)
        yield TextDelta(f"from {invocation.base_url}")
        yield FinishEvent(FinishReason.STOP)


member_plans = st.lists(
    st.tuples(
        st.sampled_from(["openai", "anthropic", "gemini", "openai-responses"]),
        st.sampled_from(["ok", "transient", "fatal"]),
    ),
    min_size=1,
    max_size=5,
)


@given(plan=member_plans, attempts=st.integers(1, 3), params=st.booleans())
async def test_a_call_never_carries_a_members_key_or_endpoint_to_another(
    plan: list[tuple[str, str]], attempts: int, params: bool
) -> None:
    """Whatever answers or fails, every request a member gets has that member's own endpoint,
    model and key (model params only on the scope's own wire); the turn is answered by the
    first member that answers, unless a member before it fails for good."""
    secrets = {f"KEY_{index}": f"secret-{index}-{'x' * 12}" for index in range(len(plan))}
    members = tuple(_member(index, provider) for index, (provider, _) in enumerate(plan))
    behaviour = {
        str(member.base_url): what for member, (_, what) in zip(members, plan, strict=True)
    }
    adapters: list[RecordingAdapter] = []

    def create(name: str) -> RecordingAdapter:
        adapters.append(RecordingAdapter(name, behaviour))
        return adapters[-1]

    own = create(members[0].provider)
    chain = FallbackChain(ChainConfig("failover", members, 100, 10.0))
    resolver = AuthResolver(secrets)
    invocation = ModelInvocation(
        runtime_id="rt",
        provider=members[0].provider,
        model=members[0].model,
        base_url=members[0].base_url,
        credentials=resolver.resolve(members[0].auth),
        history=(Message.user("hi"),),
        model_params=deep_freeze({"temperature": 0.5} if params else {}),
    )
    switches: list[ProviderSwitch] = []

    async def no_wait(_: float) -> None:
        return None

    outcome: int | ProviderError
    try:
        routed = await open_routed(
            ScopeFallback(chain, own, create),
            invocation,
            RetryPolicy(max_attempts=attempts, initial_delay=0.001),
            resolve=resolver.resolve,
            rng=random.Random(0),  # noqa: S311 - backoff jitter, not cryptography
            sleep=no_wait,
            on_switch=switches.append,
        )
        await routed.opened.aclose()
        outcome = routed.member
    except ProviderError as error:
        outcome = error
    by_endpoint = {member.base_url: (index, member) for index, member in enumerate(members)}
    for adapter in adapters:
        for call in adapter.calls:
            index, member = by_endpoint[call.base_url]
            assert call.credentials.secret() == secrets[f"KEY_{index}"]
            assert (call.provider, call.model) == (member.provider, member.model)
            assert adapter.name == member.provider
            same_wire = member.provider == members[0].provider
            assert call.model_params == (invocation.model_params if same_wire else {})
    first_answer = next((i for i, (_, what) in enumerate(plan) if what != "transient"), None)
    if first_answer is None:
        assert isinstance(outcome, ServerError)
    elif plan[first_answer][1] == "fatal":
        assert isinstance(outcome, InvalidRequestError)
    else:
        assert outcome == first_answer
    tried = len(plan) if first_answer is None else first_answer + 1
    assert [(s.from_member, s.to_member) for s in switches] == [
        (i, i + 1) for i in range(tried - 1)
    ]
    assert all(s.reason == "server" and s.status == 503 for s in switches)


@given(plan=member_plans)
async def test_a_member_resting_is_passed_over_and_the_pass_reported(
    plan: list[tuple[str, str]],
) -> None:
    """With the first member's circuit open, the call starts at the next member, and the
    switch past the first is reported as `circuit_open`."""
    members = (_member(0), *(_member(i + 1, p) for i, (p, _) in enumerate(plan)))
    behaviour = {str(member.base_url): "ok" for member in members}
    clock = Clock()
    chain = FallbackChain(ChainConfig("failover", members, 1, 10.0), clock=clock)
    chain.failed(0)
    switches: list[ProviderSwitch] = []
    own = RecordingAdapter("openai", behaviour)
    routed = await open_routed(
        ScopeFallback(chain, own, lambda name: RecordingAdapter(name, behaviour)),
        ModelInvocation("rt", "openai", "model-0", members[0].base_url, own_credentials(), ()),
        RetryPolicy(max_attempts=1),
        resolve=AuthResolver({f"KEY_{i}": f"secret-{i}-xxxxxxxx" for i in range(6)}).resolve,
        on_switch=switches.append,
    )
    await routed.opened.aclose()
    assert routed.member == 1
    assert own.calls == []
    assert [(s.from_member, s.to_member, s.reason) for s in switches] == [(0, 1, CIRCUIT_OPEN)]
    clock.now = 10.0
    assert chain.plan().order[0] == 0  # rested: tried again first


def own_credentials() -> Any:
    """No key: the fakes need none."""
    return AuthResolver({}).resolve(AuthSpec("openai", required=False))


endpoints = st.sampled_from([None, "section", "http://elsewhere.test/v1"])


@given(
    provider=st.sampled_from([name for name in PROVIDER_NAMES if name != "demo"]),
    endpoint=endpoints,
    key_env=st.none() | st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True),
    section_key=st.booleans(),
)
def test_a_members_key_comes_only_from_its_own_source(
    provider: str, endpoint: str | None, key_env: str | None, section_key: bool
) -> None:
    """A member with `api_key_env` reads that variable only; one without reads its provider's
    own sources on that provider's endpoint, and nothing at all on an endpoint of its own."""
    section = {"api_key": "sk-section-key-000"} if section_key else {}
    settings = ExplicitSettings(providers={provider.replace("-", "_"): section})
    default_url = settings.providers.get(provider).base_url
    base_url = default_url if endpoint == "section" else endpoint
    member = member_from_settings(
        FallbackMember(provider=provider, model="m", base_url=base_url, api_key_env=key_env),
        settings,
    )
    auth = member.auth
    assert member.base_url == (base_url or default_url)
    if key_env is not None:
        assert (auth.env_vars, auth.api_key, auth.key_file) == ((key_env,), None, None)
    elif member.base_url == default_url:
        assert auth.env_vars == STANDARD_KEY_VARIABLES[provider]
        assert auth.api_key == (SecretStr("sk-section-key-000") if section_key else None)
    else:
        assert (auth.env_vars, auth.api_key, auth.key_file, auth.required) == (
            (),
            None,
            None,
            False,
        )


request_fields = st.fixed_dictionaries(
    {},
    optional={
        "provider": st.sampled_from(["openai", "anthropic"]),
        "model": st.sampled_from(["gpt-4o-mini", "other-model"]),
        "base_url": st.sampled_from(["https://api.openai.com/v1", "http://127.0.0.1:9/v1"]),
        "api_key": st.just("sk-own-key-00000000"),
        "api_key_env": st.just("MY_KEY"),
    },
)


@given(fields=request_fields)
def test_only_scopes_on_the_default_endpoint_get_the_settings_chain(
    fields: dict[str, Any], tmp_path: Path
) -> None:
    """A foreground scope gets the settings' chain when nothing it names differs from the
    default endpoint; its chain then starts with its own endpoint and key source."""

    class Adapter:
        def __init__(self, name: str) -> None:
            self.name = name

        def stream(self, invocation: ModelInvocation) -> AsyncIterator[ProviderEvent]:
            raise NotImplementedError

    adapters = [Adapter(name) for name in ("openai", "anthropic")]
    factory = make_scope_factory(
        *adapters,
        sink=RecordingSink(),
        workspace=tmp_path,
        provider="openai",
        fallback=FallbackSettings(
            mode="failover", members=(FallbackMember(provider="anthropic", model="c"),)
        ),
    )
    context = factory.foreground(ScopeRequest.create(**fields))
    own_key = "api_key" in fields or "api_key_env" in fields
    default = (
        fields.get("provider", "openai") == "openai"
        and fields.get("model", "gpt-4o-mini") == "gpt-4o-mini"
        and fields.get("base_url", "https://api.openai.com/v1") == "https://api.openai.com/v1"
    )
    assert (context.fallback is not None) == (default and not own_key)
    if context.fallback is not None:
        first = context.fallback.member(0)
        assert (first.provider, first.model, first.base_url, first.auth) == (
            context.state.provider,
            context.state.model,
            context.state.base_url,
            context.auth,
        )
        assert context.fallback.adapter(0) is context.provider.get_active_provider()


env_text = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")


@given(
    mode=st.text(env_text, max_size=12).filter(
        lambda text: text not in {"off", "failover", "round-robin"}
    ),
)
def test_an_unknown_mode_is_one_configuration_error(mode: str) -> None:
    """Any other mode is refused as a configuration error naming the variable."""
    environ = {"CHATSCOPE_FALLBACK__MODE": mode}
    with mock.patch.dict(os.environ, environ), pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert "CHATSCOPE_FALLBACK__MODE" in str(raised.value)


@given(text=st.text(env_text, min_size=1, max_size=30).filter(lambda t: "[" not in t))
def test_members_that_are_not_json_are_one_configuration_error(text: str) -> None:
    """Members given as anything but a JSON list of member objects are refused as a
    configuration error naming the members variable, never a traceback of another kind."""
    environ = {"CHATSCOPE_FALLBACK__MODE": "failover", "CHATSCOPE_FALLBACK__MEMBERS": text}
    with mock.patch.dict(os.environ, environ), pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert "CHATSCOPE_FALLBACK__MEMBERS" in str(raised.value)
