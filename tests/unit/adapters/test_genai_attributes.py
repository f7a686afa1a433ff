"""The GenAI conventions' content and attributes as chatscope records them (`telemetry.genai`)."""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from chatscope.adapters.telemetry import genai
from chatscope.errors import RateLimitError, redact_secrets
from chatscope.services.messages import (
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)
from chatscope.services.runtime.invocation import Credentials, ModelInvocation
from chatscope.services.runtime.state import AgentRuntimeState
from tests.support.message_strategies import messages

secrets_ = st.text(string.ascii_letters + string.digits + "-_.", min_size=8, max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


@given(value=json_values, secret=secrets_, where=st.integers(0, 3))
def test_json_content_never_holds_the_key(value: Any, secret: str, where: int) -> None:
    """Wherever the key hides in a JSON value (a string, a key, a nested item), the JSON
    recorded for it does not hold it, and it is still JSON."""
    planted = [value, {secret: value}, [f"before {secret} after", value], {"k": [secret]}][where]
    recorded = genai.json_text(planted, secret)
    assert secret not in recorded
    json.loads(recorded)


@given(value=json_values)
def test_json_content_without_keys_is_the_value_itself(value: Any) -> None:
    """Content with nothing to blank out is recorded as it is."""
    clean = json.dumps(value)
    if redact_secrets(clean) == clean:
        assert json.loads(genai.json_text(value, None)) == value


@given(history=st.lists(messages, max_size=4))
def test_input_messages_keep_every_part_in_order(history: list[Message]) -> None:
    """`gen_ai.input.messages`: one entry per message, its role, one part per block in order,
    with the conventions' part types."""
    recorded = json.loads(genai.input_messages_json(history, None))
    assert [entry["role"] for entry in recorded] == [str(message.role) for message in history]
    kinds = {
        TextBlock: "text",
        ThinkingBlock: "reasoning",
        ToolCallBlock: "tool_call",
        ToolResultBlock: "tool_call_response",
    }
    for entry, message in zip(recorded, history, strict=True):
        assert [part["type"] for part in entry["parts"]] == [
            kinds[type(block)] for block in message.blocks
        ]


def test_parts_carry_what_the_conventions_name() -> None:
    """Text and reasoning as `content`, a call's id, name and arguments, a result's id and
    what the model read."""
    call = ToolCallBlock.create("c1", "read_file", {"path": "a"})
    history = [
        Message(Role.ASSISTANT, (ThinkingBlock("hmm"), TextBlock("hi"), call)),
        Message(Role.TOOL, (ToolResultBlock("c1", "read_file", error="gone"),)),
    ]
    [said, tool] = json.loads(genai.input_messages_json(history, None))
    assert said["parts"] == [
        {"type": "reasoning", "content": "hmm"},
        {"type": "text", "content": "hi"},
        {"type": "tool_call", "id": "c1", "name": "read_file", "arguments": {"path": "a"}},
    ]
    assert tool["parts"] == [{"type": "tool_call_response", "id": "c1", "result": "Error: gone"}]
    [answer] = json.loads(genai.output_messages_json(Message.user("x"), "length", None))
    assert answer["finish_reason"] == "length"
    assert json.loads(genai.system_instructions_json("be brief", None)) == [
        {"type": "text", "content": "be brief"}
    ]


hosts = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5}){1,2}", fullmatch=True)


@given(
    scheme=st.sampled_from(["http", "https"]),
    host=hosts,
    port=st.none() | st.integers(1, 65535),
    userinfo=st.none() | st.text(string.ascii_letters + string.digits, min_size=1, max_size=12),
    tail=st.sampled_from(["", "/v1", "/v1beta?key=SECRETKEY123", "/openai/v1#frag"]),
)
def test_only_host_and_port_of_an_endpoint_are_recorded(
    scheme: str, host: str, port: int | None, userinfo: str | None, tail: str
) -> None:
    """`server.address` and `server.port` come from the base URL; its credentials, path and
    query never do."""
    netloc = (f"{userinfo}:pw@" if userinfo else "") + host + (f":{port}" if port else "")
    invocation = ModelInvocation(
        runtime_id="r",
        provider="openai",
        model="m",
        base_url=f"{scheme}://{netloc}{tail}",
        credentials=Credentials(),
        history=(),
    )
    attributes = genai.request_attributes(invocation)
    assert attributes["server.address"] == host
    assert attributes["server.port"] == port or (443 if scheme == "https" else 80)
    recorded = " ".join(str(value) for value in attributes.values())
    assert "SECRETKEY123" not in recorded
    assert ":pw" not in recorded
    assert userinfo is None or f"{userinfo}:" not in recorded


def test_no_endpoint_no_server_attributes() -> None:
    """A provider without a base URL (the demo) records no server."""
    invocation = ModelInvocation(
        runtime_id="r",
        provider="gemini",
        model="m",
        base_url=None,
        credentials=Credentials(),
        history=(),
    )
    attributes = genai.request_attributes(invocation)
    assert "server.address" not in attributes
    assert attributes["gen_ai.provider.name"] == "gcp.gemini"


@given(
    parent=st.none() | st.text(string.hexdigits, min_size=1, max_size=8),
    subagent=st.none() | st.text(min_size=1, max_size=8),
)
def test_identity_names_the_scope_and_only_what_it_has(
    parent: str | None, subagent: str | None
) -> None:
    """Runtime and session ids always; parent runtime and subagent name when the scope has
    them (never a null attribute)."""
    state = AgentRuntimeState.create(
        provider="demo", model="m", parent_runtime_id=parent, subagent_name=subagent
    )
    identity = genai.identity_attributes(state)
    assert identity["chatscope.runtime.id"] == state.runtime_id
    assert identity["chatscope.session.id"] == identity["gen_ai.conversation.id"]
    assert identity.get("chatscope.parent_runtime.id") == parent
    assert identity.get("chatscope.subagent.name") == subagent
    assert None not in identity.values()


def test_error_attributes_name_the_class_and_a_provider_error_its_status() -> None:
    """`error.type` is the error's class; a provider error adds its category and status."""
    assert genai.error_attributes(ValueError("x")) == {"error.type": "ValueError"}
    limited = RateLimitError("slow", provider="openai", status=429)
    assert genai.error_attributes(limited) == {
        "error.type": "RateLimitError",
        "chatscope.error.category": "rate_limit",
        "http.response.status_code": 429,
    }
