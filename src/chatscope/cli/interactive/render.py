"""How a turn looks in the interactive chat: Markdown as it streams, tools folded, a footer.

The answer is rendered as Markdown (code blocks highlighted) while it arrives: the settled part
(up to the last paragraph break outside a code block, `stable_end`) is printed once, for good;
only the paragraph in progress lives in a small live area at the bottom, with a spinner while
the model has not answered yet. A tool call and its result take one line each; a subagent's
`task` shows when it starts and when it ends.

rich's Markdown (and the Markdown parser under it) is imported when the first answer is shown,
not before the first prompt: `preload` imports it in the background meanwhile.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.text import Text

from chatscope.errors import redact_secrets
from chatscope.services.events import (
    ChatEvent,
    CompletedTurn,
    TextDelta,
    ThinkingDelta,
    ToolCallEvent,
    ToolResultEvent,
)
from chatscope.services.messages import ToolCallBlock, ToolResultBlock

if TYPE_CHECKING:
    from rich.markdown import Markdown

__all__ = ["TurnView", "footer_line", "make_console", "preload", "shortened", "stable_end"]

CODE_THEME = "monokai"
TASK_TOOL = "task"
_LINE_LIMIT = 100
# A subagent's name or end reason, as shown on its one line.
_NAME_LIMIT = 32


def make_console(
    file: IO[str], *, no_color: bool, terminal: bool | None = None, width: int | None = None
) -> Console:
    """The console the chat writes to; `terminal` None asks the file whether it is one."""
    return Console(
        file=file,
        no_color=no_color or None,
        force_terminal=terminal,
        width=width,
        highlight=False,
        emoji=False,
    )


def stable_end(text: str) -> int:
    """Where the settled part of a streamed Markdown text ends: after its last blank line, or
    closing code fence, outside a code block; 0 when nothing is settled yet. Only complete
    lines count, so the result is a line start and grows as text is appended."""
    end = position = 0
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        position += len(line)
        if not line.endswith(("\n", "\r")):
            break
        marker = _fence_marker(line)
        if fence is None and marker is not None:
            fence = marker
        elif fence is not None:
            if marker is not None and marker.startswith(fence) and not line.strip()[len(marker) :]:
                fence = None
                end = position
        elif not line.strip():
            end = position
    return end


def _fence_marker(line: str) -> str | None:
    """The run of ``` or ~~~ a fence line starts with (at most three spaces in)."""
    body = line.lstrip(" ")
    if len(line) - len(body) > 3 or body[:3] not in ("```", "~~~"):
        return None
    char = body[0]
    return body[: len(body) - len(body.lstrip(char))]


