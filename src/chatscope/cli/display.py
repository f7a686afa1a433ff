"""How a streamed turn is shown to a person: the answer on stdout, the rest on stderr.

Text the model writes after tool calls is another reply; it starts after a blank line, so the
text before the calls and the text after them are never glued together.
"""

from __future__ import annotations

from typing import TextIO

from chatscope.services.events import (
    ChatEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallEvent,
    ToolResultEvent,
)

__all__ = ["TurnDisplay", "paragraph_break"]


def paragraph_break(shown: str) -> str:
    """What to write after `shown` so that the next text starts after a blank line."""
    if not shown or shown.endswith("\n\n"):
        return ""
    return "\n" if shown.endswith("\n") else "\n\n"


class TurnDisplay:
    """Shows one turn's events as they stream; `text` is the answer as it was shown.

    With `show_text` false the answer is only collected (a typed answer is printed whole at
    the end); with `quiet` nothing is written (`--json` prints one document instead).
    """

    __slots__ = ("_err", "_new_reply", "_out", "_parts", "_quiet", "_show_text")

    def __init__(
        self, out: TextIO, err: TextIO, *, quiet: bool = False, show_text: bool = True
    ) -> None:
        self._out, self._err = out, err
        self._quiet, self._show_text = quiet, show_text
        self._parts: list[str] = []
        self._new_reply = False

    @property
    def text(self) -> str:
        """Every reply's text, each after a blank line from the one before."""
        return "".join(self._parts)

    def show(self, event: ChatEvent) -> None:
        """Show one event (a `TurnDone` shows nothing)."""
        match event:
            case TextDelta(text=text) if text:
                self._add_text(text)
            case ThinkingDelta(text=text) if text:
                self._write(self._err, text)
            case ToolCallEvent(call=call):
                self._new_reply = True
                self._write(self._err, f"\n[tool] {call.name}({call.arguments_json()})\n")
            case ToolResultEvent(result=result):
                self._new_reply = True
                if result.is_error:
                    self._write(self._err, f"[tool error] {result.error}\n")
            case _:
                pass

    def _add_text(self, text: str) -> None:
        if self._new_reply:
            self._new_reply = False
            text = paragraph_break(self.text) + text
        self._parts.append(text)
        if self._show_text:
            self._write(self._out, text, flush=True)

    def _write(self, stream: TextIO, text: str, *, flush: bool = False) -> None:
        if self._quiet:
            return
        stream.write(text)
        if flush:
            stream.flush()
