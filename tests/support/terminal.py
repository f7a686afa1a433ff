"""Driving `python -m chatscope` in a pseudo-terminal, as a person at a keyboard would.

`Terminal` starts the program on a pty of a fixed size, answers the terminal queries
prompt_toolkit sends (the cursor position report), and collects everything the program writes;
`expect` waits until some text has appeared (escape sequences removed), `type` sends keys.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["Terminal", "plain"]

_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, modes
    r"|\x1b\][^\x07\x1b]*(\x07|\x1b\\)"  # OSC: titles, links
    r"|\x1b[=>()][0-9A-B]?"  # keypad and character-set switches
)
_CURSOR_QUERY = b"\x1b[6n"
CTRL_C = "\x03"
CTRL_D = "\x04"
ENTER = "\r"


def plain(text: str) -> str:
    """`text` without terminal escape sequences and carriage returns."""
    return _ESCAPES.sub("", text).replace("\r", "")


# Run in the child, a session leader (`start_new_session`): make the pty its controlling
# terminal, so that Ctrl-C sends it SIGINT as a terminal does, then become the program. (Not a
# `preexec_fn`: that may deadlock in a test process with threads.)
_ON_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


class Terminal:
    """A program on a pty: `rows` x `columns`, environment `env`, working directory `cwd`."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str],
        rows: int = 40,
        columns: int = 100,
    ) -> None:
        self._main, secondary = os.openpty()
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-c", _ON_TERMINAL, "-m", "chatscope", *args],
            cwd=cwd,
            env={**env, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(rows)},
            stdin=secondary,
            stdout=secondary,
            stderr=secondary,
            start_new_session=True,
            close_fds=True,
        )
        os.close(secondary)
        self.started = time.perf_counter()
        self.raw = b""

    def __enter__(self) -> Terminal:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def output(self) -> str:
        """Everything written so far, without escape sequences."""
        return plain(self.raw.decode("utf-8", errors="replace"))

    def type(self, keys: str) -> None:
        """Send `keys` as if typed."""
        os.write(self._main, keys.encode())

    def interrupt(self) -> None:
        """Ctrl-C, as the terminal sends it."""
        self.type(CTRL_C)

    def expect(self, text: str | re.Pattern[str], *, timeout: float = 20.0, since: int = 0) -> int:
        """Wait until `text` appears in the output after position `since` (of `output`);
        returns the position after it. Fails with the output so far."""
        deadline = time.monotonic() + timeout
        while True:
            found = self._find(text, since)
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (not self.read(min(remaining, 0.2)) and self._exited()):
                found = self._find(text, since)
                if found is not None:
                    return found
                raise AssertionError(f"{text!r} did not appear; the screen so far:\n{self.output}")

    def wait_raw(self, marker: bytes, *, timeout: float = 20.0) -> float:
        """Wait for raw bytes `marker`; returns the seconds since the program started."""
        deadline = time.monotonic() + timeout
        while marker not in self.raw:
            if time.monotonic() > deadline or (not self.read(0.05) and self._exited()):
                raise AssertionError(f"{marker!r} was never written:\n{self.output}")
        return time.perf_counter() - self.started

    def _find(self, text: str | re.Pattern[str], since: int) -> int | None:
        output = self.output
        if isinstance(text, str):
            index = output.find(text, since)
            return None if index < 0 else index + len(text)
        match = text.search(output, since)
        return None if match is None else match.end()

    def read(self, timeout: float) -> bool:
        """Read what is waiting (up to `timeout` seconds); False when nothing came."""
        ready, _, _ = select.select([self._main], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self._main, 65536)
        except OSError:  # the program closed the terminal
            return False
        if not data:
            return False
        if _CURSOR_QUERY in data:
            os.write(self._main, b"\x1b[1;1R" * data.count(_CURSOR_QUERY))
        self.raw += data
        return True

    def _exited(self) -> bool:
        return self.process.poll() is not None

    def wait(self, timeout: float = 20.0) -> int:
        """The exit status, once the program has ended (reading what it still writes)."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"the program did not end; the screen:\n{self.output}")
            self.read(0.05)
        while self.read(0.05):
            pass
        return self.process.returncode

    def close(self) -> None:
        """End the program if it still runs, and close the terminal."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        os.close(self._main)
