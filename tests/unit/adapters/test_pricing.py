"""Turn costs from the genai-prices table: the same numbers as genai-prices itself, unknown
models and endpoints unknown (never zero), no network, and the arithmetic a price must obey."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import genai_prices
import pytest
from genai_prices import data as genai_data
from genai_prices import data_snapshot
from genai_prices.types import TieredPrices
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from chatscope.adapters.pricing import (
    PriceTable,
    cost_json,
    cost_text,
    price_usage,
    total_cost,
)
from chatscope.config.settings import ProvidersSettings
from chatscope.services.messages import Usage

AT = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)
TABLE = PriceTable()  # one table for the module's tests; the suite never changes it

# (chatscope provider, model, genai-prices provider id): one or more per wire format.
KNOWN = (
    ("openai", "gpt-4o-mini", "openai"),
    ("openai", "gpt-5", "openai"),
    ("openai-responses", "gpt-4o-mini", "openai"),
    ("anthropic", "claude-sonnet-4-5", "anthropic"),
    ("anthropic", "claude-haiku-4-5", "anthropic"),
    ("gemini", "gemini-2.5-flash", "google"),
    ("gemini", "gemini-2.5-pro", "google"),
)

tokens = st.integers(0, 3_000_000)


@st.composite
def usages(draw: st.DrawFn, most: int = 3_000_000) -> Usage:
    """Usage as the adapters report it: cached tokens are part of the input tokens."""
    input_tokens = draw(st.integers(0, most))
    cached = draw(st.integers(0, input_tokens))
    return Usage(input_tokens, draw(tokens), cached, draw(st.integers(0, 1000)))


def genai_price(usage: Usage, provider_id: str, model: str) -> Decimal:
    """What genai-prices itself says `usage` costs."""
    counts = genai_prices.Usage(
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.cached_tokens,
        output_tokens=usage.output_tokens,
    )
    price = genai_prices.calc_price(
        counts, model, provider_id=provider_id, genai_request_timestamp=AT
    )
    return price.total_price


def linear_up_to(provider_id: str, model: str) -> int | None:
    """Input tokens up to which the model's price is exactly linear (below its first tier);
    None when it also charges per request."""
    snapshot = data_snapshot.DataSnapshot(providers=genai_data.providers, from_auto_update=False)
    _, info = snapshot.find_provider_model(model, None, provider_id, None)
    prices = info.get_prices(AT)
    if prices.requests_kcount is not None:
        return None
    values = [value for value in vars(prices).values() if isinstance(value, TieredPrices)]
    return min((tier.start for value in values for tier in value.tiers), default=10**12)


# --- examples -------------------------------------------------------------------------------


def test_every_providers_default_model_has_a_price() -> None:
    """The default model of each real provider is in the table, and costs something."""
    sections = ProvidersSettings()
    for provider in ("openai", "openai-responses", "anthropic", "gemini"):
        section = sections.get(provider)
        cost = price_usage(Usage(1000, 100), provider=provider, model=section.default_model, at=AT)
        assert cost is not None, provider
        assert cost > 0, provider
        assert cost == TABLE.price(
            Usage(1000, 100),
            provider=provider,
            model=section.default_model,
            base_url=section.base_url,
            at=AT,
        )


@pytest.mark.parametrize(
    ("provider", "model", "base_url"),
    [
        ("demo", "chatscope-demo", None),
        ("openai", "no-such-model", None),
        ("openai", "", None),
        ("someone-else", "gpt-4o-mini", None),
        ("openai", "gpt-4o-mini", "http://127.0.0.1:8000/v1"),
    ],
)
def test_what_the_table_does_not_know_is_unknown_not_zero(
    provider: str, model: str, base_url: str | None
) -> None:
    """The demo provider, an unknown model or provider, or a local server: no price."""
    cost = price_usage(Usage(1000, 100), provider=provider, model=model, base_url=base_url)
    assert cost is None
    assert cost_json(cost) is None
    assert cost_text(cost) == "unknown"


def test_an_openai_compatible_endpoint_is_priced_as_whoever_serves_it() -> None:
    """OpenRouter's prices for its models; OpenAI's own endpoint prices as OpenAI."""
    usage = Usage(10_000, 1000)
    routed = TABLE.price(
        usage, provider="openai", model="openai/gpt-4o", base_url="https://openrouter.ai/api/v1"
    )
    assert routed is not None
    assert (
        routed
        == genai_prices.calc_price(
            genai_prices.Usage(input_tokens=10_000, output_tokens=1000),
            "openai/gpt-4o",
            provider_id="openrouter",
        ).total_price
    )
    direct = TABLE.price(
        usage, provider="openai", model="gpt-4o", base_url="https://api.openai.com/v1"
    )
    assert direct == TABLE.price(usage, provider="openai", model="gpt-4o")


def test_prices_come_from_the_bundled_table_even_after_an_auto_update() -> None:
    """A process-wide snapshot (what genai-prices' network `UpdatePrices` installs) is never
    used: here an empty one, under which genai-prices itself knows nothing."""
    data_snapshot.set_custom_snapshot(
        data_snapshot.DataSnapshot(providers=[], from_auto_update=True)
    )
    try:
        with pytest.raises(LookupError):
            genai_prices.calc_price(genai_prices.Usage(input_tokens=1), "gpt-4o-mini")
        assert price_usage(Usage(1000, 100), provider="openai", model="gpt-4o-mini") is not None
    finally:
        data_snapshot.set_custom_snapshot(None)


def test_costs_print_as_plain_decimals() -> None:
    """Never in exponent form, never rounded; unknown is null / `unknown`."""
    assert cost_json(Decimal("1.5E-7")) == {"amount": "0.00000015", "currency": "USD"}
    assert cost_json(Decimal("0.0000600")) == {"amount": "0.00006", "currency": "USD"}
    assert cost_text(Decimal("12.3400")) == "$12.34"
    assert cost_json(None) is None


# --- properties -----------------------------------------------------------------------------


@given(usage=usages(), known=st.sampled_from(KNOWN))
def test_a_known_model_costs_what_genai_prices_says(
    usage: Usage, known: tuple[str, str, str]
) -> None:
    """For every usage, the price is genai-prices' own calculation of the same counts."""
    provider, model, provider_id = known
    cost = TABLE.price(usage, provider=provider, model=model, at=AT)
    assert cost == genai_price(usage, provider_id, model)


@given(usage=usages(), more_input=tokens, more_output=tokens, known=st.sampled_from(KNOWN))
def test_more_tokens_never_cost_less(
    usage: Usage, more_input: int, more_output: int, known: tuple[str, str, str]
) -> None:
    """Cost is monotone non-decreasing in input and output tokens, and never negative."""
    provider, model, _ = known
    more = Usage(
        usage.input_tokens + more_input, usage.output_tokens + more_output, usage.cached_tokens
    )
    cost = TABLE.price(usage, provider=provider, model=model, at=AT)
    higher = TABLE.price(more, provider=provider, model=model, at=AT)
    assert cost is not None
    assert higher is not None
    assert Decimal(0) <= cost <= higher


@given(first=usages(150_000), second=usages(150_000), known=st.sampled_from(KNOWN))
def test_cost_is_exactly_linear_where_the_table_is(
    first: Usage, second: Usage, known: tuple[str, str, str]
) -> None:
    """Below a model's first price tier, two usages together cost exactly their sum."""
    provider, model, provider_id = known
    limit = linear_up_to(provider_id, model)
    assume(limit is not None and first.input_tokens + second.input_tokens <= limit)
    together = TABLE.price(first + second, provider=provider, model=model, at=AT)
    apart = [TABLE.price(usage, provider=provider, model=model, at=AT) for usage in (first, second)]
    assert together == total_cost(apart)


@given(
    counts=st.tuples(*[st.integers(-(10**6), 10**7)] * 4),
    known=st.sampled_from(KNOWN),
)
def test_even_inconsistent_counts_never_cost_less_than_zero(
    counts: tuple[int, int, int, int], known: tuple[str, str, str]
) -> None:
    """Negative counts, or more cached tokens than input: a price of at least zero."""
    provider, model, _ = known
    cost = TABLE.price(Usage(*counts), provider=provider, model=model, at=AT)
    assert cost is not None
    assert cost >= 0


@given(
    suffix=st.text(alphabet="qxjz-_", min_size=1),
    provider=st.sampled_from(["openai", "openai-responses", "anthropic", "gemini", "demo"]),
    usage=usages(),
)
def test_a_made_up_model_is_unknown(suffix: str, provider: str, usage: Usage) -> None:
    """A model name in no table has no price: None, not zero."""
    model = f"chatscope-unknown-{suffix}"
    assert TABLE.price(usage, provider=provider, model=model) is None


@given(model=st.text(max_size=40), known=st.sampled_from(KNOWN))
def test_any_model_name_is_priced_exactly_when_genai_prices_knows_it(
    model: str, known: tuple[str, str, str]
) -> None:
    """Whatever the name: None when genai-prices cannot find it, its price when it can."""
    provider, _, provider_id = known
    usage = Usage(1234, 567, 89)
    try:
        expected: Decimal | None = genai_price(usage, provider_id, model)
    except LookupError:
        expected = None
    if not model:
        expected = None
    assert TABLE.price(usage, provider=provider, model=model, at=AT) == expected


@given(st.lists(st.one_of(st.none(), st.decimals(0, 10**6, places=12))))
def test_a_total_is_unknown_if_any_part_is(costs: list[Decimal | None]) -> None:
    """The sum of known costs exactly; unknown as soon as one is unknown."""
    total = total_cost(costs)
    if None in costs:
        assert total is None
    else:
        assert total == sum((cost for cost in costs if cost is not None), Decimal(0))


@given(st.decimals(min_value=0, max_value=10**6, places=15))
def test_a_cost_survives_its_json_form(cost: Decimal) -> None:
    """The JSON amount is a plain decimal string that parses back to the same amount."""
    shown = cost_json(cost)
    assert shown is not None
    assert "E" not in shown["amount"].upper()
    assert Decimal(shown["amount"]) == cost
    assert shown["currency"] == "USD"


@settings(max_examples=10, deadline=None)
@given(
    asks=st.lists(
        st.tuples(usages(), st.sampled_from(KNOWN) | st.just(("openai", "no-such-model", ""))),
        min_size=8,
        max_size=40,
    )
)
def test_one_table_prices_concurrent_callers_each_as_if_alone(
    asks: list[tuple[Usage, tuple[str, str, str]]],
) -> None:
    """One application's table serves every scope at once: prices asked from many threads at
    the same time are those each caller gets alone, unknown models included."""
    table = PriceTable()

    def price(ask: tuple[Usage, tuple[str, str, str]]) -> Decimal | None:
        usage, (provider, model, _) = ask
        return table.price(usage, provider=provider, model=model, at=AT)

    alone = [price(ask) for ask in asks]
    start = threading.Barrier(8)

    def priced_together(worker: int) -> list[Decimal | None]:
        start.wait()
        return [price(ask) for ask in asks[worker::8]]

    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(priced_together, range(8)))
    for worker, prices in enumerate(together):
        assert prices == alone[worker::8]
