"""Typed output in the chat loop: the schema each call asks for, validation, one round of
feedback, `OutputValidationError` with history untouched, and the shapes `output_type` takes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

from chatscope.errors import ConfigurationError, OutputValidationError
from chatscope.services.chat.output import (
    InvalidAnswerError,
    output_spec,
    strict_json_schema,
    wrap_schema,
)
from chatscope.services.events import FinishReason, TextDelta, TurnDone
from chatscope.services.frozen import thaw
from chatscope.services.messages import Message, Role
from chatscope.services.runtime.invocation import ModelInvocation, OutputSchema
from chatscope.testing.fakes import FunctionProvider, ScriptedProvider, ScriptedReply
from tests.support.scopes import make_chat, make_context


class City(BaseModel):
    """A city and its population."""

    name: str
    population: int
    nickname: str | None = None


@dataclass
class Point:
    x: int
    y: int


class Pair(TypedDict):
    left: str
    right: int


CITY_JSON = '{"name": "Paris", "population": 2100000, "nickname": null}'


def _replies(*texts: str) -> ScriptedProvider:
    return ScriptedProvider([ScriptedReply(text=text) for text in texts])


async def test_a_valid_answer_becomes_the_typed_output_and_the_turn_is_stored() -> None:
    """The schema goes with the call; the answer comes back as a validated instance."""
    provider = _replies(CITY_JSON)
    chat = make_chat(make_context(provider))
    turn = await chat.send("Biggest French city?", output_type=City)
    assert turn.output == City(name="Paris", population=2100000)
    assert turn.text == CITY_JSON
    [invocation] = provider.invocations
    schema = invocation.output_schema
    assert schema is not None
    assert (schema.name, schema.strict) == ("City", True)
    assert thaw(schema.schema)["required"] == ["name", "population", "nickname"]
    assert thaw(schema.schema)["additionalProperties"] is False
    assert [m.role for m in await chat.context.history.messages()] == [Role.USER, Role.ASSISTANT]


async def test_without_an_output_type_nothing_changes() -> None:
    """A plain prompt asks for no schema and its turn has no output."""
    provider = _replies("hello")
    turn = await make_chat(make_context(provider)).send("hi")
    assert turn.output is None
    assert provider.invocations[0].output_schema is None


async def test_an_invalid_answer_is_sent_back_once_and_the_second_one_counts() -> None:
    """The feedback is a user message of the same turn, seen by the second request."""
    provider = _replies('{"name": "Paris"}', CITY_JSON)
    chat = make_chat(make_context(provider))
    turn = await chat.send("Biggest French city?", output_type=City)
    assert turn.output == City(name="Paris", population=2100000)
    assert turn.text == CITY_JSON  # the rejected answer is left out of the turn's text
    assert turn.model_calls == 2
    second = provider.invocations[1]
    assert second.output_schema == provider.invocations[0].output_schema
    assert [m.role for m in second.history] == [Role.USER, Role.ASSISTANT, Role.USER]
    feedback = second.history[-1].text
    assert "population: Field required" in feedback
    assert "'City' schema" in feedback
    stored = await chat.context.history.messages()
    assert [m.role for m in stored] == [Role.USER, Role.ASSISTANT, Role.USER, Role.ASSISTANT]


async def test_two_invalid_answers_raise_and_leave_history_as_it_was() -> None:
    """After the one retry the turn fails with the last raw text and the problem."""
    provider = ScriptedProvider(
        [
            ScriptedReply(text="earlier answer"),
            ScriptedReply(text="not json"),
            ScriptedReply(text="[1"),
        ]
    )
    chat = make_chat(make_context(provider))
    await chat.send("first prompt")
    before = await chat.context.history.messages()
    with pytest.raises(OutputValidationError) as caught:
        await chat.send("typed prompt", output_type=City)
    error = caught.value
    assert (error.raw_text, error.attempts, error.schema_name) == ("[1", 2, "City")
    assert "not valid JSON" in error.problem
    assert "'City'" in str(error)
    assert await chat.context.history.messages() == before
    assert len(provider.invocations) == 3


async def test_output_retries_zero_fails_at_the_first_invalid_answer() -> None:
    """`output_retries=0` sends nothing back."""
    provider = _replies('{"name": 1}')
    chat = make_chat(make_context(provider), output_retries=0)
    with pytest.raises(OutputValidationError) as caught:
        await chat.send("x", output_type=City)
    assert caught.value.attempts == 1
    assert len(provider.invocations) == 1
    assert await chat.context.history.messages() == ()


def test_output_retries_must_not_be_negative() -> None:
    """A negative number of retries is refused when the session is made."""
    with pytest.raises(ValueError, match="output_retries"):
        make_chat(make_context(_replies()), output_retries=-1)


async def test_a_raw_json_schema_dict_gives_the_parsed_json() -> None:
    """A JSON-schema dict is checked with jsonschema; the output is the plain parsed JSON."""
    schema = {
        "title": "Answer",
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["tags"],
    }
    provider = _replies('{"tags": 3}', '{"tags": ["a", "b"]}')
    chat = make_chat(make_context(provider))
    turn = await chat.send("tag it", output_type=schema)
    assert turn.output == {"tags": ["a", "b"]}
    assert "tags: 3 is not of type 'array'" in provider.invocations[1].history[-1].text
    sent = provider.invocations[0].output_schema
    assert sent is not None
    assert sent.name == "Answer"


async def test_a_non_object_type_is_wrapped_for_the_model_and_unwrapped_after() -> None:
    """`list[int]` travels as `{"result": [...]}` and comes back as the bare list."""
    provider = _replies('{"result": [1, 2, 3]}')
    turn = await make_chat(make_context(provider)).send("count", output_type=list[int])
    assert turn.output == [1, 2, 3]
    schema = provider.invocations[0].output_schema
    assert schema is not None
    assert thaw(schema.schema) == {
        "type": "object",
        "properties": {"result": {"type": "array", "items": {"type": "integer"}}},
        "required": ["result"],
        "additionalProperties": False,
    }


@pytest.mark.parametrize(
    ("output_type", "answer", "expected"),
    [
        (Point, '{"x": 1, "y": 2}', Point(1, 2)),
        (Pair, '{"left": "a", "right": 2}', {"left": "a", "right": 2}),
        (int, '{"result": 7}', 7),
        (str | None, '{"result": null}', None),
        (dict[str, int], '{"a": 1}', {"a": 1}),
    ],
)
async def test_any_type_pydantic_handles_can_be_asked_for(
    output_type: Any, answer: str, expected: Any
) -> None:
    """Dataclasses, TypedDicts, scalars, unions and dicts all come back validated."""
    turn = await make_chat(make_context(_replies(answer))).send("x", output_type=output_type)
    assert turn.output == expected


async def test_the_stream_ends_with_the_typed_output() -> None:
    """`stream(..., output_type=...)` puts the output on the final `TurnDone`."""
    provider = ScriptedProvider([ScriptedReply(text=CITY_JSON, chunks=4)])
    chat = make_chat(make_context(provider))
    events = [event async for event in chat.stream("x", output_type=City)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == CITY_JSON
    done = events[-1]
    assert isinstance(done, TurnDone)
    assert done.turn.output == City(name="Paris", population=2100000)


async def test_a_typed_turn_may_call_tools_before_it_answers() -> None:
    """Tool calls run as usual; only the final answer is validated."""

    def respond(invocation: ModelInvocation) -> ScriptedReply:
        assert invocation.output_schema is not None
        if invocation.history[-1].role is Role.USER:
            return ScriptedReply(tool_calls=[("missing_tool", {})])
        return ScriptedReply(text='{"result": 4}')

    provider = FunctionProvider(respond)
    turn = await make_chat(make_context(provider)).send("x", output_type=int)
    assert turn.output == 4
    assert turn.tool_results[0].error is not None
    assert len(provider.invocations) == 2


async def test_a_turn_limit_reached_before_an_answer_leaves_output_unset() -> None:
    """A typed turn that runs out of turns ends like any other, with no output."""
    provider = FunctionProvider(lambda _: ScriptedReply(tool_calls=[("missing_tool", {})]))
    turn = await make_chat(make_context(provider), max_turns=2).send("x", output_type=int)
    assert (turn.finish_reason, turn.output) == (FinishReason.MAX_TURNS, None)


async def test_asking_again_after_feedback_does_not_use_up_the_turn_limit() -> None:
    """With `max_turns=1` the one retry still happens."""
    provider = _replies("nope", '{"result": 1}')
    turn = await make_chat(make_context(provider), max_turns=1).send("x", output_type=int)
    assert turn.output == 1
    assert turn.finish_reason is FinishReason.STOP


async def test_an_empty_answer_is_reported_as_empty() -> None:
    """An answer without text gets its own clear problem."""
    provider = _replies("", "")
    with pytest.raises(OutputValidationError, match="the answer is empty"):
        await make_chat(make_context(provider)).send("x", output_type=City)


def test_a_type_without_a_json_schema_is_a_configuration_error() -> None:
    """An `output_type` pydantic cannot describe is refused before any call."""
    with pytest.raises(ConfigurationError, match="has no JSON schema"):
        output_spec(Callable[[], int])
    with pytest.raises(ConfigurationError, match="has no JSON schema"):
        output_spec(5)


def test_an_invalid_json_schema_dict_is_a_configuration_error() -> None:
    """A dict that is no JSON schema is refused with jsonschema's reason."""
    with pytest.raises(ConfigurationError, match="not a valid JSON schema"):
        output_spec({"type": 5})


