"""The interactive chat: read a line, answer it or run its command, until Ctrl-D or `/exit`.

The prompt shows at once; the application starts behind it (`Startup`) and the conversation's
scope is opened as soon as it is up. Each answer, and each command, runs as a task of its own:
Ctrl-C (SIGINT while an answer streams; a key press at a y/N question) cancels that task, and
as `ChatSession` stores a turn only once it is complete, nothing of a stopped turn is saved.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import aclosing, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from prompt_toolkit.application.current import create_app_session, set_app
from prompt_toolkit.application.run_in_terminal import in_terminal
from rich.console import Console

from chatscope.cli.interactive.conversation import (
    ChatOptions,
    Conversation,
    Startup,
    Warn,
    start_application,
)
from chatscope.cli.interactive.handlers import run_command
from chatscope.cli.interactive.prompt import (
    HISTORY_FILE,
    InPlaceApprover,
    LazyFileHistory,
    PromptParts,
    YesNo,
    build_prompt,
)
from chatscope.cli.interactive.render import TurnView, footer_line, make_console, preload
from chatscope.cli.interactive.slash import (
    Empty,
    Invalid,
    Prompt,
    SlashCommand,
    help_text,
    parse_line,
)
from chatscope.errors import ChatscopeError, redact_secrets
from chatscope.services.events import TurnDone

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession

    from chatscope.services.events import CompletedTurn

__all__ = ["ChatOptions", "Repl", "run_terminal_chat"]

StartApplication = Callable[[Warn], Startup]

STOPPED = "■ stopped: nothing of this turn was saved"
BANNER = "chatscope · /help lists the commands · Ctrl-C stops an answer · Ctrl-D leaves"


class _StartError(Exception):
    """The application or the conversation could not be opened: the chat ends with its cause."""


class Repl:
    """One interactive session: its own prompt, application start, conversation and turns.

    `start` starts the application (given where to send warnings); `parts` are the prompt's
    input and output (the terminal unless a test gives a pipe).
    """

    def __init__(
        self, options: ChatOptions, start: StartApplication, console: Console, parts: PromptParts
    ) -> None:
        self._options = options
        self._parts = parts
        self._console = console
        self._notices: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._startup = start(self.notify)
        self._conversation: Conversation | None = None
        self._opening: asyncio.Task[Conversation] | None = None
        self._current: asyncio.Task[Any] | None = None
        self._view: TurnView | None = None
        self._last_turn: CompletedTurn | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._history = LazyFileHistory(self._history_path)
        self._prompt: PromptSession[str] = build_prompt(parts, self._history, self._toolbar)
        self._approver = InPlaceApprover(YesNo(parts), console, self._paused, self.interrupt)

    @property
    def conversation(self) -> Conversation | None:
        """The conversation, once opened."""
        return self._conversation

    async def run(self) -> int:
        """Chat until Ctrl-D or `/exit`; a failed start raises its error."""
        self._console.print(BANNER, style="dim", markup=False)
        try:
            # An app session of its own: prompt_toolkit finds "the running application" in it,
            # and two chats in one process must never find each other's.
            with (
                create_app_session(self._parts.input, self._parts.output),
                _interrupts(self.interrupt),
            ):
                await self._loop()
        except _StartError as failed:
            raise failed.__cause__ or failed from None
        finally:
            self._flush_notices()
            self._history.flush(5.0)
            await self._startup.close()
        return 0

    async def _loop(self) -> None:
        while True:
            text = await self._read()
            self._flush_notices()
            if text is None or not await self._handle(text):
                return

    def interrupt(self) -> None:
        """Ctrl-C: stop the running answer or command, if any."""
        if self._current is not None and not self._current.done():
            self._current.cancel()

    async def _read(self) -> str | None:
        """The next line; None at end of input (Ctrl-D). Ctrl-C clears the line."""
        while True:
            try:
                # Not prompt_toolkit's SIGINT handler: removing it would remove the chat's.
                return await self._prompt.prompt_async(
                    pre_run=self._open_in_background, handle_sigint=False
                )
            except KeyboardInterrupt:
                continue
            except EOFError:
                return None

    def _open_in_background(self) -> None:
        """Start the application and open the conversation, once the prompt is up."""
        if self._opening is None:
            self._opening = asyncio.get_running_loop().create_task(self._open())
            self._opening.add_done_callback(self._opened)

    async def _open(self) -> Conversation:
        # rich's Markdown is imported meanwhile, so the first answer does not wait for it.
        app, _ = await asyncio.gather(self._startup.app(), asyncio.to_thread(preload))
        conversation = await Conversation.open(app, self._options, self._approver)
        self._conversation = conversation
        turns = await conversation.turns() if self._options.session_id else 0
        if turns:
            self.notify(f"continuing session {conversation.state.session_id} ({turns} turns)")
        return conversation

    def _opened(self, task: asyncio.Task[Conversation]) -> None:
        """A failed start ends the prompt with its error; a good one updates the toolbar."""
        app = self._prompt.app
        failed = None if task.cancelled() else task.exception()
        if app.is_running:
            if failed is not None:
                app.exit(exception=failed)
            else:
                app.invalidate()

    async def _ready(self) -> Conversation:
        """The conversation, waiting for the start if it is still under way; a failed start
        raises `_StartError`."""
        self._open_in_background()
        assert self._opening is not None  # noqa: S101 - just started
        if not self._opening.done():
            with self._console.status("starting…"):
                await asyncio.wait({self._opening})
        error = self._opening.exception()
        if error is not None:
            raise _StartError from error
        assert self._conversation is not None  # noqa: S101 - opened (and maybe switched since)
        return self._conversation

    async def _handle(self, text: str) -> bool:
        """Answer or run one line; False when the chat should end."""
        match parse_line(text):
            case Prompt(text=prompt):
                await self._guarded(self._answer(prompt))
            case SlashCommand(name="exit"):
                return False
            case SlashCommand(name="help", args=args):  # even before the start is over
                self._console.print(help_text(args[0] if args else None), markup=False)
            case SlashCommand() as command:
                await self._guarded(self._command(command))
            case Invalid(message=message):
                self._console.print(message, style="yellow", markup=False)
            case Empty():
                pass
        return True

    async def _guarded(self, work: Awaitable[None]) -> None:
        """Run `work` as the current task: Ctrl-C cancels it, and a chatscope error is shown
        in one line rather than ending the chat."""
        task = asyncio.ensure_future(work)
        self._current = task
        try:
            await asyncio.wait({task})
        finally:
            self._current = None
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, ChatscopeError):
            self._console.print(f"error: {redact_secrets(str(error))}", style="red", markup=False)
        elif error is not None:
            raise error

    async def _command(self, command: SlashCommand) -> None:
        conversation = await self._ready()
        try:
            result = await run_command(command, conversation, self._console)
        except asyncio.CancelledError:
            self._console.print("stopped", style="yellow")
            raise
        if result.conversation is not None:
            self._conversation = result.conversation
            self._last_turn = None

    async def _answer(self, prompt: str) -> None:
        conversation = await self._ready()
        view = TurnView(self._console)
        self._view = view
        try:
            with view:
                async with aclosing(conversation.chat.stream(prompt)) as events:
                    async for event in events:
                        if isinstance(event, TurnDone):
                            self._last_turn = event.turn
                            view.finish(self._footer(conversation))
                        else:
                            view.show(event)
        except asyncio.CancelledError:
            view.stopped(STOPPED)
            raise
        except ChatscopeError as error:
            view.stopped(f"error: {redact_secrets(str(error))}")
        finally:
            self._view = None

    def _footer(self, conversation: Conversation) -> str:
        state = conversation.state
        return footer_line(state.provider, state.model, state.session_id, self._last_turn)

    def _toolbar(self) -> str:
        conversation = self._conversation
        if conversation is None:
            return "starting…"
        state = conversation.state
        return f"{footer_line(state.provider, state.model, state.session_id, None)} · /help"

    @contextmanager
    def _paused(self) -> Iterator[None]:
        """The running answer's live area off the screen (for a y/N question)."""
        view = self._view
        with view.paused() if view is not None else nullcontext():
            yield

    def _history_path(self, timeout: float) -> Path | None:
        data_dir = self._startup.data_dir(timeout)
        return None if data_dir is None else data_dir / HISTORY_FILE

    def notify(self, text: str) -> None:
        """Show `text` now, above the prompt if it is up (any thread may call this)."""
        self._notices.put(text)
        app = self._prompt.app
        if app.is_running and app.loop is not None:
            app.loop.call_soon_threadsafe(self._notify_above_prompt)

    def _notify_above_prompt(self) -> None:
        app = self._prompt.app
        if app.is_running:
            task = app.create_background_task(self._print_above_prompt())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _print_above_prompt(self) -> None:
        app = self._prompt.app
        with set_app(app):
            async with in_terminal():
                self._flush_notices()

    def _flush_notices(self) -> None:
        while True:
            try:
                text = self._notices.get_nowait()
            except queue.Empty:
                return
            self._console.print(text, style="yellow", markup=False)


@contextmanager
def _interrupts(handler: Callable[[], None]) -> Iterator[None]:
    """SIGINT calls `handler` (rather than ending the program) while the chat runs."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, handler)
    except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - no signals
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def run_terminal_chat(
    options: ChatOptions, stdout: TextIO, environ: Mapping[str, str] | None = None
) -> int:
    """The interactive chat on this terminal, its application started from the settings."""
    environ = dict(os.environ if environ is None else environ)

    def start(warn: Warn) -> Startup:
        return start_application(options, environ, warn)

    console = make_console(stdout, no_color=options.no_color)
    repl = Repl(options, start, console, PromptParts(no_color=options.no_color))
    return await repl.run()
