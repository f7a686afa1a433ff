"""`plan_compression` against a reference: the largest cut every rule allows.

The docstring's rules, each a bound on where the summarised middle may end: after the first
exchange, no TOOL message first in the tail, the newest `min_age` turns kept, at least
`preserve_fraction` of the tokens kept, the last user message kept. The reference tries every
cut; the plan must be exactly the latest valid one, or None when there is none. Fractions are
also drawn right at a tail's token count, where an off-by-one in the token walk shows.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chatscope.services.history.plan import CompressionPlan, message_tokens, plan_compression
from chatscope.services.messages import Message, Role
from tests.support.histories import messy_histories, reply, user, well_paired_histories

histories = st.one_of(
    well_paired_histories(min_turns=1),
    messy_histories(),
    # A conversation that opens with the assistant (a greeting) before the first prompt.
    well_paired_histories(min_turns=1).map(lambda history: (reply("hello there"), *history)),
)


def _head_end(history: tuple[Message, ...]) -> int | None:
    """End of the first exchange: first user message, the next assistant one, its results."""
    users = [i for i, message in enumerate(history) if message.role is Role.USER]
    if not users:
        return None
    replies = [i for i in range(users[0] + 1, len(history)) if history[i].role is Role.ASSISTANT]
    if not replies:
        return None
    end = replies[0] + 1
    while end < len(history) and history[end].role is Role.TOOL:
        end += 1
    return end


def _valid_cut(history: tuple[Message, ...], cut: int, fraction: float, min_age: int) -> bool:
    tail = history[cut:]
    total = sum(message_tokens(message) for message in history)
    users_in_tail = sum(message.role is Role.USER for message in tail)
    last_user = max(i for i, message in enumerate(history) if message.role is Role.USER)
    return (
        history[cut].role is not Role.TOOL
        and cut <= last_user
        and (min_age <= 0 or users_in_tail >= min_age)
        and sum(message_tokens(message) for message in tail) >= fraction * total
    )


def reference_plan(
    history: tuple[Message, ...], fraction: float, min_age: int
) -> CompressionPlan | None:
    """The latest cut after the head that keeps every rule, tried one by one."""
    head_end = _head_end(history)
    if head_end is None:
        return None
    cuts = [
        cut
        for cut in range(head_end + 1, len(history))
        if _valid_cut(history, cut, fraction, min_age)
    ]
    if not cuts:
        return None
    cut = max(cuts)
    return CompressionPlan(history[:head_end], history[head_end:cut], history[cut:])


@st.composite
def fractions_for(draw: st.DrawFn, history: tuple[Message, ...]) -> float:
    """Any fraction, or one landing on (or half a token around) some tail's token count."""
    total = sum(message_tokens(message) for message in history)
    if not history or total == 0 or draw(st.booleans()):
        return draw(st.floats(min_value=0.0, max_value=1.0))
    cut = draw(st.integers(min_value=0, max_value=len(history) - 1))
    tail = sum(message_tokens(message) for message in history[cut:])
    shift = draw(st.sampled_from([-0.5, 0.0, 0.5]))
    return min(max((tail + shift) / total, 0.0), 1.0)


@given(history=histories, min_age=st.integers(min_value=0, max_value=6), data=st.data())
def test_the_plan_is_the_latest_cut_every_rule_allows(
    history: tuple[Message, ...], min_age: int, data: st.DataObject
) -> None:
    """Same head, middle and tail as the reference, or None exactly when it finds no cut."""
    fraction = data.draw(fractions_for(history))
    plan = plan_compression(history, preserve_fraction=fraction, min_age=min_age)
    assert plan == reference_plan(history, fraction, min_age)


@given(prompt=st.text(max_size=20), greeting=st.booleans())
def test_a_prompt_without_an_answer_yet_has_nothing_to_compress(
    prompt: str, greeting: bool
) -> None:
    """No first exchange yet (no reply after the first prompt): no plan, and no error."""
    history = ((reply("hi"),) if greeting else ()) + (user(prompt),)
    assert plan_compression(history, preserve_fraction=0.0, min_age=0) is None