def shortened(text: str, limit: int = _LINE_LIMIT) -> str:
    """`text` on one line, cut to `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class _LiveArea:
    """The bottom of the screen while a turn runs: the paragraph in progress (its last lines,
    when it is taller than the screen) and, while waiting, a spinner."""

    __slots__ = ("label", "spinner", "text", "waiting")

    def __init__(self) -> None:
        from rich.spinner import Spinner

        self.text = ""
        self.waiting = True
        self.label = "thinking…"
        self.spinner = Spinner("dots", style="cyan")

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.text:
            lines = console.render_lines(_markdown(self.text), options, pad=False)
            room = max(1, options.size.height - 3)
            for line in lines[-room:]:
                yield from line
                yield Segment.line()
        if self.waiting:
            self.spinner.text = Text(self.label, style="dim")
            yield self.spinner


def _markdown(text: str) -> Markdown:
    from rich.markdown import Markdown

    return Markdown(text, code_theme=CODE_THEME, hyperlinks=False)


def preload() -> None:
    """Import what rendering an answer needs (call it in a thread while the prompt waits)."""
    for module in ("rich.live", "rich.markdown", "rich.spinner", "rich.syntax"):
        importlib.import_module(module)


class TurnView:
    """Shows one turn's events on `console`; use it as a context manager around the turn."""

    __slots__ = ("_area", "_console", "_live", "_printed", "_text")

    def __init__(self, console: Console) -> None:
        from rich.live import Live

        self._console = console
        self._area = _LiveArea()
        self._live = Live(
            console=console,
            get_renderable=self._renderable,
            refresh_per_second=12,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._text = ""  # the reply streaming now, not yet printed for good
        self._printed = False  # whether anything of this turn's answer was printed

    @property
    def in_progress(self) -> str:
        """What the live area shows of the reply: streamed, not yet printed for good."""
        return self._area.text

    def _renderable(self) -> _LiveArea:
        return self._area

    def __enter__(self) -> TurnView:
        if self._console.is_terminal:
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_live()

    def _stop_live(self) -> None:
        if self._live.is_started:
            self._live.stop()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The live area taken off the screen (to ask a question), then put back."""
        self._commit(everything=True)
        running = self._live.is_started
        self._stop_live()
        try:
            yield
        finally:
            if running:
                self._live.start()

    def show(self, event: ChatEvent) -> None:
        """Show one streamed event (usage and `TurnDone` show nothing here)."""
        match event:
            case TextDelta(text=text) if text:
                self._add_text(text)
            case ThinkingDelta():
                self._wait("thinking…")
            case ToolCallEvent(call=call):
                self._commit(everything=True)
                self._print(_call_line(call))
                self._wait("running tools…")
            case ToolResultEvent(result=result):
                self._print(_result_line(result))
                self._wait("thinking…")
            case _:
                pass

    def _add_text(self, text: str) -> None:
        self._text += text
        self._area.text = self._text
        self._area.waiting = False
        if "\n" in text:  # only a completed line can settle anything
            self._commit(everything=False)

    def _wait(self, label: str) -> None:
        self._area.waiting = True
        self._area.label = label

    def _commit(self, *, everything: bool) -> None:
        """Print the settled part of the reply for good (all of it with `everything`)."""
        end = len(self._text) if everything else stable_end(self._text)
        settled, self._text = self._text[:end], self._text[end:]
        self._area.text = self._text
        if settled.strip():
            if self._printed:
                self._console.print()
            self._console.print(_markdown(settled))
            self._printed = True

    def _print(self, line: Text) -> None:
        self._console.print(line, overflow="ellipsis", no_wrap=True)

    def finish(self, footer: str) -> None:
        """The turn is done: the rest of the answer, then the footer line."""
        self._commit(everything=True)
        self._stop_live()
        self._console.print(Text(footer, style="dim"))

    def stopped(self, notice: str) -> None:
        """The turn was stopped or failed: what was shown stays, then `notice`."""
        self._commit(everything=True)
        self._stop_live()
        self._console.print(Text(notice, style="yellow"))


def _call_line(call: ToolCallBlock) -> Text:
    if call.name == TASK_TOOL:
        name = shortened(str(call.arguments.get("subagent_name", "?")), _NAME_LIMIT)
        goal = shortened(str(call.arguments.get("goal_prompt", "")), 70)
        return Text.assemble(("▶ subagent ", "magenta"), (name, "bold magenta"), f" {goal}")
    arguments = redact_secrets(call.arguments_json())
    return Text.assemble(("▸ ", "cyan"), (call.name, "bold cyan"), (f" {arguments}", "dim"))


def _result_line(result: ToolResultBlock) -> Text:
    if result.name == TASK_TOOL and result.result is not None:
        return _subagent_end(result.result)
    if result.error is not None:
        error = shortened(redact_secrets(result.error), 90)
        return Text.assemble(("  ✗ ", "red"), (result.name, "red"), f": {error}")
    output = result.result or ""
    lines = len(output.splitlines())
    summary = f"{lines} lines" if lines > 1 else shortened(redact_secrets(output), 80) or "done"
    return Text.assemble(("  ✓ ", "green"), (result.name, "dim"), (f": {summary}", "dim"))


def _subagent_end(document: str) -> Text:
    """`■ subagent NAME: GOAL · 2 calls · 120 in / 40 out tokens` from the task's result."""
    try:
        parsed: Any = json.loads(document)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return Text.assemble(("■ subagent", "magenta"), " ended")
    usage: dict[str, Any] = parsed["usage"] if isinstance(parsed.get("usage"), dict) else {}
    # Each value on one line, however the document is shaped: the result is one line.
    reason = shortened(str(parsed.get("terminate_reason", "?")), _NAME_LIMIT)
    return Text.assemble(
        ("■ subagent ", "magenta"),
        (shortened(str(parsed.get("subagent_name", "?")), _NAME_LIMIT), "bold magenta"),
        (f": {reason}", "green" if reason == "GOAL" else "yellow"),
        (
            f" · {_count(parsed.get('model_calls'))} calls · "
            f"{_count(usage.get('input_tokens', 0))} in / "
            f"{_count(usage.get('output_tokens', 0))} out tokens",
            "dim",
        ),
    )


def _count(value: object) -> str:
    """A count from a subagent's result document, or `?` for anything but a whole number."""
    return str(value) if type(value) is int else "?"


def footer_line(provider: str, model: str, session_id: str, turn: CompletedTurn | None) -> str:
    """`demo · demo-model · session 3f2a9c1e · 12 in / 34 out tokens`."""
    parts = [provider, model, f"session {session_id[:8]}"]
    if turn is not None:
        parts.append(f"{turn.usage.input_tokens} in / {turn.usage.output_tokens} out tokens")
    return " · ".join(parts)
