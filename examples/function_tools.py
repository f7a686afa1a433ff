"""A chat with a tool of the application's own: a typed Python function, for one scope.

Run offline (a scripted model stands in and calls the tool):

    uv run python examples/function_tools.py

or against your configured provider (`CHATSCOPE_PROVIDER`, its key in the environment):

    uv run python examples/function_tools.py --live "What should I wear in Oslo?"
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from chatscope import ApplicationContainer, ScopeRequest, ToolContext, load_settings, tool
from chatscope.testing import ScriptedProvider, ScriptedReply, build_test_app


class Forecast(BaseModel):
    """What the weather service answers."""

    city: str
    temperature: float
    units: Literal["c", "f"]
    summary: str


@tool
async def weather(
    ctx: ToolContext,
    city: Annotated[str, Field(description="a city name, e.g. 'Oslo'")],
    units: Literal["c", "f"] = "c",
) -> Forecast:
    """Today's weather in a city.

    Args:
        units: c for Celsius, f for Fahrenheit.
    """
    # `ctx` says which chat is calling (session, runtime, model), never a key.
    celsius = 4.0 if city.lower() == "oslo" else 21.0
    temperature = celsius if units == "c" else celsius * 9 / 5 + 32
    return Forecast(city=city, temperature=temperature, units=units, summary="clear")


def offline_app(workspace: Path) -> ApplicationContainer:
    """An application whose model is scripted: it calls `weather`, then answers."""
    model = ScriptedProvider(
        [
            ScriptedReply(tool_calls=[("weather", {"city": "Oslo"})]),
            ScriptedReply(text="It is 4 °C and clear in Oslo: take a warm coat."),
        ]
    )
    return build_test_app(model, workspace=workspace)


async def main() -> None:
    """Build the application, give one chat the `weather` tool, and ask."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", action="store_true", help="use the configured provider")
    parser.add_argument("prompt", nargs="?", default="What should I wear in Oslo today?")
    args = parser.parse_args()
    if args.live:
        app = ApplicationContainer(settings=load_settings(), environ=dict(os.environ))
    else:
        app = offline_app(Path.cwd())
    await app.init_resources()  # type: ignore[misc]
    try:
        print(
            "the model is offered:", weather.declaration.name, "-", weather.declaration.description
        )
        context = app.runtime.scopes().foreground(ScopeRequest.create(tools=[weather]))
        chat = app.runtime.chat_session(context=context)
        turn = await chat.send(args.prompt)
        for result in turn.tool_results:
            print(f"[{result.name}] {result.result or result.error}")
        print(turn.text)
    finally:
        await app.shutdown_resources()  # type: ignore[misc]


if __name__ == "__main__":
    asyncio.run(main())
