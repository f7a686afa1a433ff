"""Properties of function tools: faithful arguments and results, refusals, and the schema."""

from __future__ import annotations

import asyncio
import inspect
import json
import keyword
import string
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.errors import ToolError
from chatscope.services.frozen import deep_freeze, thaw
from chatscope.services.tools.function import FunctionTool, tool

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
non_text_json = json_values.filter(lambda value: not isinstance(value, str) and value is not None)
identifiers = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda name: not keyword.iskeyword(name)
)
words = st.text(alphabet=string.ascii_letters + string.digits + ".,'()-", min_size=1, max_size=8)
SCHEMAS: dict[type, dict[str, str]] = {
    int: {"type": "integer"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    float: {"type": "number"},
}
DEFAULTS: dict[type, st.SearchStrategy[Any]] = {
    int: st.integers(),
    str: st.text(max_size=5),
    bool: st.booleans(),
    float: st.floats(allow_nan=False, allow_infinity=False),
}
specs = st.lists(
    st.tuples(identifiers, st.sampled_from(list(SCHEMAS)), st.booleans()),
    max_size=6,
    unique_by=lambda spec: spec[0],
)


def run(made: FunctionTool[Any, Any], arguments: Mapping[str, Any]) -> str:
    return asyncio.run(made.run(arguments))


def refusal(made: FunctionTool[Any, Any], arguments: Mapping[str, Any]) -> str:
    with pytest.raises(ToolError) as caught:
        run(made, arguments)
    return str(caught.value)


def made_from(
    spec: list[tuple[str, type, bool]], defaults: dict[str, Any], doc: str | None = None
) -> FunctionTool[..., Any]:
    """A tool whose signature is `spec`: keyword-only (name, type), with a default or not."""

    def function(**kwargs: Any) -> str:
        return json.dumps(kwargs, sort_keys=True)

    function.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=defaults[name] if has_default else inspect.Parameter.empty,
            )
            for name, _, has_default in spec
        ]
    )
    function.__annotations__ = {name: kind for name, kind, _ in spec} | {"return": str}
    function.__doc__ = doc
    return tool(function)


@given(json_values)
def test_any_argument_arrives_as_the_plain_value_sent(value: Any) -> None:
    """Whatever JSON the model sends for an `Any` parameter, the function gets it thawed."""
    received: list[Any] = []

    @tool
    async def take(value: Any) -> str:
        received.append(value)
        return ""

    run(take, deep_freeze({"value": value}))
    assert received == [value]
    assert json.dumps(received[0]) == json.dumps(value)


@given(st.integers(), st.text(), st.lists(st.integers(), max_size=5))
def test_typed_arguments_arrive_unchanged(number: int, text: str, numbers: list[int]) -> None:
    """Valid values of simple types reach the function exactly, frozen lists as lists."""
    received: list[tuple[int, str, list[int]]] = []

    @tool
    def take(n: int, s: str, xs: list[int]) -> None:
        received.append((n, s, xs))

    assert run(take, deep_freeze({"n": number, "s": text, "xs": numbers})) == ""
    assert received == [(number, text, numbers)]
    assert type(received[0][2]) is list


@given(non_text_json)
def test_results_are_the_json_of_what_the_function_returned(value: Any) -> None:
    """A non-text result comes back as JSON text that decodes to the same value."""

    @tool
    async def give() -> Any:
        return value

    assert json.loads(run(give, {})) == value


@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=8))
def test_annotated_results_are_compact_json(numbers: list[int]) -> None:
    """A `list[int]` result is exactly `json.dumps` with compact separators."""

    @tool
    def give() -> list[int]:
        return numbers

    assert run(give, {}) == json.dumps(numbers, separators=(",", ":"))


wrong_for_int = st.one_of(
    st.text(alphabet=string.ascii_letters, min_size=1),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not float(x).is_integer()),
)
wrong_for_str = st.one_of(
    st.integers(), st.booleans(), st.none(), st.lists(st.text(max_size=3), max_size=3)
)


