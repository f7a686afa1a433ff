"""Subagent profiles with an output schema (a file or an inline table) and MCP servers, and
subagent runs whose answer is validated into `TaskResult.output`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatscope.config.profiles import ProfileSpec, load_profile
from chatscope.errors import ConfigurationError, ProfileError
from chatscope.services.frozen import FrozenDict, thaw
from chatscope.services.runtime.invocation import ModelInvocation
from chatscope.services.subagents.profile import SubagentProfile
from chatscope.services.subagents.task import TaskRequest, TerminateReason
from chatscope.testing import FunctionProvider, ScriptedProvider, ScriptedReply
from tests.support.profiles import write_profile
from tests.support.subagents import foreground_with_runner, profile, subagent_app

SCHEMA = {
    "title": "Finding",
    "type": "object",
    "properties": {"files": {"type": "array", "items": {"type": "string"}}},
    "required": ["files"],
}
PARENT = ScriptedProvider([], name="openai")


def test_a_schema_file_relative_to_the_profile_is_read_when_loaded(tmp_path: Path) -> None:
    """`output_schema = "schemas/finding.json"` becomes the schema itself."""
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "finding.json").write_text(json.dumps(SCHEMA))
    path = write_profile(
        tmp_path, "finder", provider="demo", model="m", output_schema="schemas/finding.json"
    )
    spec = load_profile(path).spec
    assert spec.output_schema == SCHEMA
    loaded = SubagentProfile.from_spec(spec)
    assert isinstance(loaded.output_schema, FrozenDict)
    assert thaw(loaded.output_schema) == SCHEMA
    hash(loaded)


def test_an_inline_schema_table_is_kept_as_it_is(tmp_path: Path) -> None:
    """An inline table is the schema; it is checked when the profile loads."""
    path = write_profile(tmp_path, "finder", provider="demo", model="m", output_schema=SCHEMA)
    assert load_profile(path).spec.output_schema == SCHEMA


@pytest.mark.parametrize(
    ("write", "expected"),
    [
        (None, "cannot read"),
        ("{not json", "is not JSON"),
        ("[1, 2]", "is not a JSON object"),
        ('{"type": 5}', "not a valid JSON schema"),
    ],
)
def test_a_bad_schema_file_is_a_profile_error_naming_the_key(
    tmp_path: Path, write: str | None, expected: str
) -> None:
    """A missing, non-JSON or invalid schema file names the profile, the key and the problem."""
    if write is not None:
        (tmp_path / "schema.json").write_text(write)
    path = write_profile(tmp_path, "p", provider="demo", model="m", output_schema="schema.json")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert caught.value.keys == ("output_schema",)
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)


def test_an_invalid_inline_schema_is_a_profile_error(tmp_path: Path) -> None:
    """An inline table that is no JSON schema is refused by key."""
    path = write_profile(
        tmp_path, "p", provider="demo", model="m", output_schema={"type": "nonsense"}
    )
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert caught.value.keys == ("output_schema",)
    assert "not a valid JSON schema" in str(caught.value)


def test_a_spec_whose_schema_file_was_not_read_cannot_become_a_profile() -> None:
    """`from_spec` never reads files: a path left in the spec is an error, not a silent drop."""
    spec = ProfileSpec(name="p", provider="demo", model="m", output_schema=Path("s.json"))
    with pytest.raises(ConfigurationError, match="was not read"):
        SubagentProfile.from_spec(spec)


def test_mcp_servers_go_from_the_file_to_the_scope_request(tmp_path: Path) -> None:
    """`mcp_servers` narrows the subagent's MCP servers; unset means all of them."""
    path = write_profile(tmp_path, "p", provider="demo", model="m", mcp_servers=["docs", "git"])
    spec = load_profile(path).spec
    assert spec.mcp_servers == ("docs", "git")
    loaded = SubagentProfile.from_spec(spec)
    assert loaded.mcp_servers == ("docs", "git")
    assert loaded.scope_request("p").mcp_servers == ("docs", "git")
    plain = load_profile(write_profile(tmp_path, "q", provider="demo", model="m")).spec
    assert SubagentProfile.from_spec(plain).scope_request("q").mcp_servers is None
    assert profile(mcp_servers=["a"]).mcp_servers == ("a",)


async def test_a_subagent_run_with_a_schema_returns_the_validated_output(tmp_path: Path) -> None:
    """The run asks for the schema; its JSON answer is `TaskResult.output` and in `as_json`."""
    sub = ScriptedProvider(
        [ScriptedReply(text="nope"), ScriptedReply(text='{"files": ["a.py"]}')], name="anthropic"
    )
    app = subagent_app(PARENT, sub, workspace=tmp_path, profiles=[profile(output_schema=SCHEMA)])
    _, runner = foreground_with_runner(app)
    result = await runner.run(TaskRequest(subagent_name="helper", goal_prompt="find"))
    assert result.terminate_reason is TerminateReason.GOAL
    assert thaw(result.output) == {"files": ["a.py"]}
    assert result.as_json()["output"] == {"files": ["a.py"]}
    assert result.final_message == '{"files": ["a.py"]}'
    sent = sub.invocations[0].output_schema
    assert sent is not None
    assert sent.name == "Finding"


async def test_a_subagent_answer_that_never_validates_ends_in_error(tmp_path: Path) -> None:
    """After the retry the run ends in ERROR naming the validation problem; no output."""

    def respond(invocation: ModelInvocation) -> ScriptedReply:
        return ScriptedReply(text='{"files": "a.py"}')

    sub = FunctionProvider(respond, name="anthropic")
    app = subagent_app(PARENT, sub, workspace=tmp_path, profiles=[profile(output_schema=SCHEMA)])
    _, runner = foreground_with_runner(app)
    result = await runner.run(TaskRequest(subagent_name="helper", goal_prompt="find"))
    assert result.terminate_reason is TerminateReason.ERROR
    assert result.error is not None
    assert result.error.startswith("OutputValidationError:")
    assert "is not of type 'array'" in result.error
    assert result.output is None
    assert result.as_json()["output"] is None
    assert len(sub.invocations) == 2


async def test_a_subagent_without_a_schema_has_no_output(tmp_path: Path) -> None:
    """Plain runs are unchanged: no schema asked, `output` None."""
    sub = ScriptedProvider([ScriptedReply(text="done")], name="anthropic")
    app = subagent_app(PARENT, sub, workspace=tmp_path, profiles=[profile()])
    _, runner = foreground_with_runner(app)
    result = await runner.run(TaskRequest(subagent_name="helper", goal_prompt="go"))
    assert (result.output, result.as_json()["output"]) == (None, None)
    assert sub.invocations[0].output_schema is None


async def test_the_output_retries_setting_reaches_every_chat(tmp_path: Path) -> None:
    """`output_retries = 0` in settings: the first invalid answer already fails the run."""
    sub = FunctionProvider(lambda _: ScriptedReply(text="{}"), name="anthropic")
    app = subagent_app(
        PARENT, sub, workspace=tmp_path, profiles=[profile(output_schema=SCHEMA)], output_retries=0
    )
    _, runner = foreground_with_runner(app)
    result = await runner.run(TaskRequest(subagent_name="helper", goal_prompt="find"))
    assert result.terminate_reason is TerminateReason.ERROR
    assert len(sub.invocations) == 1