async def test_a_bad_output_type_raises_before_the_stream_starts() -> None:
    """`stream` checks the output type when called, not when first iterated."""
    chat = make_chat(make_context(_replies()))
    with pytest.raises(ConfigurationError):
        chat.stream("x", output_type={"type": "nonsense"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('```json\n{"result": 2}\n```', 2),
        ('Here it is: {"result": 3}', 3),
        ("5", 5),
        ('  {"result": 6}  ', 6),
    ],
)
def test_answers_asked_for_in_words_are_read_leniently(text: str, expected: int) -> None:
    """A fence, a line of prose before the JSON and a bare wrapped value are tolerated."""
    assert output_spec(int).parse(text) == expected


def test_parse_problems_name_what_is_wrong() -> None:
    """The problem text is short: where and what, a few at most."""
    spec = output_spec(list[int])
    with pytest.raises(InvalidAnswerError, match=r"^1: Input should be a valid integer"):
        spec.parse('{"result": [1, "x"]}')
    many = '{"result": ["a", "b", "c", "d", "e", "f", "g"]}'
    with pytest.raises(InvalidAnswerError, match=r"and 2 more$"):
        spec.parse(many)


def test_feedback_of_a_wrapped_type_shows_the_wrapper() -> None:
    """The model is told the object shape it must answer in."""
    spec = output_spec(list[int])
    message = spec.feedback(InvalidAnswerError("bad"))
    assert message == Message.user(message.text)
    assert '{"result": ...}' in message.text


