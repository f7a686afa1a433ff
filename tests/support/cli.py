"""Running `python -m chatscope` as a real process, with an environment of the test's choosing.

The child never sees the developer's chatscope or provider variables, and keeps its saved
sessions where the test says (`CHATSCOPE_DATA_DIR`), never in the real user data directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from asyncio.subprocess import PIPE, Process
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CliResult",
    "cli_env",
    "openai_text_stream",
    "openai_tool_call_stream",
    "run_cli",
    "start_cli",
]

_OWN_PREFIXES = ("CHATSCOPE_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_")


@dataclass(frozen=True)
class CliResult:
    """Exit code and output of one finished command."""

    returncode: int
    stdout: str
    stderr: str


def cli_env(data_dir: Path, **variables: str) -> dict[str, str]:
    """The inherited environment minus chatscope's and providers' variables, plus these."""
    base = {key: value for key, value in os.environ.items() if not key.startswith(_OWN_PREFIXES)}
    return base | {"CHATSCOPE_DATA_DIR": str(data_dir)} | variables


async def start_cli(*args: str, cwd: Path, env: dict[str, str]) -> Process:
    """Start `python -m chatscope ARGS` with piped output."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatscope", *args, cwd=cwd, env=env, stdout=PIPE, stderr=PIPE
    )


async def run_cli(*args: str, cwd: Path, env: dict[str, str]) -> CliResult:
    """Run `python -m chatscope ARGS` to completion (60 s at most)."""
    child = await start_cli(*args, cwd=cwd, env=env)
    out, err = await asyncio.wait_for(child.communicate(), timeout=60)
    assert child.returncode is not None
    return CliResult(child.returncode, out.decode(), err.decode())


def _sse(chunks: list[dict[str, Any]]) -> bytes:
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks).encode() + b"data: [DONE]\n\n"


def openai_text_stream(*pieces: str) -> bytes:
    """A Chat Completions stream saying `pieces` in order, one event each, then usage."""
    chunks: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        for piece in pieces
    ]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    chunks.append({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
    return _sse(chunks)


def openai_tool_call_stream(call_id: str, name: str, arguments: dict[str, Any]) -> bytes:
    """A Chat Completions stream asking for one tool call."""
    call = {
        "index": 0,
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }
    return _sse(
        [
            {"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        ]
    )
