"""Fallback chains: which endpoint of a scope answers its next model call, and which rest.

A chain is a scope's own endpoint (member 0) followed by the members of a `FallbackSettings`
(the settings' `fallback` section for foreground chats on the default endpoint, or a subagent
profile's `[fallback]` table). Its state, a circuit breaker per member and the round-robin
position, lives in one `FallbackChain` object: an application keeps one per distinct chain in
its `FallbackChains` (a container `Singleton`), shared by that application's scopes and by
nothing else; a `ScopeFactory` without one gives every scope a chain of its own.

A scope sees its chain through a `ScopeFallback`, which adds what belongs to the scope: an
adapter per member, made from the scope's provider catalog on first use (member 0 is the
scope's own adapter). Every member keeps its own endpoint and key source: a member's key is
resolved from its `AuthSpec` for each call, and never from another member's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from chatscope.config.settings import FallbackMember, FallbackSettings, Settings
from chatscope.services.runtime.auth import AuthSpec
from chatscope.services.runtime.ports import ModelProvider

__all__ = [
    "ChainConfig",
    "ChainMember",
    "CircuitBreaker",
    "Clock",
    "FallbackChain",
    "FallbackChains",
    "Plan",
    "ScopeFallback",
    "member_from_settings",
]

Clock = Callable[[], float]
"""Seconds on a monotonic clock; tests pass one they move by hand."""

FAILOVER = "failover"
ROUND_ROBIN = "round-robin"


@dataclass(frozen=True, slots=True)
class ChainMember:
    """One endpoint of a chain: provider, model, endpoint, and where its key comes from."""

    provider: str
    model: str
    base_url: str | None
    auth: AuthSpec

    @property
    def label(self) -> str:
        """How telemetry names the member: `provider:model` (never its key or endpoint)."""
        return f"{self.provider}:{self.model}"


def member_from_settings(member: FallbackMember, settings: Settings) -> ChainMember:
    """The chain member a `FallbackMember` describes, its key source decided once.

    A member with `api_key_env` reads its key from that variable only. One without reads its
    provider's usual sources (the section's key or key file, the standard variables) when it
    calls the section's own endpoint; on an endpoint of its own it sends no key, so that a
    provider's key never travels to another server.
    """
    section = settings.providers.get(member.provider)
    base_url = member.base_url or section.base_url
    if member.api_key_env:
        auth = AuthSpec(
            member.provider, env_vars=(member.api_key_env,), required=section.auth_required
        )
    elif base_url == section.base_url:
        auth = AuthSpec.for_provider(
            member.provider,
            api_key=section.api_key,
            key_file=section.key_file,
            required=section.auth_required,
        )
    else:
        auth = AuthSpec(member.provider, required=False)
    return ChainMember(member.provider, member.model, base_url, auth)


@dataclass(frozen=True, slots=True)
class ChainConfig:
    """What a chain is: its mode, its members (the scope's own endpoint first) and its breaker
    settings. Equal configs are one chain within an application."""

    mode: str
    members: tuple[ChainMember, ...]
    failure_threshold: int = 3
    cooldown_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.mode not in (FAILOVER, ROUND_ROBIN):
            raise ValueError(f"unknown fallback mode {self.mode!r}")
        if not self.members:
            raise ValueError("a fallback chain needs at least one member")

    @classmethod
    def create(cls, spec: FallbackSettings, *, own: ChainMember, settings: Settings) -> ChainConfig:
        """The chain of a scope whose own endpoint is `own`, falling back as `spec` says."""
        members = (own, *(member_from_settings(member, settings) for member in spec.members))
        return cls(spec.mode, members, spec.failure_threshold, spec.cooldown_seconds)


class CircuitBreaker:
    """One member's health: closed, open for a cool-down after `threshold` failures in a row,
    then half-open (tried again); a success closes it, a failure opens it again."""

    __slots__ = ("cooldown", "failures", "open_until", "threshold")

    def __init__(self, threshold: int, cooldown: float) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0
        self.open_until: float | None = None

    def state(self, now: float) -> str:
        """`closed`, `open` (skipped) or `half-open` (its cool-down is over: tried again)."""
        if self.open_until is None:
            return "closed"
        return "open" if now < self.open_until else "half-open"

    def allows(self, now: float) -> bool:
        """Whether the member may be tried now."""
        return self.open_until is None or now >= self.open_until

    def failed(self, now: float) -> None:
        """A call failed: one failure more, and the circuit opens at the threshold."""
        self.failures += 1
        if self.failures >= self.threshold:
            self.open_until = now + self.cooldown

    def succeeded(self) -> None:
        """A call got through: the circuit closes and the count starts again."""
        self.failures = 0
        self.open_until = None


@dataclass(frozen=True, slots=True)
class Plan:
    """Whom one model call goes to: the member `wanted`, and the members to try in `order`
    (which starts elsewhere when the one wanted is resting)."""

    wanted: int
    order: tuple[int, ...]


class FallbackChain:
    """The state of one chain: a breaker per member and the round-robin position.

    Safe to share between the scopes (and threads) of one application.
    """

    __slots__ = ("_breakers", "_clock", "_lock", "_turns", "config")

    def __init__(self, config: ChainConfig, *, clock: Clock = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._turns = 0
        self._breakers = tuple(
            CircuitBreaker(config.failure_threshold, config.cooldown_seconds)
            for _ in config.members
        )

    @property
    def members(self) -> tuple[ChainMember, ...]:
        """The members, the scope's own endpoint first."""
        return self.config.members

    def plan(self, sticky: int | None = None) -> Plan:
        """The members to try for one model call, in order from the one wanted.

        The one wanted is `sticky` (the member that answered the turn's previous call), else
        the first member (`failover`) or the next in turn (`round-robin`, one step per turn).
        Members whose circuit is open are left out, unless every one of them is.
        """
        with self._lock:
            start = self._start(sticky)
            order = [(start + step) % len(self._breakers) for step in range(len(self._breakers))]
            now = self._clock()
            allowed = tuple(index for index in order if self._breakers[index].allows(now))
        return Plan(start, allowed or tuple(order))

    def _start(self, sticky: int | None) -> int:
        if sticky is not None:
            return sticky
        if self.config.mode == FAILOVER:
            return 0
        start = self._turns % len(self._breakers)
        self._turns += 1
        return start

    def failed(self, index: int) -> None:
        """Member `index` failed a call (after its own retries)."""
        with self._lock:
            self._breakers[index].failed(self._clock())

    def succeeded(self, index: int) -> None:
        """Member `index` answered."""
        with self._lock:
            self._breakers[index].succeeded()

    def state(self, index: int) -> str:
        """The circuit state of member `index`: `closed`, `open` or `half-open`."""
        with self._lock:
            return self._breakers[index].state(self._clock())


class FallbackChains:
    """An application's chains, one per distinct `ChainConfig`, made on first use."""

    __slots__ = ("_chains", "_clock", "_lock")

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._chains: dict[ChainConfig, FallbackChain] = {}

    def chain(self, config: ChainConfig) -> FallbackChain:
        """The application's chain for `config`."""
        with self._lock:
            found = self._chains.get(config)
            if found is None:
                found = self._chains[config] = FallbackChain(config, clock=self._clock)
            return found


class ScopeFallback:
    """One scope's view of its chain: the shared state, and adapters of the scope's own."""

    __slots__ = ("_adapters", "_create", "chain")

    def __init__(
        self, chain: FallbackChain, own: ModelProvider, create: Callable[[str], ModelProvider]
    ) -> None:
        self.chain = chain
        self._create = create
        self._adapters: dict[int, ModelProvider] = {0: own}

    def member(self, index: int) -> ChainMember:
        """Member `index` of the chain."""
        return self.chain.members[index]

    def adapter(self, index: int) -> ModelProvider:
        """The scope's adapter for member `index`, made on first use."""
        adapter = self._adapters.get(index)
        if adapter is None:
            adapter = self._adapters[index] = self._create(self.member(index).provider)
        return adapter
