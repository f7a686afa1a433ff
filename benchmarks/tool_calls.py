"""What application tools cost: a scope holding 20 function tools, one call, two slow calls.

Run: `uv run python benchmarks/tool_calls.py [--rounds 15]`. Prints three figures, each a
median over alternating rounds measured in the same run:

- scope creation with 20 function tools (given with the request, and declared in the
  containers) against the same scope with none (goal: at most 1.2x);
- one function-tool call through the scope's registry (argument validation, timeout, result
  rendering) against awaiting the function itself (goal: at most 50 us more);
- a reply asking for two 0.5 s tools, end to end through a chat session (goal: under 0.6 s).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

from dependency_injector import providers

from chatscope.services.messages import ToolCallBlock
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.services.tools.function import tool
from chatscope.services.tools.ports import Tool, ToolContext
from chatscope.services.tools.registry import ToolRegistry
from chatscope.testing import ScriptedProvider, ScriptedReply, build_test_app

CALLER = ToolContext(session_id="s", runtime_id="r", provider="demo", model="m")


def twenty_tools() -> tuple[Tool, ...]:
    """Twenty distinct function tools with a few typed parameters each."""

    def make(index: int) -> Tool:
        async def lookup(city: str, days: int = 3, units: Literal["c", "f"] = "c") -> str:
            """Look something up.

            Args:
                city: where
                days: how many days
                units: which units
            """
            return city

        return tool(name=f"lookup_{index}")(lookup)

    return tuple(make(index) for index in range(20))


def per_scope_us(build: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        build()
    return (time.perf_counter() - started) / count * 1e6


def scope_figures(root: Path, rounds: int) -> dict[str, float]:
    """Medians (us per scope) of scopes with none, 20 request tools, 20 declared tools."""
    tools = twenty_tools()
    app = build_test_app(workspace=root)
    declared = build_test_app(workspace=root)
    declared.tools.application_tools.override(
        providers.List(*(providers.Object(each) for each in tools))
    )
    none_request, with_tools = ScopeRequest(), ScopeRequest.create(tools=tools)
    scopes, declared_scopes = app.runtime.scopes(), declared.runtime.scopes()
    ways: dict[str, Callable[[], object]] = {
        "no function tools": lambda: scopes.foreground(none_request),
        "20 tools with the request": lambda: scopes.foreground(with_tools),
        "20 tools declared in containers": lambda: declared_scopes.foreground(none_request),
    }
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for build in ways.values():
        per_scope_us(build, 300)
    for _ in range(rounds):
        for name, build in ways.items():
            samples[name].append(per_scope_us(build, 500))
    return {name: statistics.median(values) for name, values in samples.items()}


async def call_figures(rounds: int) -> tuple[float, float]:
    """Median us per call: the function awaited directly, and through the registry."""

    async def forecast(city: str, days: int = 3, units: Literal["c", "f"] = "c") -> str:
        return city

    registry = ToolRegistry((tool(forecast),), caller=CALLER)
    call = ToolCallBlock.create("c1", "forecast", {"city": "Oslo", "days": 2, "units": "f"})

    async def direct() -> object:
        return await forecast(city="Oslo", days=2, units="f")

    async def through_registry() -> object:
        return await registry.run(call)

    async def timed(run: Callable[[], Awaitable[object]], count: int) -> float:
        started = time.perf_counter()
        for _ in range(count):
            await run()
        return (time.perf_counter() - started) / count * 1e6

    await timed(direct, 2000)
    await timed(through_registry, 2000)
    plain, ours = [], []
    for _ in range(rounds):
        plain.append(await timed(direct, 5000))
        ours.append(await timed(through_registry, 5000))
    return statistics.median(plain), statistics.median(ours)


async def two_slow_tools(root: Path) -> float:
    """Seconds for one turn whose reply asks for two 0.5 s tools (then answers)."""

    @tool
    async def slow(tag: str) -> str:
        """Wait half a second."""
        await asyncio.sleep(0.5)
        return tag

    calls = [("slow", {"tag": "a"}), ("slow", {"tag": "b"})]
    provider = ScriptedProvider([ScriptedReply(tool_calls=calls), ScriptedReply("done")])
    app = build_test_app(provider, workspace=root)
    await app.init_resources()  # type: ignore[misc]  # logging at the settings' level
    context = app.runtime.scopes().foreground(ScopeRequest.create(tools=[slow]))
    chat = app.runtime.chat_session(context=context)
    started = time.perf_counter()
    await chat.send("go")
    elapsed = time.perf_counter() - started
    await app.shutdown_resources()  # type: ignore[misc]
    return elapsed


def main() -> None:
    """Measure and print the three figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        scopes = scope_figures(root, args.rounds)
        plain, ours = asyncio.run(call_figures(args.rounds))
        slow = asyncio.run(two_slow_tools(root))
    base = scopes["no function tools"]
    for name, figure in scopes.items():
        print(f"scope, {name:32s} {figure:7.1f} us  ({figure / base:.2f}x no tools)")
    print(f"call, awaiting the function itself     {plain:7.2f} us")
    print(f"call, through the scope's registry     {ours:7.2f} us  (+{ours - plain:.1f} us)")
    print(f"two 0.5 s tools in one reply           {slow:7.3f} s")


if __name__ == "__main__":
    main()
