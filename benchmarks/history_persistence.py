"""Cost of saving and reloading a 1,000-turn session in the database, against the memory history.

Run: `uv run python benchmarks/history_persistence.py [--turns 1000] [--rounds 5]
[--database-url postgresql://...]`.

Each round saves one session turn by turn (every turn its own committed transaction, as a chat
does) into a fresh SQLite file in a temporary directory, then reloads it: a new store on the
running database (`open + messages()`), and cold, as a new process would (new database, schema
check, load). `InMemoryHistory` does the same turns in the same round as the baseline. A turn is
four messages: prompt, tool call, tool result (500 characters), answer (400 characters).
Prints the medians, the save ratio database / memory, and the reload cost per message.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydantic import SecretStr

from chatscope.adapters.storage.catalog import SessionCatalog
from chatscope.adapters.storage.engine import open_database
from chatscope.adapters.storage.schema import prepare_database
from chatscope.adapters.storage.sql_history import SqlHistoryStore
from chatscope.services.history.memory import InMemoryHistory
from chatscope.services.messages import (
    Message,
    Role,
    TextBlock,
    ToolCallBlock,
    ToolResultBlock,
    Usage,
)
from chatscope.services.runtime.ports import HistoryStore


def turn(number: int) -> list[Message]:
    """One realistic turn with a tool call."""
    call = ToolCallBlock.create(f"call_{number}", "read_file", {"path": f"src/module_{number}.py"})
    return [
        Message.user(f"Question {number}: what does module {number} do? " + "context " * 8),
        Message(Role.ASSISTANT, (call,)),
        Message(Role.TOOL, (ToolResultBlock(call.id, call.name, result="x" * 500),)),
        Message(Role.ASSISTANT, (TextBlock("It does this. " * 28 + f"({number})"),)),
    ]


async def seconds(action: Callable[[], Awaitable[object]]) -> float:
    """Wall-clock seconds of one awaited action."""
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def save(store: HistoryStore, turns: list[list[Message]]) -> None:
    """Append every turn, one call (one transaction) each."""
    for number, messages in enumerate(turns):
        await store.append_turn(messages, Usage(1000 + number, 50))


async def memory_round(turns: list[list[Message]]) -> dict[str, float]:
    """The baseline: the same turns into `InMemoryHistory`."""
    history = InMemoryHistory()
    saved = await seconds(lambda: save(history, turns))
    loaded = await seconds(history.messages)
    return {"save": saved, "reload": loaded, "cold reload": loaded}


async def database_round(turns: list[list[Message]], url: str | None) -> dict[str, float]:
    """Save and reload one session on a fresh database (SQLite in a temporary directory)."""
    with tempfile.TemporaryDirectory() as root:
        secret = SecretStr(url) if url else None
        database = open_database(data_dir=Path(root), database_url=secret)
        await prepare_database(database)
        session_id = uuid.uuid4().hex
        saved = await seconds(lambda: save(SqlHistoryStore(database, session_id=session_id), turns))
        reloaded = await seconds(SqlHistoryStore(database, session_id=session_id).messages)
        await database.dispose()
        cold = await seconds(lambda: cold_reload(Path(root), secret, session_id, len(turns)))
        if url:
            await drop_session(Path(root), secret, session_id)
    return {"save": saved, "reload": reloaded, "cold reload": cold}


async def cold_reload(root: Path, url: SecretStr | None, session_id: str, turns: int) -> None:
    """What a resumed chat in a new process does: open the database, schema check, load."""
    database = open_database(data_dir=root, database_url=url)
    try:
        await prepare_database(database)
        loaded = await SqlHistoryStore(database, session_id=session_id).messages()
        assert len(loaded) == 4 * turns
    finally:
        await database.dispose()


async def drop_session(root: Path, url: SecretStr | None, session_id: str) -> None:
    """Leave a configured server database as it was found."""
    database = open_database(data_dir=root, database_url=url)
    try:
        await SessionCatalog(database).delete(session_id)
    finally:
        await database.dispose()


async def measure(turns: int, rounds: int, url: str | None) -> dict[str, dict[str, float]]:
    """Medians per store and stage over `rounds` rounds, each store once per round."""
    conversation = [turn(number) for number in range(turns)]
    samples: dict[str, dict[str, list[float]]] = {"memory": {}, "database": {}}
    for _ in range(rounds):
        for name, result in (
            ("memory", await memory_round(conversation)),
            ("database", await database_round(conversation, url)),
        ):
            for stage, value in result.items():
                samples[name].setdefault(stage, []).append(value)
    return {
        name: {stage: statistics.median(values) for stage, values in stages.items()}
        for name, stages in samples.items()
    }


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", help="measure this database instead of SQLite")
    args = parser.parse_args()
    medians = asyncio.run(measure(args.turns, args.rounds, args.database_url))
    memory, database = medians["memory"], medians["database"]
    label = "database" if args.database_url else "SQLite (WAL)"
    print(f"{args.turns} turns x 4 messages, median of {args.rounds} rounds")
    print(
        f"{'store':14s} {'save s':>8s} {'ms/turn':>8s} {'reload ms':>10s} {'cold reload ms':>15s}"
    )
    for name, figures in (("in-memory", memory), (label, database)):
        print(
            f"{name:14s} {figures['save']:8.3f} {figures['save'] / args.turns * 1e3:8.3f} "
            f"{figures['reload'] * 1e3:10.2f} {figures['cold reload'] * 1e3:15.2f}"
        )
    per_message_us = database["reload"] / (4 * args.turns) * 1e6
    print(f"save: {label} / in-memory = {database['save'] / memory['save']:.0f}x")
    print(f"reload: {per_message_us:.1f} us per message (in memory there is nothing to reload)")


if __name__ == "__main__":
    main()