def test_strict_mode_is_claimed_only_where_it_holds() -> None:
    """An open object (a dict field) or an `Any` cannot be strict; the schema goes as it is."""

    class Loose(BaseModel):
        counts: dict[str, int]

    class Anything(BaseModel):
        value: Any

    for output_type in (Loose, Anything, dict[str, int]):
        spec = output_spec(output_type)
        assert spec.schema.strict is False, output_type
    assert output_spec(City).schema.strict is True


def test_nested_models_keep_their_definitions_and_refs() -> None:
    """`$defs` stay at the root, nested objects are closed too, `$ref`s still resolve."""

    class Street(BaseModel):
        name: str

    class Address(BaseModel):
        street: Street
        streets: list[Street] = []

    schema = thaw(output_spec(Address).schema.schema)
    assert schema["properties"]["street"] == {"$ref": "#/$defs/Street"}
    assert schema["$defs"]["Street"]["additionalProperties"] is False
    assert schema["required"] == ["street", "streets"]
    assert "default" in schema["properties"]["streets"]


def test_a_ref_with_sibling_keys_is_inlined() -> None:
    """Strict mode (and Gemini) refuse keys beside a `$ref`: it is resolved in place."""
    schema = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A", "description": "the a"}},
        "$defs": {"A": {"type": "object", "properties": {"v": {"type": "integer"}}}},
    }
    strict = strict_json_schema(schema)
    assert strict is not None
    assert strict["properties"]["a"] == {
        "type": "object",
        "properties": {"v": {"type": "integer"}},
        "required": ["v"],
        "additionalProperties": False,
        "description": "the a",
    }


def test_one_of_becomes_any_of_and_none_defaults_go() -> None:
    """Strict mode has `anyOf` only; a `None` default says nothing to it."""
    schema = {
        "type": "object",
        "properties": {
            "v": {"oneOf": [{"type": "integer"}, {"type": "null"}], "default": None},
        },
    }
    strict = strict_json_schema(schema)
    assert strict is not None
    assert strict["properties"]["v"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}


def test_wrapping_moves_definitions_to_the_wrapper_and_drops_document_keys() -> None:
    """A wrapped schema's references still resolve from the root."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "array",
        "items": {"$ref": "#/$defs/X"},
        "$defs": {"X": {"type": "string"}},
    }
    wrapped, was_wrapped = wrap_schema(schema)
    assert was_wrapped
    assert wrapped["$defs"] == {"X": {"type": "string"}}
    assert wrapped["properties"]["result"] == {"type": "array", "items": {"$ref": "#/$defs/X"}}
    assert "$schema" not in json.dumps(wrapped)


def test_an_output_schema_names_itself_safely_and_has_an_object_root() -> None:
    """Names are made wire-safe; a non-object root is refused."""
    made = OutputSchema.create("my schema: v1", {"type": "object"}, strict=False)
    assert made.name == "my_schema_v1"
    assert OutputSchema.create("", {"type": "object"}, strict=False).name == "output"
    with pytest.raises(ValueError, match="object root"):
        OutputSchema.create("x", {"type": "array"}, strict=False)
    with pytest.raises(ValueError, match="not 1-64"):
        OutputSchema("bad name", made.schema)
