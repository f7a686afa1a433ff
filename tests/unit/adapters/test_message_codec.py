"""The stored form of messages: every field kept, defaults left out, anything unknown refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.adapters.storage.codec import (
    MessageCodecError,
    decode_message,
    decode_usage,
    encode_message,
    encode_usage,
    message_from_dict,
    message_to_dict,
)
from chatscope.services.messages import (
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
    Usage,
)
from tests.support.adapter_helpers import JSON_VALUES
from tests.support.message_strategies import messages, usages

# Any text, surrogates, control characters and line separators included.
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=40)
plain_text_messages = st.builds(
    Message,
    st.sampled_from(Role),
    st.lists(st.builds(TextBlock, ANY_TEXT), max_size=3).map(tuple),
)


def compact_json(data: Any) -> str:
    """`data` as the stored form writes JSON: compact, characters as they are."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def test_signatures_provider_names_and_item_ids_are_kept() -> None:
    """Fields only one provider understands are part of the stored form."""
    message = Message(
        Role.ASSISTANT,
        (
            ThinkingBlock("hmm", signature="sig-1", redacted_data="opaque", provider="anthropic"),
            TextBlock("hi", signature="gemini-sig"),
            ToolCallBlock.create(
                "call_1", "glob", {"pattern": "*.py"}, item_id="fc_9", provider="openai-responses"
            ),
        ),
    )
    data = message_to_dict(message)
    assert data["blocks"][0] == {
        "type": "thinking",
        "text": "hmm",
        "signature": "sig-1",
        "redacted_data": "opaque",
        "provider": "anthropic",
    }
    assert data["blocks"][2]["item_id"] == "fc_9"
    assert decode_message(encode_message(message)) == message


def test_fields_at_their_default_are_left_out() -> None:
    """A plain text block stores just its type and text."""
    assert message_to_dict(Message.user("hello")) == {
        "role": "user",
        "blocks": [{"type": "text", "text": "hello"}],
    }


def test_a_tool_error_is_kept_apart_from_a_result() -> None:
    """An error result reads back as an error, not as a result text."""
    message = Message(Role.TOOL, (ToolResultBlock("c1", "read_file", error="no such file"),))
    decoded = decode_message(encode_message(message))
    assert decoded.tool_results[0].is_error
    assert decoded.tool_results[0].error == "no such file"


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"role": "user", "blocks": ["text"]}', "block is a JSON object"),
        (
            '{"role": "tool", "blocks": [{"type": "tool_result", "call_id": "c", "name": "n"}]}',
            "one of",
        ),
    ],
)
def test_what_is_not_a_stored_message_is_refused(payload: str, problem: str) -> None:
    """Text that is no message, or a tool result without result or error, raises."""
    with pytest.raises(MessageCodecError, match=problem):
        decode_message(payload)


# A field every block of the kind must hold as a string.
REQUIRED_TEXT_FIELD = {
    "text": "text",
    "thinking": "text",
    "tool_call": "name",
    "tool_result": "call_id",
}
CORRUPTIONS = ("unknown field", "unknown block type", "field of the wrong type", "field missing")


@given(
    message=messages.filter(lambda message: bool(message.blocks)),
    corruption=st.sampled_from([*CORRUPTIONS, "unknown role"]),
    data=st.data(),
)
def test_a_message_this_version_cannot_read_is_refused_not_guessed(
    message: Message, corruption: str, data: st.DataObject
) -> None:
    """An unknown role, block type or field, a missing field or a field of the wrong type in any
    block of a stored message raises `MessageCodecError` naming the problem."""
    stored = message_to_dict(message)
    block = data.draw(st.sampled_from(stored["blocks"]))
    field = REQUIRED_TEXT_FIELD[block["type"]]
    match corruption:
        case "unknown role":
            stored["role"] = "system"
        case "unknown field":
            block["colour_of_the_sky"] = "blue"
        case "unknown block type":
            block["type"] = "hologram"
        case "field of the wrong type":
            block[field] = 42
        case _:
            del block[field]
    with pytest.raises(MessageCodecError) as caught:
        message_from_dict(json.loads(json.dumps(stored)))
    expected = {"unknown role": "system", "unknown field": "colour_of_the_sky"}
    expected |= {"unknown block type": "hologram", "field of the wrong type": repr(field)}
    assert expected.get(corruption, field) in str(caught.value)


def test_unknown_usage_fields_are_refused() -> None:
    """Usage from a newer version with more counters is refused, not half-read."""
    with pytest.raises(MessageCodecError, match="usage"):
        decode_usage('{"input_tokens": 1, "audio_tokens": 2}')


@given(data=st.dictionaries(st.sampled_from(["role", "blocks", "type", "text"]), JSON_VALUES))
def test_decoding_any_json_object_gives_a_message_or_a_codec_error(data: dict[str, Any]) -> None:
    """Whatever JSON object is stored, reading it yields a Message or `MessageCodecError`."""
    try:
        message = message_from_dict(data)
    except MessageCodecError:
        return
    assert isinstance(message, Message)
    assert message_from_dict(json.loads(json.dumps(message_to_dict(message)))) == message


@given(
    blocks=st.lists(
        st.dictionaries(st.sampled_from(["type", "text", "id", "name", "error"]), JSON_VALUES),
        max_size=3,
    ),
    role=st.sampled_from(["user", "assistant", "tool", "system", ""]),
)
def test_decoding_arbitrary_blocks_never_fails_any_other_way(
    blocks: list[dict[str, Any]], role: str
) -> None:
    """Malformed blocks of any shape are reported as `MessageCodecError`, never another error."""
    try:
        message = message_from_dict({"role": role, "blocks": blocks})
    except MessageCodecError:
        return
    assert str(message.role) == role
    assert len(message.blocks) == len(blocks)


@given(message=plain_text_messages | messages)
def test_a_message_is_written_as_the_compact_json_of_its_dictionary(message: Message) -> None:
    """Plain text messages are written without building the dictionary first; the text is the
    same as the dictionary's compact JSON, for every message, and reads back as the message."""
    text = encode_message(message)
    assert text == compact_json(message_to_dict(message))
    assert decode_message(text) == message


@given(message=plain_text_messages, signature=st.text(max_size=5), at=st.integers(0, 2))
def test_a_signed_text_block_keeps_its_signature(message: Message, signature: str, at: int) -> None:
    """A text block with a signature (Gemini's) is not plain text: the signature is stored."""
    blocks = list(message.blocks)
    blocks.insert(min(at, len(blocks)), TextBlock("signed", signature=signature))
    signed = Message(message.role, tuple(blocks))
    assert encode_message(signed) == compact_json(message_to_dict(signed))
    assert decode_message(encode_message(signed)) == signed


@given(usage=usages | st.builds(Usage, *(st.integers(0, 2**63) for _ in range(4))))
def test_usage_is_written_as_the_compact_json_of_its_counts(usage: Usage) -> None:
    """Every counter is written, in field order, and reads back as the same usage."""
    counts = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_tokens": usage.cached_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }
    assert encode_usage(usage) == compact_json(counts)
    assert decode_usage(encode_usage(usage)) == usage


def test_usage_holding_other_numbers_is_written_as_json_writes_them() -> None:
    """A counter that is not an `int` (a float or bool a caller put there) is still valid JSON."""
    usage = Usage(input_tokens=1.5, output_tokens=True)  # type: ignore[arg-type]
    assert json.loads(encode_usage(usage)) == {
        "input_tokens": 1.5,
        "output_tokens": True,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
    }
