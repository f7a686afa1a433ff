"""Properties of typed output: a dumped instance comes back equal through the output path and
fits the schema the model is sent; the strict transform closes every object, is idempotent and
keeps the schema valid; wrapping and unwrapping lose nothing."""

from __future__ import annotations

import enum
import json
import string
from collections.abc import Iterator
from typing import Any, Literal

import jsonschema
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from chatscope.services.chat import output_spec, strict_json_schema
from chatscope.services.chat.output import wrap_schema
from chatscope.services.frozen import thaw


class Colour(enum.StrEnum):
    RED = "red"
    GREEN = "green"


class Tag(BaseModel):
    label: str
    weight: float | None = None


class Record(BaseModel):
    """A model with nesting, optional fields, lists, enums and literals."""

    name: str
    count: int
    ratio: float
    active: bool
    colour: Colour
    mode: Literal["fast", "slow"] = "fast"
    note: str | None = None
    tags: list[Tag] = []
    parent: Tag | None = None


finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
texts = st.text(max_size=20)
tags = st.builds(Tag, label=texts, weight=st.none() | finite)
records = st.builds(
    Record,
    name=texts,
    count=st.integers(-(2**53), 2**53),
    ratio=finite,
    active=st.booleans(),
    colour=st.sampled_from(Colour),
    mode=st.sampled_from(["fast", "slow"]),
    note=st.none() | texts,
    tags=st.lists(tags, max_size=3),
    parent=st.none() | tags,
)


@given(record=records)
def test_a_dumped_instance_comes_back_equal(record: Record) -> None:
    """JSON-dumping a model instance and reading it through the output path is an identity."""
    assert output_spec(Record).parse(record.model_dump_json()) == record


@given(record=records)
def test_a_dumped_instance_fits_the_schema_the_model_is_sent(record: Record) -> None:
    """The strict schema asks for nothing a full dump lacks: every instance can be answered."""
    spec = output_spec(Record)
    assert spec.schema.strict
    jsonschema.validate(record.model_dump(mode="json"), thaw(spec.schema.schema))


@given(items=st.lists(records, max_size=3))
def test_a_list_of_models_is_wrapped_and_comes_back_equal(items: list[Record]) -> None:
    """A list of models travels as `{"result": [...]}` and comes back as the same list."""
    spec = output_spec(list[Record])
    assert spec.wrapped
    answer = {"result": [item.model_dump(mode="json") for item in items]}
    jsonschema.validate(answer, thaw(spec.schema.schema))
    assert spec.parse(json.dumps(answer)) == items


int_lists = st.lists(st.integers(-(2**63), 2**63), max_size=8)
int_dicts = st.dictionaries(st.text(max_size=8), st.integers(-(2**63), 2**63), max_size=6)


@given(value=int_lists)
def test_wrapping_and_unwrapping_a_list_is_an_identity(value: list[int]) -> None:
    """`list[int]` is wrapped for the model; the wrapped and the bare answer give the value."""
    spec = output_spec(list[int])
    assert spec.wrapped
    wrapped = {"result": value}
    jsonschema.validate(wrapped, thaw(spec.schema.schema))
    assert spec.parse(json.dumps(wrapped)) == value
    assert spec.parse(json.dumps(value)) == value


@given(value=int_dicts)
def test_a_dict_needs_no_wrapper_and_comes_back_equal(value: dict[str, int]) -> None:
    """`dict[str, int]` has an object root already: no wrapper, the value as it was."""
    spec = output_spec(dict[str, int])
    assert not spec.wrapped
    jsonschema.validate(value, thaw(spec.schema.schema))
    assert spec.parse(json.dumps(value)) == value


@given(value=int_dicts)
def test_a_raw_schema_gives_back_the_parsed_json(value: dict[str, int]) -> None:
    """A JSON-schema dict's output is exactly the JSON the model sent."""
    spec = output_spec({"type": "object", "additionalProperties": {"type": "integer"}})
    assert spec.parse(json.dumps(value)) == value


# --- random schemas for the strict transform ----------------------------------------------------

names = st.text(string.ascii_letters + "_", min_size=1, max_size=6)
leaves: st.SearchStrategy[dict[str, Any]] = st.sampled_from(
    [
        {"type": "string"},
        {"type": "integer", "minimum": 0},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"enum": ["a", "b"]},
        {"const": 3},
        {"type": ["string", "null"], "default": None},
    ]
)


def _object(properties: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "object", "properties": properties}
    if properties:
        node["required"] = data.draw(
            st.lists(st.sampled_from(sorted(properties)), unique=True), label="required"
        )
    if data.draw(st.booleans(), label="closed"):
        node["additionalProperties"] = False
    if data.draw(st.booleans(), label="titled"):
        node["title"] = "T"
    return node


@st.composite
def schemas(draw: st.DrawFn, depth: int = 3) -> dict[str, Any]:
    """A nested schema of objects, arrays, unions and leaves, each strict-compatible."""
    if depth == 0:
        return dict(draw(leaves))
    kind = draw(st.sampled_from(["leaf", "object", "array", "anyOf", "oneOf"]))
    if kind == "leaf":
        return dict(draw(leaves))
    if kind == "object":
        properties = draw(st.dictionaries(names, schemas(depth - 1), max_size=4))
        return _object(properties, draw(st.data()))
    if kind == "array":
        return {"type": "array", "items": draw(schemas(depth - 1))}
    return {kind: draw(st.lists(schemas(depth - 1), min_size=1, max_size=3))}


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for item in node:
            yield from _nodes(item)


@given(schema=schemas())
def test_the_strict_transform_closes_every_object_and_requires_every_property(
    schema: dict[str, Any],
) -> None:
    """Every object is closed and lists exactly its properties as required; no `oneOf` or
    `None` default is left, and the result is still a valid JSON schema."""
    rooted, _ = wrap_schema(schema)
    strict = strict_json_schema(rooted)
    assert strict is not None
    jsonschema.Draft202012Validator.check_schema(strict)
    for node in _nodes(strict):
        if "properties" in node and isinstance(node["properties"], dict):
            assert node["additionalProperties"] is False
            assert node["required"] == list(node["properties"])
        assert "oneOf" not in node
        assert node.get("default", 0) is not None


@given(schema=schemas())
def test_the_strict_transform_is_idempotent(schema: dict[str, Any]) -> None:
    """A strict schema is its own strict form."""
    strict = strict_json_schema(wrap_schema(schema)[0])
    assert strict is not None
    assert strict_json_schema(strict) == strict


@given(schema=schemas(), extra=st.sampled_from([True, {}, {"type": "integer"}]))
def test_an_open_object_anywhere_has_no_strict_form(schema: dict[str, Any], extra: Any) -> None:
    """Extra properties allowed at any depth make the whole schema non-strict."""
    rooted, _ = wrap_schema(schema)
    rooted["properties"]["open"] = {
        "type": "object",
        "properties": {},
        "additionalProperties": extra,
    }
    assert strict_json_schema(rooted) is None
