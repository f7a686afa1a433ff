"""Tools for every chat of an application, declared in its containers: a class-based tool with
its own dependency, built once per chat scope, and replaced by a fake in tests.

    uv run python examples/container_tools.py

Each chat gets its own `ShoppingListTool` (its own list); the `Catalog` it depends on is one
object for the whole application. Two chats run at once and never see each other's items.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dependency_injector import providers

from chatscope import ApplicationContainer, ChatSession, ToolContext, ToolDeclaration, ToolError
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.testing import FunctionProvider, ScriptedReply, build_test_app


class Catalog:
    """An application-wide dependency (a price list; in real life a client or a pool)."""

    def __init__(self, prices: Mapping[str, float]) -> None:
        self._prices = dict(prices)

    def price(self, item: str) -> float:
        if item not in self._prices:
            raise ToolError(f"no such item {item!r}; we sell: {', '.join(self._prices)}")
        return self._prices[item]


class ShoppingListTool:
    """`add_item`: a stateful tool; every chat scope gets a fresh one from its Factory."""

    declaration = ToolDeclaration.create(
        name="add_item",
        description="Add an item to this chat's shopping list; returns the list and its total.",
        parameters={
            "type": "object",
            "properties": {"item": {"type": "string"}},
            "required": ["item"],
        },
    )

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._items: list[str] = []

    async def run(self, arguments: Mapping[str, Any], context: ToolContext | None = None) -> str:
        item = str(arguments["item"])
        price = self._catalog.price(item)
        self._items.append(item)
        total = sum(self._catalog.price(each) for each in self._items)
        return json.dumps({"items": self._items, "added": price, "total": total})


def declare_tools(app: ApplicationContainer) -> None:
    """Every scope of `app` gets a fresh `ShoppingListTool` over the one `Catalog`."""
    catalog = providers.Singleton(Catalog, prices={"apples": 2.5, "bread": 3.0, "tea": 4.25})
    app.tools.application_tools.override(
        providers.List(providers.Factory(ShoppingListTool, catalog=catalog))
    )


def scripted_model() -> FunctionProvider:
    """A stand-in model: adds the items named in the prompt, then reads out the tool's answer."""

    def answer(invocation: ModelInvocation) -> ScriptedReply:
        last = invocation.history[-1]
        if last.tool_results:
            result = last.tool_results[-1]
            return ScriptedReply(text=result.result or result.error or "")
        items = last.text.split()
        return ScriptedReply(tool_calls=[("add_item", {"item": item}) for item in items])

    return FunctionProvider(answer)


async def main() -> None:
    """Two chats at once, each with its own list."""
    app = build_test_app(scripted_model(), workspace=Path.cwd())
    declare_tools(app)
    await app.init_resources()  # type: ignore[misc]
    try:

        async def shop(prompt: str) -> str:
            context = app.runtime.scopes().foreground()
            chat: ChatSession = app.runtime.chat_session(context=context)
            return (await chat.send(prompt)).text

        first, second = await asyncio.gather(shop("apples bread"), shop("tea"))
        print("chat 1:", first)
        print("chat 2:", second)
    finally:
        await app.shutdown_resources()  # type: ignore[misc]


if __name__ == "__main__":
    asyncio.run(main())
