"""Cost of a fresh chat scope built by the containers, against the same objects built by hand.

Run: `uv run python benchmarks/scope_creation.py [--scopes 2000] [--repeats 15]`.
Prints the median microseconds per scope of each way and their ratio (target: <= 2x).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from chatscope.adapters.demo import DemoProvider
from chatscope.adapters.workspace_tools import build_workspace_tools
from chatscope.config.settings import ExplicitSettings, Settings
from chatscope.containers import ApplicationContainer, RuntimeScopeContainer
from chatscope.services.auth import AuthResolver, AuthSpec
from chatscope.services.chat import ChatSession
from chatscope.services.history import InMemoryHistory
from chatscope.services.retry import RetryPolicy
from chatscope.services.runtime import (
    AgentRuntimeState,
    ProviderCatalog,
    create_agent_runtime_context,
    new_id,
)
from chatscope.services.telemetry import RecordingSink
from chatscope.services.tools import ToolRegistry


def container_scope(app: ApplicationContainer) -> Callable[[], ChatSession]:
    """One fresh scope and chat session through the declared `Factory` providers."""
    scopes = app.runtime.scopes()
    chat_session = app.runtime.chat_session

    def build() -> ChatSession:
        chat: ChatSession = chat_session(context=scopes.foreground())
        return chat

    return build


def hand_built_scope(settings: Settings, root: Path) -> Callable[[], ChatSession]:
    """The same objects, wired by hand: the floor any container could reach."""
    tools = build_workspace_tools(root)
    sink = RecordingSink()
    catalog = ProviderCatalog(lambda name: DemoProvider(), ("demo",))
    resolver, policy = AuthResolver({}), RetryPolicy()
    section = settings.providers.demo

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
            tools=ToolRegistry(tools),
            auth=auth,
            ephemerals=settings.ephemeral.with_overrides({}),
        )
        return ChatSession(context, auth_resolver=resolver, retry_policy=policy, max_turns=10)

    return build


def container_instance_per_chat(app: ApplicationContainer) -> Callable[[], object]:
    """For scale: a whole `DeclarativeContainer` instance per chat (copies every provider)."""

    def build() -> object:
        runtime = RuntimeScopeContainer(
            settings=app.settings,
            provider_catalog=app.adapters.provider_catalog,
            telemetry_sink=app.adapters.telemetry_sink,
            workspace_tools=app.adapters.workspace_tools,
            auth_resolver=app.auth_resolver,
            retry_policy=app.retry_policy,
        )
        return runtime.chat_session(context=runtime.scopes().foreground())

    return build


def median_us(build: Callable[[], object], scopes: int, repeats: int) -> float:
    """Median over `repeats` runs of the mean microseconds per built scope."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(scopes):
            build()
        samples.append((time.perf_counter() - started) / scopes * 1e6)
    return statistics.median(samples)


def main() -> None:
    """Measure and print the three figures and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scopes", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        settings = ExplicitSettings(workspace=Path(root))
        app = ApplicationContainer(settings=settings, environ={})
        ways = {
            "hand-built objects": hand_built_scope(settings, Path(root)),
            "container factories": container_scope(app),
            "container instance per chat": container_instance_per_chat(app),
        }
        for build in ways.values():  # warm-up
            median_us(build, 200, 1)
        results = {
            name: median_us(build, args.scopes, args.repeats) for name, build in ways.items()
        }
    for name, micros in results.items():
        print(f"{name:30s} {micros:8.1f} us per scope")
    ratio = results["container factories"] / results["hand-built objects"]
    print(f"ratio container factories / hand-built: {ratio:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
