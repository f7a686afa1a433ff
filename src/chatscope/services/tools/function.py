"""Plain Python functions as tools: `@tool` reads the signature once and builds the declaration.

Everything costly happens when the tool is made: type hints are resolved, a pydantic model of
the parameters is built, its JSON schema is cleaned (no `title`s, `$defs` inlined because Gemini
refuses `$ref`) and frozen, and the result serialiser is chosen. A call then only validates,
calls and serialises, so the overhead over calling the function directly stays a few
microseconds.

Results: a `str` is returned as is, `None` becomes `""`, anything else is JSON text. Sync
functions run in a worker thread so they never block the event loop. The per-tool `timeout` is
only declared here; the scope's registry enforces it.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import typing
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Annotated, Any, Generic, ParamSpec, TypeVar, get_args, get_origin, overload

import pydantic
from pydantic import BaseModel, PydanticUserError, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import to_json

from chatscope.errors import ConfigurationError, ToolError, redact_secrets
from chatscope.services.frozen import deep_freeze, thaw
from chatscope.services.tools.ports import ToolContext, ToolDeclaration

__all__ = ["FunctionTool", "tool"]

P = ParamSpec("P")
R = TypeVar("R")

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Returns?|Raises|Yields?|Examples?|Notes?)\s*:\s*$"
)
_ARG_SECTIONS = frozenset({"Args", "Arguments", "Parameters", "Params"})
_GOOGLE_ARG = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_DATA_KEYWORDS = frozenset({"default", "const", "enum", "examples"})
_NAMED_SCHEMAS = frozenset({"properties", "patternProperties", "$defs"})
_DROPPED_KEYWORDS = frozenset({"title", "discriminator"})
_MAX_ERRORS = 5
_MAX_MESSAGE = 160
_EMPTY = inspect.Parameter.empty
_REJECTED_KINDS: Mapping[Any, str] = MappingProxyType(
    {
        inspect.Parameter.POSITIONAL_ONLY: "is positional-only",
        inspect.Parameter.VAR_POSITIONAL: "is *args",
        inspect.Parameter.VAR_KEYWORD: "is **kwargs",
    }
)


class FunctionTool(Generic[P, R]):
    """A function the model may call, with a declaration built once from its signature.

    Calling the `FunctionTool` itself calls the original function unchanged.
    """

    __slots__ = ("_ctx_name", "_declaration", "_dump", "_function", "_is_async", "_model", "_names")

    def __init__(
        self,
        function: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        requires_approval: bool = False,
    ) -> None:
        tool_name = _checked(str(name or getattr(function, "__name__", "")), timeout)
        summary, documented = _parse_docstring(inspect.getdoc(function) or "")
        context_name, parameters, returns = _parameters(function)
        self._model, raw_schema = _arguments_model(tool_name, parameters, documented)
        self._names = tuple((f"p{index}", param) for index, (param, _, _) in enumerate(parameters))
        self._declaration = ToolDeclaration(
            name=tool_name,
            description=description if description is not None else summary,
            parameters=deep_freeze(_parameters_schema(tool_name, raw_schema)),
            requires_approval=requires_approval,
            timeout=timeout,
        )
        self._function: Callable[..., Any] = function
        self._is_async = inspect.iscoroutinefunction(function)
        self._ctx_name = context_name
        self._dump = _serialiser(returns)

    @property
    def declaration(self) -> ToolDeclaration:
        """Name, description and JSON-schema parameters, fixed when the tool was made."""
        return self._declaration

    @property
    def function(self) -> Callable[P, R]:
        """The decorated function, unchanged."""
        return self._function

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = self._function(*args, **kwargs)
        return result

    def __repr__(self) -> str:
        return f"FunctionTool({self._declaration.name!r})"

    async def run(self, arguments: Mapping[str, Any], context: ToolContext | None = None) -> str:
        """Validate the model's arguments, call the function, and render its result as text.

        Invalid arguments raise `ToolError` before the function is called; a `ToolError` the
        function raises passes through; any other exception becomes a `ToolError`.
        """
        name = self._declaration.name
        if self._ctx_name is not None and context is None:
            raise ToolError(f"{name} needs a ToolContext, but was run without one")
        kwargs = self._validate(arguments)
        if self._ctx_name is not None:
            kwargs[self._ctx_name] = context
        try:
            if self._is_async:
                result = await self._function(**kwargs)
            else:
                result = await asyncio.to_thread(self._function, **kwargs)
        except ToolError:
            raise
        except Exception as exc:
            raise ToolError(redact_secrets(f"{name} failed: {type(exc).__name__}: {exc}")) from exc
        return self._render(result)

    def _validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        data = thaw(arguments)
        if not isinstance(data, dict):
            raise ToolError(f"arguments for {self._declaration.name} must be a JSON object")
        try:
            values = self._model.model_validate(data).__dict__
        except ValidationError as exc:
            raise ToolError(self._explain(exc)) from None  # the inputs stay out of tracebacks
        return {param: values[field] for field, param in self._names}

    def _explain(self, error: ValidationError) -> str:
        problems = error.errors(include_url=False, include_input=False, include_context=False)
        shown = [f"{_location(p['loc'])}: {self._problem(p)}" for p in problems[:_MAX_ERRORS]]
        more = len(problems) - _MAX_ERRORS
        tail = f"; and {more} more" if more > 0 else ""
        return redact_secrets(
            f"invalid arguments for {self._declaration.name}: " + "; ".join(shown) + tail
        )

    def _problem(self, problem: Any) -> str:
        if problem["type"] != "extra_forbidden":
            message = str(problem["msg"])
            return message if len(message) <= _MAX_MESSAGE else message[:_MAX_MESSAGE] + "..."
        expected = ", ".join(param for _, param in self._names) or "none"
        return f"unexpected argument; expected {expected}"

    def _render(self, result: Any) -> str:
        if isinstance(result, str):
            return result
        if result is None:
            return ""
        try:
            return self._dump(result)
        except (ValueError, TypeError) as exc:
            kind = type(result).__name__
            message = f"{self._declaration.name} returned a {kind}, not serialisable as JSON: {exc}"
            raise ToolError(redact_secrets(message)) from exc


@overload
def tool(function: Callable[P, R], /) -> FunctionTool[P, R]: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    requires_approval: bool = False,
) -> Callable[[Callable[P, R]], FunctionTool[P, R]]: ...


def tool(
    function: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    requires_approval: bool = False,
) -> FunctionTool[P, R] | Callable[[Callable[P, R]], FunctionTool[P, R]]:
    """Make a function a tool, bare (`@tool`) or configured (`@tool(name=..., timeout=...)`).

    `description` defaults to the docstring's summary, `name` to the function's name. A first
    parameter typed `ToolContext` receives the caller's context and is hidden from the model.
    `timeout` (seconds) is enforced by the scope's registry, not by the tool.
    """

    options: dict[str, Any] = {"name": name, "description": description, "timeout": timeout}

    def make(target: Callable[P, R]) -> FunctionTool[P, R]:
        return FunctionTool(target, requires_approval=requires_approval, **options)

    return make if function is None else make(function)


def _checked(name: str, timeout: float | None) -> str:
    if not _NAME.match(name):
        raise ConfigurationError(f"tool name {name!r} is invalid: use 1-64 letters, digits, _ or -")
    if timeout is not None and not timeout > 0:
        raise ConfigurationError(f"tool {name}: timeout must be positive, got {timeout}")
    return name


def _parameters(
    function: Callable[..., Any],
) -> tuple[str | None, list[tuple[str, Any, Any]], Any]:
    """The context parameter's name, (name, hint, default) of the model's, the return hint."""
    owner = getattr(function, "__qualname__", repr(function))
    try:
        hints = typing.get_type_hints(function, include_extras=True)
        params = list(inspect.signature(function).parameters.values())
    except (NameError, TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"tool function {owner}: cannot read its signature: {exc}"
        ) from exc
    wants = bool(params) and hints.get(params[0].name) is ToolContext
    for index, param in enumerate(params):
        _check_parameter(owner, param, hints, is_context=wants and index == 0)
    schema_params = params[1:] if wants else params
    fields = [(p.name, hints[p.name], p.default) for p in schema_params]
    return params[0].name if wants else None, fields, hints.get("return", _EMPTY)


def _check_parameter(
    owner: str, param: inspect.Parameter, hints: dict[str, Any], *, is_context: bool
) -> None:
    problem = _REJECTED_KINDS.get(param.kind)
    if problem is None and param.name not in hints:
        problem = "has no type annotation"
    elif problem is None and not is_context and _mentions_context(hints[param.name]):
        problem = "is typed with ToolContext; only a first parameter typed ToolContext gets one"
    if problem is not None:
        raise ConfigurationError(f"tool function {owner}: parameter {param.name!r} {problem}")


def _mentions_context(hint: Any) -> bool:
    return hint is ToolContext or any(_mentions_context(arg) for arg in get_args(hint))


def _arguments_model(
    name: str, parameters: list[tuple[str, Any, Any]], documented: dict[str, str]
) -> tuple[type[BaseModel], dict[str, Any]]:
    """Fields are named p0, p1... with the parameter names as aliases, so no name can clash
    with pydantic's own attributes."""
    fields: dict[str, Any] = {}
    for index, (param, hint, default) in enumerate(parameters):
        info: dict[str, Any] = {"alias": param}
        if default is not _EMPTY:
            info["default"] = default
        if param in documented and not _has_description(hint):
            info["description"] = documented[param]
        fields[f"p{index}"] = (hint, pydantic.Field(**info))
    try:
        config = pydantic.ConfigDict(extra="forbid")  # accepted by alias, the parameter name
        model: type[BaseModel] = pydantic.create_model(f"{name}_args", __config__=config, **fields)
        return model, model.model_json_schema()
    except PydanticUserError as exc:
        raise ConfigurationError(f"tool {name}: cannot build its parameter schema: {exc}") from exc


