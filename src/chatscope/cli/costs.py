"""What a saved session cost, as `sessions show` prints it.

A turn's usage is stored with its last message; the model of each turn is not stored, so every
turn is priced as the session's provider and model (the ones it was last continued with), at
the endpoint's usual prices, as of the session's last update. A turn without stored usage, or
a model the price table does not know, has an unknown cost, and so has the session's total.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from chatscope.adapters.pricing import PriceTable, cost_json, cost_text, total_cost
from chatscope.adapters.storage.catalog import SessionSummary
from chatscope.adapters.storage.sql_history import StoredMessage
from chatscope.services.messages import Usage

__all__ = ["SessionCosts", "TurnCost", "session_costs"]


@dataclass(frozen=True, slots=True)
class TurnCost:
    """One turn's stored usage and its price (`None`: unknown)."""

    turn: int
    usage: Usage | None
    cost: Decimal | None

    def line(self) -> str:
        """`cost $0.0012 (1000 input (200 cached), 50 output tokens)`, or why it is unknown."""
        if self.usage is None:
            return "cost unknown (no usage stored)"
        usage = self.usage
        cached = f" ({usage.cached_tokens} cached)" if usage.cached_tokens else ""
        tokens = f"{usage.input_tokens} input{cached}, {usage.output_tokens} output tokens"
        return f"cost {cost_text(self.cost)} ({tokens})"


@dataclass(frozen=True, slots=True)
class SessionCosts:
    """Every turn's cost, priced as `provider` / `model`."""

    provider: str | None
    model: str | None
    turns: tuple[TurnCost, ...]

    @property
    def total(self) -> Decimal | None:
        """The sum of the turns' costs; unknown if any of them is."""
        return total_cost(turn.cost for turn in self.turns)

    def of_turn(self, turn: int) -> TurnCost:
        """The cost of turn number `turn`."""
        return next(cost for cost in self.turns if cost.turn == turn)

    def line(self) -> str:
        """The session's total and how it was priced."""
        origin = f"{self.provider or '?'}/{self.model or '?'}"
        return (
            f"total cost {cost_text(self.total)} "
            f"(every turn priced as {origin}, the session's latest model)"
        )

    def as_json(self) -> dict[str, Any]:
        """`{"total": COST, "priced_as": {...}, "turns": [{"turn": 1, "cost": COST}]}`, a COST
        being `{"amount": "0.0012", "currency": "USD"}` or null when unknown."""
        return {
            "total": cost_json(self.total),
            "priced_as": {"provider": self.provider, "model": self.model},
            "turns": [{"turn": turn.turn, "cost": cost_json(turn.cost)} for turn in self.turns],
        }


def session_costs(
    summary: SessionSummary, stored: tuple[StoredMessage, ...], prices: PriceTable
) -> SessionCosts:
    """The cost of every turn of `stored` (the transcript of session `summary`)."""
    usages: dict[int, Usage | None] = {}
    for item in stored:
        if usages.get(item.turn) is None:
            usages[item.turn] = item.usage
    turns = tuple(
        TurnCost(turn, usage, _price(usage, summary, prices)) for turn, usage in usages.items()
    )
    return SessionCosts(summary.provider, summary.model, turns)


def _price(usage: Usage | None, summary: SessionSummary, prices: PriceTable) -> Decimal | None:
    if usage is None or summary.provider is None or summary.model is None:
        return None
    return prices.price(
        usage, provider=summary.provider, model=summary.model, at=summary.updated_at
    )
