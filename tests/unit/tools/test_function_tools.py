"""Function tools: the schema read from a signature, validation before the call, and results."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import threading
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field, field_validator

from chatscope.errors import ConfigurationError, ToolError
from chatscope.services.frozen import FrozenDict, deep_freeze, thaw
from chatscope.services.tools.function import FunctionTool, tool
from chatscope.services.tools.ports import Tool, ToolContext

CONTEXT = ToolContext(session_id="s1", runtime_id="r1", provider="openai", model="gpt")
KEY = "sk-proj-Abcdefgh1234567890"


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Item(BaseModel):
    name: str
    qty: int = 1


class Order(BaseModel):
    """An order of items."""

    id: int
    items: list[Item]
    color: Color = Color.RED


class Node(BaseModel):
    name: str
    children: list[Node] = []


class Secretive(BaseModel):
    token: str

    @field_validator("token")
    @classmethod
    def _refuse(cls, value: str) -> str:
        raise ValueError(f"rejected {value}")


class Opaque:
    """A type pydantic has no schema for."""


@dataclasses.dataclass
class Point:
    x: int
    y: int


def parameters(made: FunctionTool[Any, Any]) -> dict[str, Any]:
    thawed: dict[str, Any] = thaw(made.declaration.parameters)
    return thawed


def properties(made: FunctionTool[Any, Any]) -> dict[str, Any]:
    found: dict[str, Any] = parameters(made)["properties"]
    return found


def keys_anywhere(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in keys_anywhere(item)}
    if isinstance(value, list):
        return {key for item in value for key in keys_anywhere(item)}
    return set()


@tool
async def weather(city: str, units: Literal["c", "f"] = "c") -> str:
    """Tell the weather in a city.

    Args:
        city: The city's name,
            in English.
        units: Celsius or Fahrenheit.

    Returns:
        A sentence.
    """
    return f"{city}: 20{units}"


def test_schema_has_types_defaults_and_required_parameters() -> None:
    """Parameters without a default are required; defaults and Literal choices are declared."""
    assert parameters(weather) == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city's name, in English."},
            "units": {
                "type": "string",
                "enum": ["c", "f"],
                "default": "c",
                "description": "Celsius or Fahrenheit.",
            },
        },
        "required": ["city"],
        "additionalProperties": False,
    }


def test_description_and_name_come_from_the_docstring_summary_and_function() -> None:
    """Without arguments the name is the function's and the description its summary."""
    declaration = weather.declaration
    assert (declaration.name, declaration.description) == ("weather", "Tell the weather in a city.")
    assert (declaration.requires_approval, declaration.timeout) == (False, None)


def test_explicit_name_description_timeout_and_approval_are_declared() -> None:
    """The decorator's keyword arguments reach the declaration unchanged."""

    @tool(name="look-up", description="Find rows.", timeout=2.5, requires_approval=True)
    def lookup(limit: int) -> str:
        """Ignored summary."""
        return ""

    declaration = lookup.declaration
    assert (declaration.name, declaration.description) == ("look-up", "Find rows.")
    assert (declaration.timeout, declaration.requires_approval) == (2.5, True)


def test_empty_parentheses_and_no_docstring_give_an_empty_description() -> None:
    """`@tool()` works like `@tool`; a function without docstring has an empty description."""

    @tool()
    def bare() -> str:
        return "ok"

    assert (bare.declaration.name, bare.declaration.description) == ("bare", "")
    assert parameters(bare) == {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }


def test_enum_and_nested_models_are_inlined_without_refs_or_titles() -> None:
    """Nested models and enums are written out in place: no `$ref`, `$defs` or `title`."""

    @tool
    def place(order: Order, color: Color = Color.BLUE) -> str:
        return ""

    schema = parameters(place)
    assert not keys_anywhere(schema) & {"$ref", "$defs", "title"}
    item = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "qty": {"type": "integer", "default": 1}},
        "required": ["name"],
    }
    assert schema["properties"]["order"] == {
        "type": "object",
        "description": "An order of items.",
        "properties": {
            "id": {"type": "integer"},
            "items": {"type": "array", "items": item},
            "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
        },
        "required": ["id", "items"],
    }
    assert schema["properties"]["color"] == {
        "type": "string",
        "enum": ["red", "blue"],
        "default": "blue",
    }


