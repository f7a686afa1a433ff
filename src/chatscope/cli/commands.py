"""What the subcommands do, given an already built container and output streams."""

from __future__ import annotations

import json
from typing import Any, TextIO

from chatscope.config.settings import Settings
from chatscope.containers.application import ApplicationContainer
from chatscope.services.events import (
    ChatEvent,
    CompletedTurn,
    TextDelta,
    ThinkingDelta,
    ToolCallEvent,
    ToolResultEvent,
    TurnDone,
)
from chatscope.services.frozen import thaw
from chatscope.services.runtime import AgentRuntimeContext
from chatscope.services.scopes import ScopeRequest

__all__ = ["run_chat", "show_config", "turn_as_json"]


def show_config(settings: Settings, out: TextIO) -> None:
    """Print the effective settings as JSON; `SecretStr` values print as `**********`."""
    dumped = settings.model_dump(mode="json", by_alias=True)
    out.write(json.dumps(dumped, indent=2, sort_keys=True) + "\n")


async def run_chat(
    app: ApplicationContainer, options: dict[str, Any], out: TextIO, err: TextIO
) -> int:
    """Send one prompt in a fresh scope; stream it, or print one JSON object with `as_json`."""
    request = ScopeRequest(
        provider=options["provider"],
        model=options["model"],
        base_url=options["base_url"],
        system_prompt=options["system_prompt"],
    )
    context = app.runtime.scopes().foreground(request)
    chat = app.runtime.chat_session(context=context)
    turn: CompletedTurn | None = None
    async for event in chat.stream(options["prompt"]):
        if isinstance(event, TurnDone):
            turn = event.turn
        elif not options["as_json"]:
            _show(event, out, err)
    assert turn is not None  # noqa: S101 - a stream always ends with TurnDone
    if options["as_json"]:
        out.write(json.dumps(turn_as_json(turn, context), ensure_ascii=False) + "\n")
    elif not turn.text.endswith("\n"):
        out.write("\n")
    return 0


def _show(event: ChatEvent, out: TextIO, err: TextIO) -> None:
    match event:
        case TextDelta(text=text):
            out.write(text)
            out.flush()
        case ThinkingDelta(text=text) if text:
            err.write(text)
        case ToolCallEvent(call=call):
            err.write(f"\n[tool] {call.name}({call.arguments_json()})\n")
        case ToolResultEvent(result=result) if result.is_error:
            err.write(f"[tool error] {result.error}\n")
        case _:
            pass


def turn_as_json(turn: CompletedTurn, context: AgentRuntimeContext) -> dict[str, Any]:
    """The `--json` document of one completed turn."""
    state = context.state
    return {
        "text": turn.text,
        "tool_calls": [{"name": c.name, "arguments": thaw(c.arguments)} for c in turn.tool_calls],
        "usage": {
            "input_tokens": turn.usage.input_tokens,
            "output_tokens": turn.usage.output_tokens,
        },
        "provider": state.provider,
        "model": state.model,
        "runtime_id": state.runtime_id,
        "session_id": state.session_id,
        "finish_reason": str(turn.finish_reason),
    }
