"""`ScopeRequest.create` gives exactly the request the constructor gives for the same fields,
once its mappings are frozen and a plain-text key is a secret.

`create` fills a new request's fields in one step rather than through `__init__`, so these
tests pin that nothing tells the two apart: equality, hash, repr, pickling, `replace`, and
that the request stays frozen.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from chatscope import tool
from chatscope.config.settings import FallbackSettings
from chatscope.services.frozen import FrozenDict, deep_freeze
from chatscope.services.runtime.scopes import ScopeRequest
from chatscope.services.tools.toolset import freeze_headers

texts = st.text(alphabet="abcxyz-_0123", min_size=1, max_size=8)
maybe_texts = st.none() | texts
names = st.lists(texts, max_size=3)
scalars = st.none() | st.booleans() | st.integers(-3, 3) | texts
mappings = st.dictionaries(texts, scalars | st.lists(scalars, max_size=2), max_size=3)
headers = st.dictionaries(texts, st.dictionaries(texts, texts, max_size=2), max_size=2)
FIELD_NAMES = [item.name for item in dataclasses.fields(ScopeRequest)]


@tool
def first(city: str) -> str:
    """A tool a request may bring."""
    return city


@tool
def second(city: str) -> str:
    """Another."""
    return city


# Every field a caller may give `create`, each drawn only sometimes. The approver, the
# history and the trace parent are not compared; the scope tests cover them.
request_fields = st.fixed_dictionaries(
    {},
    optional={
        "provider": maybe_texts,
        "model": maybe_texts,
        "base_url": maybe_texts,
        "api_key": st.none() | texts | texts.map(SecretStr),
        "key_file": st.none() | texts.map(Path),
        "api_key_env": maybe_texts,
        "key_variables": st.none() | names.map(tuple),
        "auth_required": st.none() | st.booleans(),
        "session_id": maybe_texts,
        "model_params": st.none() | mappings,
        "ephemeral_overrides": st.none() | mappings,
        "system_prompt": maybe_texts,
        "allowed_tools": st.none() | names.map(tuple),
        "subagent_name": maybe_texts,
        "mcp_headers": st.none() | headers,
        "mcp_servers": st.none() | names,
        "tools": st.lists(st.sampled_from([first, second]), max_size=2, unique=True),
        "owner": maybe_texts,
        "fallback": st.none() | st.just(FallbackSettings()),
    },
)


def _constructor_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """What the constructor must be given for the request `create` makes of `fields`."""
    given = dict(fields)
    for name in ("model_params", "ephemeral_overrides", "mcp_headers"):
        value = given.pop(name, None)
        if value:
            freeze = freeze_headers if name == "mcp_headers" else deep_freeze
            given[name] = freeze(value)
    for name in ("tools", "mcp_servers"):
        if given.get(name) is not None:
            given[name] = tuple(given[name])
    if isinstance(given.get("api_key"), str):
        given["api_key"] = SecretStr(given["api_key"])
    return given


@given(fields=request_fields)
def test_create_gives_the_request_the_constructor_gives(fields: dict[str, Any]) -> None:
    """Same fields, same request: equal, same hash, same repr, every field the same value."""
    made = ScopeRequest.create(**fields)
    built = ScopeRequest(**_constructor_fields(fields))
    assert made == built
    assert hash(made) == hash(built)
    assert repr(made) == repr(built)
    for item in dataclasses.fields(ScopeRequest):
        assert getattr(made, item.name) == getattr(built, item.name), item.name


@given(fields=request_fields)
def test_a_created_request_survives_pickling_and_replace(fields: dict[str, Any]) -> None:
    """A created request crosses a process boundary (a remote subagent's) and `replace` as a
    constructed one does. (Function tools are live functions: a request with tools stays in
    its process.)"""
    fields.pop("tools", None)
    made = ScopeRequest.create(**fields)
    assert pickle.loads(pickle.dumps(made)) == made  # noqa: S301 - our own bytes
    assert dataclasses.replace(made, model="other") == dataclasses.replace(
        ScopeRequest(**_constructor_fields(fields)), model="other"
    )


@given(fields=request_fields, name=st.sampled_from(FIELD_NAMES))
def test_a_created_request_is_frozen(fields: dict[str, Any], name: str) -> None:
    """No field of a created request can be set afterwards, given or left at its default."""
    made = ScopeRequest.create(**fields)
    before = getattr(made, name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, name, "changed")
    assert getattr(made, name) is before


@given(fields=request_fields, unknown=st.sampled_from(["modle", "apikey", "tool", "headers"]))
def test_an_unknown_field_is_a_type_error_naming_it(fields: dict[str, Any], unknown: str) -> None:
    """A misspelt field is refused as the constructor refuses it, by name."""
    with pytest.raises(TypeError, match=unknown):
        ScopeRequest.create(**fields, **{unknown: "x"})


def test_the_error_names_every_unknown_field_in_order() -> None:
    """Two misspelt fields are both named, sorted, in one message."""
    with pytest.raises(TypeError) as raised:
        ScopeRequest.create(modle="m", apikey="k", provider="demo")
    assert str(raised.value) == "ScopeRequest has no field apikey, modle"


def test_a_created_request_shares_nothing_with_the_fields_it_was_given() -> None:
    """The caller's dict and lists can change afterwards; the request does not."""
    params: dict[str, Any] = {"temperature": 0.5, "stop": ["a"]}
    servers = ["crm"]
    fields: dict[str, Any] = {"model_params": params, "mcp_servers": servers, "model": "m"}
    made = ScopeRequest.create(**fields)
    params["stop"].append("b")
    servers.append("mail")
    fields["model"] = "other"
    assert made.model_params == FrozenDict({"temperature": 0.5, "stop": ("a",)})
    assert made.mcp_servers == ("crm",)
    assert made.model == "m"


def test_a_subclass_is_built_through_its_own_constructor() -> None:
    """A subclass may validate in `__post_init__`; `create` does not go around it."""

    @dataclasses.dataclass(frozen=True)
    class Checked(ScopeRequest):
        def __post_init__(self) -> None:
            if self.model == "forbidden":
                raise ValueError("model not allowed")

    with pytest.raises(ValueError, match="not allowed"):
        Checked.create(model="forbidden")
    assert type(Checked.create(model="m")) is Checked