def test_a_parameter_named_title_keeps_its_property() -> None:
    """Only schema `title` keywords are dropped, never a parameter called `title`."""

    @tool
    def rename(title: str, json: int, model_name: str = "x") -> str:
        return title

    assert list(properties(rename)) == ["title", "json", "model_name"]
    assert properties(rename)["title"] == {"type": "string"}


def test_annotated_field_description_wins_over_the_docstring() -> None:
    """`Field(description=...)` beats the docstring; both keep the field's constraints."""

    @tool
    def rows(limit: Annotated[int, Field(ge=1, description="max rows")] = 10, page: int = 0) -> str:
        """List rows.

        Args:
            limit: ignored, the Field says it.
            page: Which page.
        """
        return ""

    assert properties(rows) == {
        "limit": {"type": "integer", "minimum": 1, "default": 10, "description": "max rows"},
        "page": {"type": "integer", "default": 0, "description": "Which page."},
    }


def test_docstring_description_of_a_model_parameter_wins_over_the_model_docstring() -> None:
    """A parameter documented in the function's docstring is described by that text."""

    @tool
    def place(order: Order) -> str:
        """Place it.

        Args:
            order (Order): What to place.
        """
        return ""

    assert properties(place)["order"]["description"] == "What to place."


def test_sphinx_param_lines_describe_parameters() -> None:
    """`:param name: text` lines, with an optional type and continuation lines, are read."""

    @tool
    def search(pattern: str, limit: int = 5) -> str:
        """Search the index.

        :param pattern: A regular
            expression.
        :param int limit: How many hits.
        :returns: The hits.
        """
        return ""

    assert search.declaration.description == "Search the index."
    assert properties(search)["pattern"]["description"] == "A regular expression."
    assert properties(search)["limit"]["description"] == "How many hits."


def test_the_declaration_is_immutable() -> None:
    """Neither the declaration nor its nested schema can be changed after the tool is made."""
    declaration = weather.declaration
    with pytest.raises(dataclasses.FrozenInstanceError):
        declaration.name = "other"  # type: ignore[misc]
    assert isinstance(declaration.parameters, FrozenDict)
    with pytest.raises(TypeError):
        declaration.parameters["type"] = "array"  # type: ignore[index]
    with pytest.raises(TypeError):
        declaration.parameters["properties"]["city"]["type"] = "integer"
    assert isinstance(declaration.parameters["required"], tuple)
    assert weather.declaration is declaration


def test_a_function_tool_is_a_tool_and_still_callable() -> None:
    """The tool satisfies the `Tool` port and calling it calls the original function."""

    @tool
    def add(a: int, b: int) -> int:
        return a + b

    assert isinstance(add, Tool)
    assert add(2, 3) == 5
    assert add.function(2, b=4) == 6
    assert repr(add) == "FunctionTool('add')"


async def test_arguments_are_validated_and_converted_before_the_call() -> None:
    """Nested models arrive as instances, enums as members, frozen lists as plain lists."""
    received: list[Any] = []

    @tool
    async def place(order: Order, color: Color, extra: Any = None) -> str:
        received.extend([order, color, extra])
        return "done"

    raw = {"order": {"id": "7", "items": [{"name": "a"}]}, "color": "blue", "extra": {"k": [1]}}
    assert await place.run(deep_freeze(raw)) == "done"
    order, color, extra = received
    assert order == Order(id=7, items=[Item(name="a")])
    assert color is Color.BLUE
    assert extra == {"k": [1]}
    assert type(extra) is dict
    assert type(extra["k"]) is list


async def test_invalid_arguments_raise_a_readable_tool_error_without_calling() -> None:
    """Each problem is named by its argument; the function is never called."""
    calls: list[str] = []

    @tool
    async def forecast(city: str, units: Literal["c", "f"] = "c") -> str:
        calls.append(city)
        return ""

    with pytest.raises(ToolError) as caught:
        await forecast.run({"units": "k"})
    assert str(caught.value) == (
        "invalid arguments for forecast: city: Field required; units: Input should be 'c' or 'f'"
    )
    assert calls == []


