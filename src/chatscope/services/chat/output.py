"""Typed output: the schema a chat's `output_type` asks the model for, and checking its answer.

`output_spec` turns what a caller passes as `output_type` into an `OutputSpec`:

- a pydantic model, a dataclass, a TypedDict or any other type pydantic's `TypeAdapter`
  handles (`list[int]`, `int | None`, ...): its JSON schema, and the answer validated into an
  instance of that type;
- a JSON-schema dict: that schema, and the answer's parsed JSON checked with `jsonschema`.

The schema sent to the model always has an object root, as OpenAI and Anthropic require one:
any other type is wrapped as `{"result": <schema>}` and the answer unwrapped before it is
validated. Where the schema allows it, it is made strict (`strict_json_schema`) so that an API
with a strict mode enforces it; the answer is still validated against the caller's own type,
which accepts everything the strict schema does.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
from pydantic import PydanticUserError, TypeAdapter, ValidationError

from chatscope.errors import ConfigurationError
from chatscope.services.frozen import thaw
from chatscope.services.messages import Message
from chatscope.services.runtime.invocation import OutputSchema

__all__ = [
    "RESULT_KEY",
    "InvalidAnswerError",
    "OutputSpec",
    "output_spec",
    "strict_json_schema",
    "wrap_schema",
]

RESULT_KEY = "result"
"""The one property of the object a non-object output type is wrapped in."""

_MAX_PROBLEMS = 5
_MAX_DEPTH = 64
_FENCED = re.compile(r"\A```[A-Za-z0-9_-]*[ \t]*\n(?P<body>.*?)\n?```\Z", re.S)
# Kept for validation but left out of the model's copy: they describe the document, not the answer.
_DOCUMENT_KEYS = frozenset({"$schema", "$id"})
_DEFINITION_KEYS = ("$defs", "definitions")
# A node that says nothing of its value (`{}`, "anything") cannot be strict.
_TYPING_KEYS = frozenset({"type", "$ref", "anyOf", "allOf", "enum", "const"})


class InvalidAnswerError(ValueError):
    """Why an answer is not the typed output asked for; the model is told it once."""


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """What one typed request asks for (`schema`) and how its answer becomes the output.

    `wrapped` says a non-object type was wrapped as `{"result": ...}`; `check` validates the
    (unwrapped) parsed JSON and returns the output, or raises `InvalidAnswerError`.
    """

    schema: OutputSchema
    wrapped: bool
    check: Callable[[Any], Any]

    def parse(self, text: str) -> Any:
        """The output an answer's text holds; an unusable answer raises `InvalidAnswerError`.

        For models that were only asked in words, a Markdown code fence around the JSON, a line
        of prose before it, and a wrapped type's bare value are tolerated.
        """
        data = _load(text)
        if self.wrapped and isinstance(data, dict) and data.keys() == {RESULT_KEY}:
            data = data[RESULT_KEY]
        return self.check(data)

    def feedback(self, problem: InvalidAnswerError) -> Message:
        """The user message that tells the model what was wrong with its answer."""
        shape = f' (an object {{"{RESULT_KEY}": ...}})' if self.wrapped else ""
        return Message.user(
            f"Your answer could not be used as the requested output: {problem}. Answer again "
            f"with only JSON that matches the {self.schema.name!r} schema{shape}, nothing else."
        )


def output_spec(output_type: object) -> OutputSpec:
    """The spec of `output_type`: a type pydantic handles, or a JSON-schema dict.

    A type without a JSON schema, or a dict that is not a valid JSON schema, raises
    `ConfigurationError`.
    """
    if isinstance(output_type, Mapping):
        schema: dict[str, Any] = thaw(output_type)
        check = _schema_check(schema)
        name = str(schema.get("title") or "output")
    else:
        adapter, schema = _adapter(output_type)
        check = _typed_check(adapter)
        name = str(getattr(output_type, "__name__", None) or "output")
    model_schema, wrapped = wrap_schema(schema)
    strict = strict_json_schema(model_schema)
    chosen = strict if strict is not None else model_schema
    return OutputSpec(OutputSchema.create(name, chosen, strict=strict is not None), wrapped, check)


def wrap_schema(schema: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The model's copy of `schema`, with an object root, and whether it had to be wrapped.

    Definitions move up to the wrapper, so every `#/$defs/...` reference still resolves.
    """
    plain: dict[str, Any] = {
        key: copy.deepcopy(value) for key, value in schema.items() if key not in _DOCUMENT_KEYS
    }
    if plain.get("type") == "object" and not plain.keys() & {"anyOf", "oneOf", "allOf", "$ref"}:
        return plain, False
    definitions = {key: plain.pop(key) for key in _DEFINITION_KEYS if key in plain}
    wrapper = {
        "type": "object",
        "properties": {RESULT_KEY: plain},
        "required": [RESULT_KEY],
        "additionalProperties": False,
        **definitions,
    }
    return wrapper, True


class _NotStrictError(Exception):
    """The schema needs something strict mode cannot say."""


