"""The prompt of the interactive chat (prompt_toolkit): line editing, multi-line entry, history
kept across runs, a bottom toolbar, and the y/N question of a tool that needs approval.

Enter sends; Alt-Enter (Esc Enter) or a line ending in a backslash starts a new line.
The history file is `<data_dir>/prompt-history` (created private to the user); its place is known
once the settings are read, which happens while the first prompt already shows, so the history
waits for it (`LazyFileHistory`).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory, History, ThreadedHistory
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.output import ColorDepth, Output
from rich.console import Console
from rich.text import Text

from chatscope.cli.interactive.render import shortened
from chatscope.services.frozen import thaw
from chatscope.services.tools.ports import ApprovalRequest

__all__ = [
    "HISTORY_FILE",
    "InPlaceApprover",
    "LazyFileHistory",
    "PromptParts",
    "YesNo",
    "build_prompt",
]

HISTORY_FILE = "prompt-history"
PROMPT = FormattedText([("ansicyan bold", "> ")])
CONTINUATION = FormattedText([("ansibrightblack", "… ")])

Locate = Callable[[float], Path | None]


class LazyFileHistory(History):
    """A `FileHistory` whose file is known later: `locate(timeout)` waits up to `timeout`
    seconds for it, None meaning no file (not yet, or not at all).

    Loading runs in prompt_toolkit's history thread and may wait; storing runs on the event
    loop and never waits: a line entered before the file is known is kept, and written with
    the next one (or by `flush`).
    """

    def __init__(self, locate: Locate) -> None:
        super().__init__()
        self._locate = locate
        self._pending: list[str] = []

    def _file(self, timeout: float) -> FileHistory | None:
        path = self._locate(timeout)
        if path is None:
            return None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():  # prompts may hold anything: only the user may read them
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError:
            return None
        return FileHistory(path)

    def load_history_strings(self) -> Iterable[str]:
        history = self._file(30.0)
        return [] if history is None else history.load_history_strings()

    def store_string(self, string: str) -> None:
        self._pending.append(string)
        self.flush(0.0)

    def flush(self, timeout: float) -> None:
        """Write the lines kept so far, waiting up to `timeout` seconds for the file."""
        history = self._file(timeout) if self._pending else None
        if history is None:
            return
        pending, self._pending = self._pending, []
        try:
            for string in pending:
                history.store_string(string)
        except OSError:  # a read-only data directory costs the history, not the chat
            return


def _bindings() -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    # Ctrl-J too: an Enter typed while an answer streams reaches the prompt as a line feed.
    @bindings.add("enter")
    @bindings.add("c-j")
    def _send(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if buffer.document.is_cursor_at_the_end and buffer.text.endswith("\\"):
            buffer.delete_before_cursor(1)
            buffer.insert_text("\n")
        else:
            buffer.validate_and_handle()

    return bindings


class PromptParts:
    """Where the prompt reads and draws: the terminal, or a pipe and a dummy output in tests."""

    __slots__ = ("color_depth", "input", "output")

    def __init__(
        self, *, input: Input | None = None, output: Output | None = None, no_color: bool = False
    ) -> None:
        self.input = input
        self.output = output
        self.color_depth = ColorDepth.DEPTH_1_BIT if no_color else None


def build_prompt(
    parts: PromptParts, history: History, toolbar: Callable[[], str]
) -> PromptSession[str]:
    """The chat's prompt session."""
    return PromptSession(
        PROMPT,
        multiline=True,
        prompt_continuation=CONTINUATION,
        key_bindings=_bindings(),
        history=ThreadedHistory(history),
        bottom_toolbar=lambda: FormattedText([("", f" {toolbar()} ")]),
        enable_history_search=False,
        color_depth=parts.color_depth,
        input=parts.input,
        output=parts.output,
    )


class YesNo:
    """Asks a y/N question on the prompt's terminal; end of input (Ctrl-D) means no."""

    __slots__ = ("_session",)

    def __init__(self, parts: PromptParts) -> None:
        self._session: PromptSession[str] = PromptSession(
            color_depth=parts.color_depth, input=parts.input, output=parts.output
        )

    async def __call__(self, question: str) -> bool:
        """The answer; Ctrl-C raises `KeyboardInterrupt`."""
        try:
            answer = await self._session.prompt_async(question, handle_sigint=False)
        except EOFError:
            return False
        return answer.strip().lower() in {"y", "yes"}


class InPlaceApprover:
    """Asks y/N in place, with the answer's live area paused, before a tool that needs approval
    runs; one question at a time. Ctrl-C at the question stops the turn (`interrupt`), so the
    call does not run and nothing of the turn is stored."""

    __slots__ = ("_ask", "_console", "_interrupt", "_lock", "_pause")

    def __init__(
        self,
        ask: YesNo,
        console: Console,
        pause: Callable[[], AbstractContextManager[None]],
        interrupt: Callable[[], None],
    ) -> None:
        self._ask = ask
        self._console = console
        self._pause = pause
        self._interrupt = interrupt
        self._lock = asyncio.Lock()

    async def __call__(self, request: ApprovalRequest) -> bool:
        """Whether the person allows this call."""
        arguments = json.dumps(thaw(request.arguments), ensure_ascii=False)
        who = request.context.subagent_name
        asker = f" (subagent {who})" if who else ""
        async with self._lock:
            with self._pause():
                self._console.print(
                    Text.assemble(
                        ("? ", "bold yellow"),
                        (request.tool, "bold"),
                        f"{asker} {shortened(arguments, 300)}",
                    )
                )
                try:
                    return await self._ask("  Run it? [y/N] ")
                except KeyboardInterrupt:
                    # Stop the turn (every call of it), from here too: the rest of the turn
                    # may not wait for anything before it would be stored.
                    self._interrupt()
                    raise asyncio.CancelledError from None