async def test_nested_locations_are_shown_as_paths() -> None:
    """A problem deep inside a model names its path: `order.items[0].qty`."""

    @tool
    def place(order: Order) -> str:
        return ""

    with pytest.raises(ToolError, match=r"order\.items\[0\]\.qty: Input should be a valid integer"):
        await place.run({"order": {"id": 1, "items": [{"name": "a", "qty": "many"}]}})


async def test_unknown_arguments_are_rejected_with_the_expected_names() -> None:
    """An argument the function does not take is refused, listing the ones it does."""
    with pytest.raises(ToolError) as caught:
        await weather.run({"city": "Oslo", "country": "NO"})
    assert str(caught.value) == (
        "invalid arguments for weather: country: unexpected argument; expected city, units"
    )


async def test_arguments_that_are_not_an_object_are_rejected() -> None:
    """A list where the arguments object belongs is refused with a plain message."""
    with pytest.raises(ToolError, match="must be a JSON object"):
        await weather.run(["Oslo"])  # type: ignore[arg-type]


async def test_long_error_lists_are_cut_and_inputs_not_echoed() -> None:
    """Beyond five problems the count is given; the values the model sent are not repeated."""

    @tool
    def many(a: int, b: int, c: int, d: int, e: int, f: int, g: int) -> str:
        return ""

    arguments = dict.fromkeys("abcdefg", "not-a-number-xyzzy")
    with pytest.raises(ToolError) as caught:
        await many.run(arguments)
    message = str(caught.value)
    assert message.endswith("; and 2 more")
    assert "xyzzy" not in message
    assert caught.value.__cause__ is None


async def test_secrets_in_validation_messages_are_redacted() -> None:
    """A validator that quotes its input cannot leak a key into the message."""

    @tool
    def login(credentials: Secretive) -> str:
        return ""

    with pytest.raises(ToolError) as caught:
        await login.run({"credentials": {"token": KEY}})
    assert KEY not in str(caught.value)
    assert "[REDACTED]" in str(caught.value)


async def test_the_context_is_injected_and_hidden_from_the_schema() -> None:
    """A first `ToolContext` parameter receives the caller's context and is not declared."""

    @tool
    async def who(ctx: ToolContext, greeting: str) -> str:
        return f"{greeting} {ctx.session_id}/{ctx.runtime_id}"

    assert list(properties(who)) == ["greeting"]
    assert await who.run({"greeting": "hi"}, CONTEXT) == "hi s1/r1"


async def test_a_keyword_only_context_is_injected_by_name() -> None:
    """The context parameter may be keyword-only; it is passed by its name."""

    @tool
    def who(*, ctx: ToolContext, greeting: str = "hi") -> str:
        return f"{greeting} {ctx.model}"

    assert list(properties(who)) == ["greeting"]
    assert await who.run({}, CONTEXT) == "hi gpt"


async def test_a_tool_wanting_a_context_refuses_to_run_without_one() -> None:
    """Without a context the tool raises `ToolError` and the function is not called."""
    calls: list[str] = []

    @tool
    def who(ctx: ToolContext) -> str:
        calls.append(ctx.session_id)
        return ""

    with pytest.raises(ToolError, match="who needs a ToolContext"):
        await who.run({})
    assert calls == []


async def test_a_tool_without_a_context_parameter_ignores_the_context() -> None:
    """Passing a context to a tool that does not want one changes nothing."""
    assert await weather.run({"city": "Oslo"}, CONTEXT) == "Oslo: 20c"


async def test_exceptions_become_tool_errors_chained_to_the_cause() -> None:
    """A failure is reported as `<name> failed: <type>: <message>`, with the cause kept."""

    @tool
    async def broken(n: int) -> str:
        raise KeyError(n)

    with pytest.raises(ToolError) as caught:
        await broken.run({"n": 3})
    assert str(caught.value) == "broken failed: KeyError: 3"
    assert isinstance(caught.value.__cause__, KeyError)


