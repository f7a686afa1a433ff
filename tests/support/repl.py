"""Running the interactive chat's loop in the test's process: keys through a prompt_toolkit
pipe, the screen into a string, the application a test app with fake providers.

`ChatDriver` starts `Repl.run()` as a task; `type` sends keys (lines end with `\\r`, as Enter
sends them), `screen` is what was printed, `until` waits for text to appear, `finish` sends
Ctrl-D (unless the typed lines already end the chat) and returns the exit status.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.input.base import PipeInput
from prompt_toolkit.output import DummyOutput

from chatscope.cli.interactive.conversation import ChatOptions, Startup
from chatscope.cli.interactive.prompt import PromptParts
from chatscope.cli.interactive.render import make_console
from chatscope.cli.interactive.repl import Repl
from chatscope.containers.application import ApplicationContainer

__all__ = ["ChatDriver", "driven_chat", "started_app"]

CTRL_D = "\x04"


class ChatDriver:
    """One running loop and the pipe that feeds it."""

    def __init__(self, repl: Repl, pipe: PipeInput, screen: io.StringIO) -> None:
        self.repl = repl
        self._pipe = pipe
        self._screen = screen
        self.task: asyncio.Task[int] = asyncio.get_running_loop().create_task(repl.run())

    @property
    def screen(self) -> str:
        """Everything the chat printed so far."""
        return self._screen.getvalue()

    def type(self, keys: str) -> None:
        """Send `keys` (a line ends with `\\r`)."""
        self._pipe.send_text(keys)

    async def until(self, text: str | Callable[[], bool], seconds: float = 10.0) -> None:
        """Wait until `text` is on the screen (or the condition holds)."""
        check = text if callable(text) else lambda: text in self.screen
        async with asyncio.timeout(seconds):
            while not check():
                if self.task.done():
                    self.task.result()
                    break
                await asyncio.sleep(0.005)
        assert check(), f"{text!r} never appeared; the screen:\n{self.screen}"

    async def finish(self, seconds: float = 10.0) -> int:
        """Ctrl-D, then the loop's exit status."""
        if not self.task.done():
            self.type(CTRL_D)
        async with asyncio.timeout(seconds):
            return await self.task


@asynccontextmanager
async def driven_chat(
    app: ApplicationContainer, options: ChatOptions | None = None, *, width: int = 100
) -> AsyncIterator[ChatDriver]:
    """A loop on `app` (whose resources the caller manages), driven through a pipe."""
    screen = io.StringIO()
    console = make_console(screen, no_color=True, terminal=False, width=width)
    with create_pipe_input() as pipe:
        parts = PromptParts(input=pipe, output=DummyOutput())

        def start(warn: Callable[[str], None]) -> Startup:
            return Startup.of(app)

        driver = ChatDriver(Repl(options or ChatOptions(), start, console, parts), pipe, screen)
        try:
            yield driver
        finally:
            if not driver.task.done():
                driver.task.cancel()
                await asyncio.gather(driver.task, return_exceptions=True)


@asynccontextmanager
async def started_app(app: ApplicationContainer) -> AsyncIterator[ApplicationContainer]:
    """`app` with its resources up (a database backend migrated), shut down after."""
    result = app.init_resources()
    if result is not None:
        await result
    try:
        yield app
    finally:
        result = app.shutdown_resources()
        if result is not None:
            await result
