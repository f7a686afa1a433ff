"""What a turn cost: token usage priced from the `genai-prices` table.

The table (github.com/pydantic/genai-prices, maintained by Pydantic) is the one shipped inside
the installed `genai-prices` package; it is read offline and never updated over the network
(the package's `UpdatePrices` is not used, and its process-wide custom snapshot is bypassed).
Upgrading the package upgrades the prices.

A price is a `Decimal` in US dollars, or `None` when the table does not know the provider or the
model: an unknown price is never reported as zero. The demo provider is not in the table, so its
turns are unknown too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING

from chatscope.services.messages import Usage

if TYPE_CHECKING:
    from genai_prices.data_snapshot import DataSnapshot

__all__ = [
    "CURRENCY",
    "GENAI_PRICES_PROVIDER_IDS",
    "PriceTable",
    "cost_json",
    "cost_text",
    "price_usage",
    "total_cost",
]

CURRENCY = "USD"

# chatscope's provider names (`ProviderName`, and the adapters' own names) to genai-prices ids.
GENAI_PRICES_PROVIDER_IDS: Mapping[str, str] = MappingProxyType(
    {
        "openai": "openai",
        "openai-responses": "openai",
        "openai_responses": "openai",
        "anthropic": "anthropic",
        "gemini": "google",
    }
)


class PriceTable:
    """The bundled genai-prices table. Loaded when first built (importing it takes ~0.3 s), so
    build one per application (the container owns it), or use `price_usage` for a one-off."""

    def __init__(self) -> None:
        self._snapshot = _bundled_snapshot()

    def price(
        self,
        usage: Usage,
        *,
        provider: str,
        model: str,
        base_url: str | None = None,
        at: datetime | None = None,
    ) -> Decimal | None:
        """The dollar cost of `usage` on `provider`'s `model` at time `at` (default: now).

        With `base_url` the prices are those of whoever serves that endpoint (OpenRouter, Groq,
        ...: an OpenAI-compatible server is not OpenAI); an endpoint the table does not know,
        such as a local server, has no price. `None` when the provider, endpoint or model is
        unknown.
        """
        provider_id = GENAI_PRICES_PROVIDER_IDS.get(provider)
        if provider_id is None or not model:
            return None
        by_id, by_url = (None, base_url) if base_url else (provider_id, None)
        try:
            calculation = self._snapshot.calc(_genai_usage(usage), model, by_id, by_url, at)
        except (LookupError, ValueError):
            return None
        return calculation.total_price


def price_usage(
    usage: Usage,
    *,
    provider: str,
    model: str,
    base_url: str | None = None,
    at: datetime | None = None,
) -> Decimal | None:
    """The dollar cost of `usage`, or `None` when the provider or model is unknown (see
    `PriceTable.price`).

    Builds a fresh `PriceTable` each call: code pricing many turns should hold one instead.
    """
    return PriceTable().price(usage, provider=provider, model=model, base_url=base_url, at=at)


def total_cost(costs: Iterable[Decimal | None]) -> Decimal | None:
    """The sum of `costs`; unknown (`None`) if any of them is."""
    total = Decimal(0)
    for cost in costs:
        if cost is None:
            return None
        total += cost
    return total


def cost_json(cost: Decimal | None) -> dict[str, str] | None:
    """A cost as JSON outputs show it: `{"amount": "0.00021", "currency": "USD"}`, the amount a
    decimal string (exact, never in exponent form); `None` (JSON null) when unknown."""
    if cost is None:
        return None
    return {"amount": _plain(cost), "currency": CURRENCY}


def cost_text(cost: Decimal | None) -> str:
    """A cost as text outputs show it: `$0.00021`, or `unknown`."""
    return "unknown" if cost is None else f"${_plain(cost)}"


def _plain(amount: Decimal) -> str:
    return f"{amount.normalize():f}"


def _bundled_snapshot() -> DataSnapshot:
    """A private snapshot of the table shipped in the package: never a network-updated one."""
    from genai_prices.data import providers
    from genai_prices.data_snapshot import DataSnapshot

    return DataSnapshot(providers=providers, from_auto_update=False)


def _genai_usage(usage: Usage) -> object:
    """chatscope's counts in genai-prices' terms.

    chatscope's `input_tokens` already include cached (read) tokens, as genai-prices expects;
    output tokens include reasoning. Anthropic cache writes are not counted apart, so they are
    priced at the plain input rate.
    """
    from genai_prices import Usage as GenaiUsage

    input_tokens = max(usage.input_tokens, 0)
    return GenaiUsage(
        input_tokens=input_tokens,
        cache_read_tokens=min(max(usage.cached_tokens, 0), input_tokens),
        output_tokens=max(usage.output_tokens, 0),
    )