async def test_secrets_in_failures_are_redacted() -> None:
    """A key in an exception's message is blanked out."""

    @tool
    def leaky() -> str:
        raise RuntimeError(f"upstream refused api_key={KEY}")

    with pytest.raises(ToolError) as caught:
        await leaky.run({})
    assert KEY not in str(caught.value)
    assert str(caught.value).startswith("leaky failed: RuntimeError: upstream refused")


async def test_a_tool_error_from_the_function_passes_through_unchanged() -> None:
    """A function may refuse with its own `ToolError`; it is not wrapped again."""
    refusal = ToolError("no such city")

    @tool
    async def picky(city: str) -> str:
        raise refusal

    with pytest.raises(ToolError) as caught:
        await picky.run({"city": "x"})
    assert caught.value is refusal


async def test_cancellation_is_not_turned_into_a_tool_error() -> None:
    """`CancelledError` propagates, so a cancelled call stays cancelled."""

    @tool
    async def slow() -> str:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await slow.run({})


async def test_sync_functions_run_in_a_worker_thread_without_blocking_the_loop() -> None:
    """A blocking function waits on an event the loop sets meanwhile: it runs off the loop."""
    event = threading.Event()
    threads: list[int] = []

    @tool
    def blocking() -> bool:
        threads.append(threading.get_ident())
        return event.wait(timeout=5)

    async def release() -> None:
        await asyncio.sleep(0.01)
        event.set()

    result, _ = await asyncio.gather(blocking.run({}), release())
    assert result == "true"
    assert threads != [threading.get_ident()]


async def test_async_functions_run_on_the_loop_thread() -> None:
    """An async function is awaited directly, not sent to a thread."""

    @tool
    async def where() -> int:
        return threading.get_ident()

    assert await where.run({}) == str(threading.get_ident())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain text", "plain text"),
        (None, ""),
        ({"a": [1, 2.5, None, True]}, '{"a":[1,2.5,null,true]}'),
        ([1, "two"], '[1,"two"]'),
        (Item(name="a", qty=2), '{"name":"a","qty":2}'),
        (Point(1, 2), '{"x":1,"y":2}'),
        (Color.BLUE, '"blue"'),
        ("", ""),
    ],
)
async def test_results_are_text_as_is_or_json(value: object, expected: str) -> None:
    """A string is returned unchanged, `None` as empty text, anything else as JSON text."""

    @tool
    async def give():  # type: ignore[no-untyped-def]  # noqa: ANN202
        return value

    assert await give.run({}) == expected


async def test_the_return_annotation_shapes_the_json() -> None:
    """An annotated result is serialised by its declared type."""

    @tool
    def rows() -> list[Item]:
        return [Item(name="a"), Item(name="b", qty=3)]

    assert json.loads(await rows.run({})) == [{"name": "a", "qty": 1}, {"name": "b", "qty": 3}]


async def test_a_result_that_is_not_json_is_a_tool_error() -> None:
    """A value pydantic cannot serialise is reported clearly instead of crashing the loop."""

    @tool
    async def opaque() -> Any:
        return object()

    with pytest.raises(ToolError, match="opaque returned a object, not serialisable as JSON"):
        await opaque.run({})


async def test_a_return_annotation_pydantic_cannot_use_falls_back_to_the_value() -> None:
    """An exotic return annotation does not refuse the tool; the value is serialised as is."""

    @tool
    def give() -> Opaque:
        return Point(1, 2)  # type: ignore[return-value]

    assert await give.run({}) == '{"x":1,"y":2}'


def _no_annotation(city) -> str:  # type: ignore[no-untyped-def]  # noqa: ANN001
    return str(city)


def _star_args(*cities: str) -> str:
    return ""


def _star_kwargs(**cities: str) -> str:
    return ""


def _positional_only(city: str, /) -> str:
    return city


def _context_second(city: str, ctx: ToolContext) -> str:
    return city


def _optional_context(ctx: ToolContext | None) -> str:
    return ""


def _opaque(thing: Opaque) -> str:
    return ""


def _recursive(tree: Node) -> str:
    return tree.name


