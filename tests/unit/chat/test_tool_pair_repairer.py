"""`ToolPairRepairer`: each request's history repaired as from scratch, checking what is new."""

from __future__ import annotations

from chatscope.services.chat.tool_pairs import (
    INTERRUPTED_CALL_ERROR,
    ToolPairRepairer,
    repair_tool_pairs,
)
from chatscope.services.messages import Message, Role
from chatscope.testing.fakes import FunctionProvider, ScriptedReply
from tests.support.histories import answered, calling, compression_context, reply, results, user
from tests.support.scopes import make_chat


def test_a_repaired_prefix_is_kept_for_the_next_request() -> None:
    """An orphan call of an old turn is answered once: later requests reuse that answer."""
    repairer = ToolPairRepairer()
    history = (user("q0"), calling("call_1"), user("q1"), reply("a1"), user("q2"))
    first = repairer.repair(history)
    second = repairer.repair((*history, reply("a2"), user("q3")))
    assert first == repair_tool_pairs(history)
    assert first[2].tool_results[0].error == INTERRUPTED_CALL_ERROR
    assert second[2] is first[2]


def test_results_arriving_after_the_last_request_replace_its_synthetic_answer() -> None:
    """Mid-turn the last call had no result yet; once it has, the result is what is sent."""
    repairer = ToolPairRepairer()
    prompt, call = user("q"), calling("call_1")
    before = repairer.repair((prompt, call))
    after = repairer.repair((prompt, call, answered(call)))
    assert before[-1].tool_results[0].error == INTERRUPTED_CALL_ERROR
    assert after[-1] == answered(call)


def test_a_history_rewound_to_a_tool_message_is_repaired_from_scratch() -> None:
    """The same messages up to the last request's cut, then results for the call before it:
    the cut no longer ends a run of results, so nothing before it is reused."""
    repairer = ToolPairRepairer()
    prompt, call = user("q"), calling("call_1")
    repairer.repair((prompt, call, user("stop")))
    rewound = (prompt, call, results("call_1"))
    assert repairer.repair(rewound) == repair_tool_pairs(rewound) == rewound


def test_a_well_paired_history_comes_back_as_the_very_same_tuple() -> None:
    """As `repair_tool_pairs`, request after request."""
    repairer = ToolPairRepairer()
    call = calling("call_1")
    history = (user("q"), call, answered(call), reply("done"))
    assert repairer.repair(history) is history
    longer = (*history, user("more"))
    assert repairer.repair(longer) is longer


async def test_a_session_resends_the_very_messages_it_sent_before() -> None:
    """The repaired history of a session's next request starts with the same objects as the
    last one's, orphans repaired once: an adapter then maps only what is new."""

    def respond(invocation: object) -> ScriptedReply:
        return ScriptedReply(text="ok")

    provider = FunctionProvider(respond)
    stored = (user("q0"), calling("lost"), user("q1"), Message(Role.ASSISTANT, ()))
    chat = make_chat(compression_context(stored, provider=provider))
    await chat.send("first")
    await chat.send("second")
    first, second = (invocation.history for invocation in provider.invocations)
    assert len(second) > len(first)
    assert all(map(lambda old, new: old is new, first, second))