def _has_description(hint: Any) -> bool:
    if get_origin(hint) is not Annotated:
        return False
    return any(isinstance(meta, FieldInfo) and meta.description for meta in hint.__metadata__)


def _parameters_schema(name: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The model's schema made compact and self-contained, in the shape providers expect."""
    defs = raw.get("$defs", {})
    properties = raw.get("properties", {})
    return {
        "type": "object",
        "properties": {
            key: _clean(name, value, defs, frozenset()) for key, value in properties.items()
        },
        "required": list(raw.get("required", [])),
        "additionalProperties": False,
    }


def _clean(owner: str, node: Any, defs: dict[str, Any], expanding: frozenset[str]) -> Any:
    """Drop `title`s and inline `$ref`s; a model that contains itself cannot be inlined."""
    if isinstance(node, list):
        return [_clean(owner, item, defs, expanding) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _inline(owner, node, defs, expanding)
    cleaned: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYWORDS:
            continue
        if key in _DATA_KEYWORDS:
            cleaned[key] = value
        elif key in _NAMED_SCHEMAS:
            cleaned[key] = {k: _clean(owner, v, defs, expanding) for k, v in value.items()}
        else:
            cleaned[key] = _clean(owner, value, defs, expanding)
    return cleaned


def _inline(
    owner: str, node: dict[str, Any], defs: dict[str, Any], expanding: frozenset[str]
) -> Any:
    target = str(node["$ref"]).removeprefix("#/$defs/")
    if target in expanding:
        raise ConfigurationError(f"tool {owner}: type {target} is recursive; it cannot be inlined")
    inlined = _clean(owner, defs[target], defs, expanding | {target})
    siblings = _clean(owner, {k: v for k, v in node.items() if k != "$ref"}, defs, expanding)
    return {**inlined, **siblings}


def _serialiser(returns: Any) -> Callable[[Any], str]:
    """Serialise by the return annotation when pydantic understands it, else by the value."""
    if returns is not _EMPTY:
        try:
            adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(returns)
        except (PydanticUserError, TypeError):
            pass
        else:
            return lambda value: adapter.dump_json(value, warnings=False).decode()
    return lambda value: to_json(value).decode()


def _location(loc: tuple[int | str, ...]) -> str:
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    return text.lstrip(".")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The summary (the text before any section) and per-parameter descriptions."""
    lines = doc.splitlines()
    end = next((i for i, line in enumerate(lines) if _SECTION.match(line) or line[:1] == ":"), None)
    return "\n".join(lines[:end]).strip(), _documented(lines[end:] if end is not None else [])


def _documented(lines: list[str]) -> dict[str, str]:
    """Google `Args:` entries and Sphinx `:param name:` lines, continuation lines indented."""
    found: dict[str, str] = {}
    in_args, current, entry_indent = False, "", 0
    for line in lines:
        stripped, indent = line.strip(), len(line) - len(line.lstrip())
        google = in_args and indent and (not current or indent <= entry_indent)
        entry = _SPHINX_PARAM.match(line) or (_GOOGLE_ARG.match(stripped) if google else None)
        if entry:
            current, entry_indent = entry[1], indent
            found[current] = entry[2].strip()
        elif stripped and indent == 0:
            header = _SECTION.match(line)
            in_args, current = bool(header and header[1] in _ARG_SECTIONS), ""
        elif stripped and current and indent > entry_indent:
            found[current] = f"{found[current]} {stripped}".strip()
    return found