def _unresolvable(city: Unknown) -> str:  # type: ignore[name-defined]  # noqa: F821
    return ""


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (_no_annotation, "parameter 'city' has no type annotation"),
        (_star_args, "parameter 'cities' is \\*args"),
        (_star_kwargs, "parameter 'cities' is \\*\\*kwargs"),
        (_positional_only, "parameter 'city' is positional-only"),
        (_context_second, "parameter 'ctx' is typed with ToolContext"),
        (_optional_context, "parameter 'ctx' is typed with ToolContext"),
        (_recursive, "type Node is recursive"),
        (_opaque, "cannot build its parameter schema"),
        (_unresolvable, "cannot read its signature"),
    ],
)
def test_unusable_signatures_are_refused_when_the_tool_is_made(function: Any, message: str) -> None:
    """Each unusable signature is a `ConfigurationError` naming the function and parameter."""
    with pytest.raises(ConfigurationError, match=message) as caught:
        tool(function)
    assert function.__name__ in str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "has space"}, "tool name 'has space'"),
        ({"name": "x" * 65}, "is invalid"),
        ({"timeout": 0}, "timeout must be positive"),
        ({"timeout": -1.0}, "timeout must be positive"),
    ],
)
def test_invalid_options_are_refused(options: dict[str, Any], message: str) -> None:
    """A name providers would refuse, or a timeout that is not positive, is refused early."""
    with pytest.raises(ConfigurationError, match=message):
        tool(**options)(weather.function)


def test_a_positive_timeout_under_a_second_is_declared() -> None:
    """Any positive timeout is a timeout, a fraction of a second too."""

    @tool(timeout=0.25)
    def quick() -> str:
        return "done"

    assert quick.declaration.timeout == 0.25


def test_an_optional_model_parameter_is_inlined_in_its_choices() -> None:
    """A model inside `anyOf` (an optional model) is inlined there, as a plain one is."""

    @tool
    def place(item: Item | None = None) -> str:
        return "placed"

    schema = parameters(place)["properties"]["item"]
    assert "$ref" not in json.dumps(schema)
    assert {"type": "null"} in schema["anyOf"]
    models = [option for option in schema["anyOf"] if option.get("type") == "object"]
    assert [model["properties"]["name"] for model in models] == [{"type": "string"}]


def test_a_section_before_the_arguments_is_not_read_as_one() -> None:
    """An indented block under another heading (an example) describes no parameter."""

    @tool
    def greet(name: str) -> str:
        """Greet someone.

        Example:
            greet("Ada")

        Args:
            name: Who to greet.
        """
        return f"hello {name}"

    assert parameters(greet)["properties"]["name"]["description"] == "Who to greet."


def test_a_signature_problem_names_the_function_by_its_qualified_name() -> None:
    """The error says which function: its qualified name."""

    def untyped(value):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
        return value

    with pytest.raises(ConfigurationError) as refused:
        tool(untyped)
    assert str(refused.value).startswith(f"tool function {untyped.__qualname__}: parameter")


class _Shouter:
    """A callable object: no `__qualname__` of its own instance."""

    __name__ = "shout"

    def __call__(self, text) -> str:  # type: ignore[no-untyped-def]  # noqa: ANN001
        return str(text).upper()

    def __repr__(self) -> str:
        return "<the shouter>"


def test_a_callable_object_is_named_by_its_repr() -> None:
    """A callable object without a qualified name is named as it shows itself."""
    with pytest.raises(ConfigurationError) as refused:
        FunctionTool(_Shouter())
    assert str(refused.value).startswith("tool function <the shouter>: ")


LongChoice = Literal[tuple(f"option-{index:03d}-" + "x" * 20 for index in range(20))]  # type: ignore[valid-type]


async def test_a_long_validation_message_is_cut_short() -> None:
    """A model-facing problem is at most 160 characters and says it was cut."""

    @tool
    def pick(choice: LongChoice) -> str:  # type: ignore[valid-type]
        return str(choice)

    with pytest.raises(ToolError) as refused:
        await pick.run({"choice": "none of them"})
    problem = str(refused.value).split("choice: ", 1)[1]
    assert problem.endswith("...")
    assert len(problem) == 160 + len("...")
