"""`sessions show` prices every turn from its stored usage, and the session's total.

Each turn is priced as the session's provider and model (per-turn models are not stored); a
turn without stored usage, or a model the table does not know, is unknown, and so is the total.
Sessions are written directly and the command runs through `main()` in this process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatscope.adapters.pricing import PriceTable, cost_json, cost_text
from chatscope.adapters.storage.sql_history import SqlHistoryStore
from chatscope.cli.main import main
from chatscope.services.messages import Message, Role, TextBlock, Usage
from tests.support.databases import migrated_database

TABLE = PriceTable()
KNOWN = (("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"), ("gemini", "gemini-2.5-pro"))

stored_usages = st.one_of(
    st.none(),
    st.builds(Usage, st.integers(0, 400_000), st.integers(0, 50_000)),
)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The data directory `main()` uses, from a clean environment."""
    for name in ("CHATSCOPE_DATABASE_URL", "CHATSCOPE_HISTORY_BACKEND", "CHATSCOPE_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHATSCOPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data"


def save(
    data_dir: Path, session_id: str, provider: str, model: str, usages: list[Usage | None]
) -> None:
    """A session of `provider` / `model` with one two-message turn per usage."""

    async def write() -> None:
        async with migrated_database("sqlite", data_dir.parent) as database:
            store = SqlHistoryStore(database, session_id=session_id)
            store.label(provider=provider, model=model)
            for number, usage in enumerate(usages, start=1):
                answer = Message(Role.ASSISTANT, (TextBlock(f"answer {number}"),))
                await store.append_turn([Message.user(f"question {number}"), answer], usage)

    asyncio.run(write())


def show(capsys: pytest.CaptureFixture[str], session_id: str, *flags: str) -> str:
    """`sessions show ID [FLAGS]`'s output (it must succeed)."""
    code = main(["sessions", "show", session_id, *flags])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_show_prints_each_turns_cost_and_the_total(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A line per turn after its messages, and the total under the heading."""
    usages = [Usage(1000, 100), Usage(2000, 300, 500)]
    save(data_dir, "priced", "openai", "gpt-4o-mini", list(usages))
    document = json.loads(show(capsys, "priced", "--json"))
    at = dt.datetime.fromisoformat(document["session"]["updated_at"])
    costs = [TABLE.price(u, provider="openai", model="gpt-4o-mini", at=at) for u in usages]
    assert all(cost is not None and cost > 0 for cost in costs)
    out = show(capsys, "priced")
    total = sum((cost for cost in costs if cost is not None), Decimal(0))
    assert (
        f"total cost {cost_text(total)} (every turn priced as openai/gpt-4o-mini, "
        "the session's latest model)\n"
    ) in out
    assert f"answer 1\n[turn 1: cost {cost_text(costs[0])} (1000 input, 100 output tokens)]" in out
    assert (
        f"[turn 2: cost {cost_text(costs[1])} (2000 input (500 cached), 300 output tokens)]\n"
        in out
    )


def test_an_unknown_model_or_missing_usage_is_unknown_not_zero(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo model has no price; a turn stored without usage has none either."""
    save(data_dir, "demo", "demo", "chatscope-demo", [Usage(10, 5)])
    out = show(capsys, "demo")
    assert "total cost unknown (every turn priced as demo/chatscope-demo" in out
    assert "[turn 1: cost unknown (10 input, 5 output tokens)]" in out
    assert json.loads(show(capsys, "demo", "--json"))["costs"] == {
        "total": None,
        "priced_as": {"provider": "demo", "model": "chatscope-demo"},
        "turns": [{"turn": 1, "cost": None}],
    }
    save(data_dir, "unmeasured", "openai", "gpt-4o-mini", [Usage(10, 5), None])
    out = show(capsys, "unmeasured")
    assert "total cost unknown" in out
    assert "[turn 2: cost unknown (no usage stored)]" in out
    assert "[turn 1: cost $" in out


@settings(max_examples=10)
@given(usages=st.lists(stored_usages, min_size=1, max_size=4), known=st.sampled_from(KNOWN))
def test_show_json_prices_every_stored_turn(
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    usages: list[Usage | None],
    known: tuple[str, str],
) -> None:
    """`costs.turns` is each turn's stored usage priced as the session's model; `costs.total`
    their sum, or null when any turn is unknown."""
    provider, model = known
    session_id = uuid.uuid4().hex
    save(data_dir, session_id, provider, model, usages)
    document = json.loads(show(capsys, session_id, "--json"))
    at = dt.datetime.fromisoformat(document["session"]["updated_at"])
    costs = [
        None if usage is None else TABLE.price(usage, provider=provider, model=model, at=at)
        for usage in usages
    ]
    shown = document["costs"]
    assert shown["priced_as"] == {"provider": provider, "model": model}
    assert shown["turns"] == [
        {"turn": number, "cost": cost_json(cost)} for number, cost in enumerate(costs, start=1)
    ]
    known_costs = [cost for cost in costs if cost is not None]
    if len(known_costs) < len(costs):
        assert shown["total"] is None
    else:
        assert Decimal(shown["total"]["amount"]) == sum(known_costs, Decimal(0))