@given(wrong_for_int, wrong_for_str)
def test_wrongly_typed_arguments_are_refused_before_the_call(bad_int: Any, bad_str: Any) -> None:
    """A value of the wrong type is a `ToolError` naming the argument; nothing is called."""
    calls: list[object] = []

    @tool
    async def take(n: int, s: str) -> str:
        calls.append(n)
        return ""

    assert "n: " in refusal(take, deep_freeze({"n": bad_int, "s": "ok"}))
    assert "s: " in refusal(take, deep_freeze({"n": 1, "s": bad_str}))
    assert calls == []


@given(identifiers.filter(lambda name: name not in {"n", "s"}), json_values)
def test_unknown_arguments_are_refused_by_name(extra: str, value: Any) -> None:
    """An argument the function does not take is refused and named; nothing is called."""
    calls: list[object] = []

    @tool
    def take(n: int, s: str = "") -> str:
        calls.append(n)
        return ""

    message = refusal(take, deep_freeze({"n": 1, extra: value}))
    assert f"{extra}: unexpected argument; expected n, s" in message
    assert calls == []


@given(st.text(alphabet=string.ascii_letters, min_size=24, max_size=200))
def test_refusals_do_not_echo_the_input(sent: str) -> None:
    """The model's invalid value is not repeated back in the refusal."""

    @tool
    def take(n: int) -> str:
        return ""

    assert sent not in refusal(take, {"n": sent})


@given(st.text(alphabet=string.ascii_letters + string.digits, min_size=8, max_size=40))
def test_keys_in_failures_never_reach_the_message(suffix: str) -> None:
    """A key-shaped string in an exception raised by the function is redacted."""
    key = f"sk-ant-{suffix}"

    @tool
    def leak() -> str:
        raise ValueError(f"refused with {key}")

    message = refusal(leak, {})
    assert key not in message
    assert message.startswith("leak failed: ValueError: refused with")


@given(specs, st.data())
def test_the_schema_declares_each_parameter_and_requires_those_without_defaults(
    spec: list[tuple[str, type, bool]], data: st.DataObject
) -> None:
    """The parameters are `deep_freeze` of the schema written out by hand from the signature."""
    defaults = {name: data.draw(DEFAULTS[kind]) for name, kind, has in spec if has}
    expected = {
        "type": "object",
        "properties": {
            name: SCHEMAS[kind] | ({"default": defaults[name]} if has else {})
            for name, kind, has in spec
        },
        "required": [name for name, _, has in spec if not has],
        "additionalProperties": False,
    }
    assert made_from(spec, defaults).declaration.parameters == deep_freeze(expected)


@given(specs, st.data())
def test_documented_parameters_are_described_however_the_lines_wrap(
    spec: list[tuple[str, type, bool]], data: st.DataObject
) -> None:
    """Google `Args:` and Sphinx `:param:` texts, wrapped anywhere, become the descriptions."""
    texts = {name: data.draw(st.lists(words, min_size=1, max_size=6)) for name, _, _ in spec}
    sphinx = data.draw(st.booleans())
    lines = ["Do the thing.", "", "Args:"] if not sphinx else ["Do the thing.", ""]
    for name, chunks in texts.items():
        cut = data.draw(st.integers(min_value=1, max_value=len(chunks)))
        head = f":param {name}: " if sphinx else f"    {name}: "
        lines.append(head + " ".join(chunks[:cut]))
        lines.extend(" " * 8 + chunk for chunk in chunks[cut:])
    made = made_from(spec, {name: 0 for name, _, _ in spec}, "\n".join(lines))
    described = {
        name: schema["description"]
        for name, schema in thaw(made.declaration.parameters)["properties"].items()
    }
    assert described == {name: " ".join(chunks) for name, chunks in texts.items()}
    assert made.declaration.description == "Do the thing."


def test_helpers_build_working_tools() -> None:
    """The signature-building helper gives a tool that validates and calls (sanity check)."""
    made: Callable[..., Any] = made_from([("a", int, False), ("b", str, True)], {"b": "x"})
    assert isinstance(made, FunctionTool)
    assert json.loads(run(made, {"a": 1})) == {"a": 1, "b": "x"}
