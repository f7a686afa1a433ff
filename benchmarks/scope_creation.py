"""Cost of a fresh chat scope built by the containers, against the same objects built by hand.

Run: `uv run python benchmarks/scope_creation.py [--scopes 300] [--rounds 40]`.
The containers' way is the README's: `app.runtime.scopes().foreground()` and
`app.runtime.chat_session(context=...)` for every chat; measured twice, with the settings'
defaults (no request) and with the README's `ScopeRequest.create(provider=...)` made for each
chat. The hand-built way wires the same objects (the application's telemetry sink and tracing,
the workspace tools) without them. Prints the median microseconds per scope of each way and
the paired ratio of each containers' way to the hand-built one (target: <= 1.5x).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from chatscope.adapters.providers.demo import DemoProvider
from chatscope.adapters.tools.workspace import WorkspaceToolkit
from chatscope.config.settings import ExplicitSettings, Settings
from chatscope.containers import ApplicationContainer, RuntimeScopeContainer
from chatscope.services.chat.retry import RetryPolicy
from chatscope.services.chat.session import ChatSession
from chatscope.services.history.compression import HistoryCompressor
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.history.summariser import ModelSummariser
from chatscope.services.runtime.auth import AuthResolver, AuthSpec
from chatscope.services.runtime.context import (
    ProviderCatalog,
    create_agent_runtime_context,
    tool_context_of,
)
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.services.runtime.state import AgentRuntimeState, new_id
from chatscope.services.tools.registry import ToolPolicy, ToolRegistry


def container_scope(app: ApplicationContainer) -> Callable[[], ChatSession]:
    """One fresh scope and chat session the README's way: `scopes()` and `chat_session`."""
    runtime = app.runtime

    def build() -> ChatSession:
        context = runtime.scopes().foreground()
        chat: ChatSession = runtime.chat_session(context=context)
        return chat

    return build


def container_scope_with_request(app: ApplicationContainer) -> Callable[[], ChatSession]:
    """As `container_scope`, with a request naming the provider made for each chat."""
    runtime = app.runtime

    def build() -> ChatSession:
        request = ScopeRequest.create(provider="demo")
        context = runtime.scopes().foreground(request)
        chat: ChatSession = runtime.chat_session(context=context)
        return chat

    return build


def hand_built_scope(app: ApplicationContainer, root: Path) -> Callable[[], ChatSession]:
    """The same objects, wired by hand: the floor any container could reach."""
    settings: Settings = app.settings()
    toolkit, tool_policy = WorkspaceToolkit(root), ToolPolicy()
    sink, tracing = app.telemetry_sink(), app.tracing()
    catalog = ProviderCatalog(lambda name: DemoProvider(), ("demo",))
    resolver, policy = AuthResolver({}), RetryPolicy()
    section = settings.providers.demo
    summariser = ModelSummariser(
        auth_resolver=resolver, retry_policy=policy, provider_catalog=catalog, settings=settings
    )

    def build() -> ChatSession:
        auth = AuthSpec.for_provider("demo", required=section.auth_required)
        state = AgentRuntimeState(
            runtime_id=new_id(),
            session_id=new_id(),
            provider="demo",
            model=section.default_model,
            auth_type=auth.auth_type,
        )
        context = create_agent_runtime_context(
            state=state,
            history=InMemoryHistory(),
            telemetry_sink=sink,
            providers=catalog,
            tools=ToolRegistry(toolkit.tools(), caller=tool_context_of(state), policy=tool_policy),
            auth=auth,
            ephemerals=settings.ephemeral.with_overrides({}),
            tracing=tracing,
        )
        compressor = HistoryCompressor(summariser, settings=settings.compression)
        return ChatSession(
            context,
            auth_resolver=resolver,
            retry_policy=policy,
            max_turns=10,
            compressor=compressor,
        )

    return build


def container_instance_per_chat(app: ApplicationContainer) -> Callable[[], object]:
    """For scale: a whole `DeclarativeContainer` instance per chat (copies every provider)."""

    def build() -> object:
        runtime = RuntimeScopeContainer(
            settings=app.settings,
            history_backend=app.runtime.history_backend,
            max_turns=app.runtime.max_turns,
            provider_catalog=app.model_providers.catalog,
            telemetry_sink=app.telemetry_sink,
            scope_tools=app.tools.scope_tools,
            auth_resolver=app.auth_resolver,
            retry_policy=app.retry_policy,
            summariser=app.summariser,
            compression_settings=app.settings().compression,
        )
        return runtime.chat_session(context=runtime.scopes().foreground())

    return build


def us_per_scope(build: Callable[[], object], scopes: int) -> float:
    """Mean microseconds per built scope over `scopes` builds."""
    started = time.perf_counter()
    for _ in range(scopes):
        build()
    return (time.perf_counter() - started) / scopes * 1e6


def measure(ways: Mapping[str, Callable[[], object]], scopes: int, rounds: int) -> dict[str, float]:
    """Alternate the ways in short rounds; medians of each, and of the paired ratio.

    Adjacent rounds see the same machine state, so the per-round ratio cancels most of the
    drift of a shared virtual machine.
    """
    for build in ways.values():  # warm-up
        us_per_scope(build, 200)
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, build in ways.items():
            samples[name].append(us_per_scope(build, scopes))
    floor = samples["hand-built objects"]
    ratios = {
        name: statistics.median(ours / base for ours, base in zip(values, floor, strict=True))
        for name, values in samples.items()
        if name != "hand-built objects"
    }
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return medians | {f"{name} ratio": ratio for name, ratio in ratios.items()}


def main() -> None:
    """Measure and print the three figures and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scopes", type=int, default=300, help="scopes per round")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        settings = ExplicitSettings(workspace=Path(root))
        app = ApplicationContainer(settings=settings, environ={})
        ways = {
            "hand-built objects": hand_built_scope(app, Path(root)),
            "container factories": container_scope(app),
            "... with a request per chat": container_scope_with_request(app),
        }
        results = measure(ways, args.scopes, args.rounds)
        per_chat_container = us_per_scope(container_instance_per_chat(app), 50)
    for name in ways:
        print(f"{name:30s} {results[name]:8.1f} us per scope (median)")
    print(f"{'container instance per chat':30s} {per_chat_container:8.1f} us per scope (for scale)")
    for name in ways:
        if name != "hand-built objects":
            ratio = results[f"{name} ratio"]
            print(f"ratio {name} / hand-built: {ratio:.2f}x (median of paired rounds)")


if __name__ == "__main__":
    main()
