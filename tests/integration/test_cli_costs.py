"""`chat --json` prices the turn: `cost` is `{"amount", "currency"}` from the genai-prices table,
or null when the model or endpoint is unknown (the demo provider, a local server): never zero."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from chatscope.adapters.pricing import PriceTable, cost_json
from chatscope.cli.commands import turn_as_json
from chatscope.services.events import CompletedTurn, FinishReason
from chatscope.services.messages import Usage
from chatscope.testing import FunctionProvider, ScriptedReply
from tests.support.scopes import make_context

TABLE = PriceTable()
# (provider, model, the provider's own endpoint)
KNOWN = (
    ("openai", "gpt-4o-mini", "https://api.openai.com/v1"),
    ("openai-responses", "gpt-5", "https://api.openai.com/v1"),
    ("anthropic", "claude-sonnet-4-5", "https://api.anthropic.com"),
    ("gemini", "gemini-2.5-flash", "https://generativelanguage.googleapis.com/v1beta"),
)


def turn_of(usage: Usage) -> CompletedTurn:
    """A finished turn that used `usage`."""
    return CompletedTurn("answer", (), (), usage, FinishReason.STOP, 1)


def json_of(usage: Usage, provider: str, model: str, base_url: str | None) -> dict[str, object]:
    """`chat --json`'s document for one turn in a scope of `provider` / `model`."""
    reply = FunctionProvider(lambda _: ScriptedReply(text="answer"), name=provider)
    context = make_context(reply, model=model, base_url=base_url)
    return turn_as_json(turn_of(usage), context, prices=TABLE)


@given(
    input_tokens=st.integers(0, 10**6),
    output_tokens=st.integers(0, 10**5),
    known=st.sampled_from(KNOWN),
    at_the_endpoint=st.booleans(),
)
def test_json_shows_the_turns_cost(
    input_tokens: int, output_tokens: int, known: tuple[str, str, str], at_the_endpoint: bool
) -> None:
    """The turn's usage priced as its provider's model: the same with or without the
    provider's own base URL, and never negative."""
    provider, model, endpoint = known
    usage = Usage(input_tokens, output_tokens)
    document = json_of(usage, provider, model, endpoint if at_the_endpoint else None)
    now = dt.datetime.now(dt.UTC)
    expected = TABLE.price(usage, provider=provider, model=model, at=now)
    assert expected is not None
    assert document["cost"] == cost_json(expected)
    cost = document["cost"]
    assert isinstance(cost, dict)
    assert Decimal(cost["amount"]) >= 0
    assert cost["currency"] == "USD"


@given(model=st.text(alphabet="qxjz-", min_size=1).map(lambda s: f"unknown-{s}"))
def test_json_says_null_for_an_unknown_model(model: str) -> None:
    """A model in no table: `"cost": null`, next to the usage it could not price."""
    document = json_of(Usage(100, 10), "openai", model, None)
    assert document["cost"] is None
    assert document["usage"] == {"input_tokens": 100, "output_tokens": 10}


def test_json_says_null_for_a_local_server() -> None:
    """An OpenAI-compatible local server is not OpenAI: its price is unknown."""
    document = json_of(Usage(100, 10), "openai", "gpt-4o-mini", "http://127.0.0.1:8080/v1")
    assert document["cost"] is None
