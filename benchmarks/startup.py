"""Start-up of the command line: `chatscope --help`, and the interactive prompt in a pty, against
a bare `python -c pass` measured in the same rounds.

Run: `uv run python benchmarks/startup.py [--rounds 15]`.
Prints the median wall milliseconds, from process start, of: `python -c pass`; `python -m
chatscope --help` (to exit); the interactive chat's prompt on a pseudo-terminal (to the prompt
drawn, ready for keys); and, for information, to the conversation being ready behind it (the
settings read, the containers built, the SQLite session store migrated, the first scope open).
Targets: `--help` within 150 ms of bare Python, the prompt within 300 ms.

Every child runs with bytecode writing allowed and after one unmeasured warm-up run, as a
user's Python after its first run (an environment with PYTHONDONTWRITEBYTECODE would otherwise
compile every newly installed module on each start); its data directory is a temporary one.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

_OWN_PREFIXES = ("CHATSCOPE_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_", "NO_COLOR")
PROMPT = b"> "
READY = b"chatscope-demo"  # the toolbar names the model once the conversation is open
CURSOR_QUERY = b"\x1b[6n"


def child_env(data_dir: Path) -> dict[str, str]:
    """The inherited environment without chatscope's and providers' variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env | {"CHATSCOPE_DATA_DIR": str(data_dir), "TERM": "xterm-256color"}


def run_to_exit(args: list[str], env: dict[str, str]) -> float:
    """Milliseconds from start to exit of `python ARGS`, output discarded."""
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, *args], env=env, stdout=subprocess.DEVNULL, check=True
    )
    return (time.perf_counter() - started) * 1000


def _take_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def prompt_times(env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Milliseconds from start to the prompt, and to the conversation being ready, of
    `python -m chatscope` on a pty; it is then left with Ctrl-D."""
    main, secondary = os.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "chatscope"],
        env=env,
        cwd=cwd,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,
        preexec_fn=_take_terminal,
    )
    os.close(secondary)
    try:
        seen = bytearray()
        prompt = _wait_for(main, seen, PROMPT, started)
        ready = _wait_for(main, seen, READY, started)
        os.write(main, b"\x04")
        child.wait(30)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        os.close(main)
    return prompt, ready


def _wait_for(terminal: int, seen: bytearray, marker: bytes, started: float) -> float:
    """Read until `marker` is in `seen`, answering cursor position queries; milliseconds."""
    deadline = time.monotonic() + 30
    while marker not in seen:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{marker!r} never appeared: {bytes(seen)[-400:]!r}")
        ready, _, _ = select.select([terminal], [], [], 0.5)
        if ready:
            data = os.read(terminal, 65536)
            if CURSOR_QUERY in data:
                os.write(terminal, b"\x1b[1;1R")
            seen += data
    return (time.perf_counter() - started) * 1000


def main() -> None:
    """Warm up, then measure every command once per round; print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        env = child_env(root / "data")
        bare = ["-c", "pass"]
        help_args = ["-m", "chatscope", "--help"]
        run_to_exit(bare, env)
        run_to_exit(help_args, env)
        prompt_times(env, root)
        samples: dict[str, list[float]] = {"bare": [], "help": [], "prompt": [], "ready": []}
        for _ in range(rounds):
            samples["bare"].append(run_to_exit(bare, env))
            samples["help"].append(run_to_exit(help_args, env))
            prompt, ready = prompt_times(env, root)
            samples["prompt"].append(prompt)
            samples["ready"].append(ready)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    bare_ms = medians["bare"]
    print(f"start-up, median of {rounds} rounds (ms from process start):")
    print(f"  python -c pass                 {bare_ms:7.1f}")
    for name, label, target in (
        ("help", "chatscope --help", 150),
        ("prompt", "interactive prompt (pty)", 300),
    ):
        extra = medians[name] - bare_ms
        print(f"  {label:<30} {medians[name]:7.1f}  (+{extra:.1f}; target +{target})")
    ready = medians["ready"]
    print(f"  conversation ready behind it   {ready:7.1f}  (+{ready - bare_ms:.1f}; no target)")


if __name__ == "__main__":
    main()
