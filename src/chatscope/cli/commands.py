"""What the subcommands do, given an already built container and output streams."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from chatscope.adapters.pricing import PriceTable, cost_json
from chatscope.cli.display import TurnDisplay
from chatscope.cli.sessions import announce_session, check_session
from chatscope.config.presets import PRESETS, get_preset
from chatscope.config.settings import Settings
from chatscope.config.urls import check_http_url
from chatscope.containers.application import ApplicationContainer
from chatscope.errors import ConfigurationError, redact_secrets
from chatscope.services.chat import output_spec
from chatscope.services.events import AnsweredBy, CompletedTurn, FinishReason, TurnDone
from chatscope.services.frozen import thaw
from chatscope.services.runtime.context import AgentRuntimeContext
from chatscope.services.runtime.scopes import ScopeRequest

__all__ = ["run_chat", "show_config", "turn_as_json"]


def list_presets(out: TextIO) -> None:
    """One line per preset: name, endpoint, key variable and default model."""
    for preset in PRESETS.values():
        key = preset.key_variable or "(no key)"
        model = preset.default_model or "(name it with --model)"
        out.write(f"{preset.name:<11} {preset.base_url:<34} {key:<19} {model}\n")


def scope_request(options: dict[str, Any]) -> ScopeRequest:
    """The scope the `chat` flags ask for; `--preset` fills provider, endpoint, key and model."""
    fields: dict[str, Any] = {
        "provider": options["provider"],
        "model": options["model"],
        "base_url": checked_base_url(options["base_url"]),
        "system_prompt": options["system_prompt"],
        "session_id": options.get("session_id"),
        "approver": options.get("approver"),
    }
    if not options.get("preset"):
        return ScopeRequest(**fields)
    preset = get_preset(options["preset"])
    if fields["provider"] not in (None, preset.provider):
        raise ConfigurationError(
            f"--preset {preset.name} speaks the {preset.provider!r} wire format; "
            f"drop --provider {fields['provider']}"
        )
    fields["provider"] = preset.provider
    return ScopeRequest.from_preset(preset, **fields)


def checked_base_url(value: str | None) -> str | None:
    """`--base-url`, checked as the settings' endpoint URLs are: a URL that cannot be
    requested is a configuration error now, not a network failure retried for minutes."""
    try:
        return check_http_url(value)
    except ValueError as problem:
        shown = redact_secrets(repr(value))
        raise ConfigurationError(f"--base-url {shown} {problem}") from None


def show_config(settings: Settings, out: TextIO) -> None:
    """Print the effective settings as JSON; `SecretStr` values print as `**********`."""
    dumped = settings.model_dump(mode="json", by_alias=True)
    out.write(json.dumps(dumped, indent=2, sort_keys=True) + "\n")


async def run_chat(
    app: ApplicationContainer, options: dict[str, Any], out: TextIO, err: TextIO
) -> int:
    """Send one prompt in a fresh scope; stream it, or print one JSON object with `as_json`.

    With `session_id` the scope continues that saved session; a new chat starts a new one.
    With `output_schema` (a JSON-schema file) the answer must be JSON of that schema: the
    validated JSON is printed (under `output` with `as_json`) instead of the streamed text.
    """
    schema = read_output_schema(options.get("output_schema"))
    await check_session(app, options.get("session_id"))
    request = scope_request(options)
    context = app.runtime.scopes().foreground(request)
    chat = app.runtime.chat_session(context=context)
    display = TurnDisplay(out, err, quiet=options["as_json"], show_text=schema is None)
    turn: CompletedTurn | None = None
    async for event in chat.stream(options["prompt"], output_type=schema):
        if isinstance(event, TurnDone):
            turn = event.turn
        else:
            display.show(event)
    assert turn is not None  # noqa: S101 - a stream always ends with TurnDone
    if options["as_json"]:
        document = turn_as_json(turn, context, prices=app.price_table())
        if schema is None:
            document["text"] = display.text  # replies apart, as a stream shows them
        else:
            document["output"] = turn.output
        out.write(json.dumps(document, ensure_ascii=False) + "\n")
        return 0
    if schema is not None:
        out.write(json.dumps(turn.output, ensure_ascii=False, indent=2) + "\n")
    elif not display.text.endswith("\n"):
        out.write("\n")
    if turn.finish_reason is FinishReason.LENGTH:
        err.write(_OUTPUT_LIMIT_NOTICE)
    announce_session(context, err)
    return 0


_OUTPUT_LIMIT_NOTICE = (
    "[the answer stopped at the output token limit; raise it with "
    "CHATSCOPE_EPHEMERAL__MAX_OUTPUT_TOKENS]\n"
)


def read_output_schema(path: Path | None) -> dict[str, Any] | None:
    """The JSON schema in file `path` (None without one); a file that cannot be read, is not
    JSON or is not a valid JSON schema raises `ConfigurationError` naming it."""
    if path is None:
        return None
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read output schema {path}: {exc.strerror}") from None
    except ValueError as exc:  # also a file that is not UTF-8
        raise ConfigurationError(f"output schema {path} is not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise ConfigurationError(f"output schema {path} is not a JSON object")
    try:
        output_spec(schema)
    except ConfigurationError as exc:
        raise ConfigurationError(f"output schema {path}: {exc}") from None
    return schema


def turn_as_json(
    turn: CompletedTurn, context: AgentRuntimeContext, *, prices: PriceTable
) -> dict[str, Any]:
    """The `--json` document of one completed turn; `cost` is null when the model's price is
    unknown (see `chatscope.adapters.pricing`)."""
    state = context.state
    cost = prices.price(
        turn.usage, provider=state.provider, model=state.model, base_url=state.base_url
    )
    return {
        "text": turn.text,
        "tool_calls": [{"name": c.name, "arguments": thaw(c.arguments)} for c in turn.tool_calls],
        "usage": {
            "input_tokens": turn.usage.input_tokens,
            "output_tokens": turn.usage.output_tokens,
        },
        "cost": cost_json(cost),
        "provider": state.provider,
        "model": state.model,
        "runtime_id": state.runtime_id,
        "session_id": state.session_id,
        "finish_reason": str(turn.finish_reason),
        "answered_by": answered_by_json(turn.answered_by),
    }


def answered_by_json(answered: AnsweredBy | None) -> dict[str, Any] | None:
    """Which endpoint answered the turn: provider, model, and its position in the scope's
    fallback chain (`member`, null without a chain; 0 is the scope's own endpoint)."""
    if answered is None:
        return None
    return {"provider": answered.provider, "model": answered.model, "member": answered.member}