def strict_json_schema(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """`schema` made to fit OpenAI's strict mode, or None if that would change what it accepts.

    Every object gets `additionalProperties: false` and all its properties `required` (an
    optional field becomes one the model always gives, which the caller's type still
    accepts); a `$ref` with sibling keys is inlined, a one-item `allOf` merged, `oneOf` becomes
    `anyOf`, `None` defaults and discriminators go; `$defs` stay. An open object (a dict, extra
    properties allowed) or a schema of any value has no strict form: None.
    """
    root: dict[str, Any] = thaw(schema)
    try:
        strict = _strict(root, root, 0)
    except _NotStrictError:
        return None
    return strict if isinstance(strict, dict) and _is_object(strict) else None


def _strict(node: Any, root: dict[str, Any], depth: int) -> Any:
    if depth > _MAX_DEPTH or not isinstance(node, dict):
        raise _NotStrictError
    for key in _DEFINITION_KEYS:
        if isinstance(node.get(key), dict):
            node[key] = {name: _strict(sub, root, depth + 1) for name, sub in node[key].items()}
    merged = _merged(node, root)
    if merged is not None:
        return _strict(merged, root, depth + 1)
    _tidy(node)
    for key in ("anyOf", "allOf"):
        if key in node:
            if not isinstance(node[key], list):
                raise _NotStrictError
            node[key] = [_strict(sub, root, depth + 1) for sub in node[key]]
    if not node.keys() & _TYPING_KEYS or node.keys() & {"patternProperties", "prefixItems"}:
        raise _NotStrictError
    if _is_object(node):
        _close_object(node, root, depth)
    if node.get("type") == "array" or "items" in node:
        node["items"] = _strict(node.get("items"), root, depth + 1)
    return node


def _tidy(node: dict[str, Any]) -> None:
    """Drop a `None` default and a discriminator; `oneOf` becomes `anyOf`."""
    if node.get("default", 0) is None:
        del node["default"]
    node.pop("discriminator", None)
    if "oneOf" in node:
        if "anyOf" in node:
            raise _NotStrictError
        node["anyOf"] = node.pop("oneOf")


def _merged(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any] | None:
    """The node with a sibling-laden `$ref` or a one-item `allOf` folded in, else None."""
    ref = node.get("$ref")
    if isinstance(ref, str) and len(node) > 1:
        rest = {key: value for key, value in node.items() if key != "$ref"}
        return {**copy.deepcopy(_resolve(ref, root)), **rest}
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        rest = {key: value for key, value in node.items() if key != "allOf"}
        return {**copy.deepcopy(all_of[0]), **rest}
    return None


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise _NotStrictError
    found: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(found, dict) or part not in found:
            raise _NotStrictError
        found = found[part]
    if not isinstance(found, dict):
        raise _NotStrictError
    return found


def _is_object(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in node


def _close_object(node: dict[str, Any], root: dict[str, Any], depth: int) -> None:
    properties = node.get("properties")
    if node.get("additionalProperties", False) is not False or not isinstance(properties, dict):
        raise _NotStrictError
    node["properties"] = {name: _strict(sub, root, depth + 1) for name, sub in properties.items()}
    node["required"] = list(properties)
    node["additionalProperties"] = False


def _load(text: str) -> Any:
    body = text.strip()
    fenced = _FENCED.match(body)
    if fenced is not None:
        body = fenced["body"].strip()
    if not body:
        raise InvalidAnswerError("the answer is empty; it must be JSON")
    try:
        return json.loads(body)
    except ValueError as exc:
        problem = exc
    # Prose before the JSON ("Here it is: {...}"): one more try, from the first bracket.
    start = min((at for at in (body.find("{"), body.find("[")) if at > 0), default=-1)
    if start > 0:
        with contextlib.suppress(ValueError):
            return json.loads(body[start:])
    raise InvalidAnswerError(f"the answer is not valid JSON ({problem})")


def _adapter(output_type: Any) -> tuple[TypeAdapter[Any], dict[str, Any]]:
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(output_type)
        return adapter, adapter.json_schema()
    except (PydanticUserError, TypeError) as exc:
        raise ConfigurationError(
            f"output_type {output_type!r} cannot be used: it has no JSON schema ({exc})"
        ) from None


def _typed_check(adapter: TypeAdapter[Any]) -> Callable[[Any], Any]:
    def check(data: Any) -> Any:
        try:
            return adapter.validate_json(json.dumps(data))
        except ValidationError as exc:
            problems = [
                f"{_where(error['loc'])}: {error['msg']}" for error in exc.errors(include_url=False)
            ]
            raise InvalidAnswerError(_joined(problems)) from None

    return check


def _schema_check(schema: dict[str, Any]) -> Callable[[Any], Any]:
    kind = jsonschema.validators.validator_for(schema)
    try:
        kind.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigurationError(
            f"the output schema is not a valid JSON schema: {exc.message}"
        ) from None
    validator = kind(schema)

    def check(data: Any) -> Any:
        problems = [
            f"{_where(error.absolute_path)}: {error.message}"
            for error in validator.iter_errors(data)
        ]
        if problems:
            raise InvalidAnswerError(_joined(problems))
        return data

    return check


def _where(path: Any) -> str:
    parts = [str(part) for part in path]
    return "/".join(parts) if parts else "the answer"


def _joined(problems: list[str]) -> str:
    shown = "; ".join(problems[:_MAX_PROBLEMS])
    more = len(problems) - _MAX_PROBLEMS
    return f"{shown}; and {more} more" if more > 0 else shown
