"""A child process that writes turns into saved sessions, for the multi-process and kill tests.

Run: `python history_writer.py URL TURNS SESSION [SESSION ...]`. It migrates the database (as
every chatscope process does at start-up), then appends turns round-robin to the sessions,
printing `committed N` after each commit. TURNS of 0 writes until the process is killed. Every
turn is `turn_messages(session, n)`, so a test can check exactly what a session must hold.
Only chatscope is imported: the script runs as a file, outside the test package.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path

from pydantic import SecretStr

from chatscope.adapters.storage.engine import open_database
from chatscope.adapters.storage.schema import prepare_database
from chatscope.adapters.storage.sql_history import SqlHistoryStore
from chatscope.services.messages import Message, Role, TextBlock, ToolCallBlock, ToolResultBlock

__all__ = ["turn_messages"]


def turn_messages(session_id: str, number: int) -> list[Message]:
    """Turn `number` (from 1) of `session_id`: prompt, tool call, tool result, answer."""
    call = ToolCallBlock.create(f"call-{number}", "read_file", {"path": f"{session_id}-{number}"})
    result = ToolResultBlock(call.id, call.name, result="x" * 200)
    return [
        Message.user(f"{session_id} question {number}"),
        Message(Role.ASSISTANT, (call,)),
        Message(Role.TOOL, (result,)),
        Message(Role.ASSISTANT, (TextBlock(f"{session_id} answer {number}"),)),
    ]


async def write(url: str, turns: int, session_ids: list[str]) -> None:
    """Append `turns` turns (0: forever) round-robin to `session_ids`."""
    database = open_database(data_dir=Path.cwd(), database_url=SecretStr(url))
    await prepare_database(database)
    stores = [SqlHistoryStore(database, session_id=session_id) for session_id in session_ids]
    written = dict.fromkeys(session_ids, 0)
    counter = itertools.count(1) if turns == 0 else range(1, turns + 1)
    try:
        for count, store in zip(counter, itertools.cycle(stores), strict=False):
            written[store.session_id] += 1
            await store.append_turn(turn_messages(store.session_id, written[store.session_id]))
            sys.stdout.write(f"committed {count}\n")
            sys.stdout.flush()
    finally:
        await database.dispose()


if __name__ == "__main__":
    asyncio.run(write(sys.argv[1], int(sys.argv[2]), sys.argv[3:]))
