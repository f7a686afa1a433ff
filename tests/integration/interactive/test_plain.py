"""Off a terminal the command line stays plain and scriptable; `--help` and the prompt's
modules stay light; the lazily filled parser says what the eager one said."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from chatscope.cli.interactive.launch import LazySubcommands, on_terminal, read_prompt
from chatscope.cli.main import EXIT_USAGE, build_parser
from chatscope.config.settings import PROVIDER_NAMES
from chatscope.errors import ConfigurationError
from tests.support.cli import cli_env, run_cli
from tests.support.terminal import Terminal

_HEAVY = ("pydantic", "sqlalchemy", "dependency_injector", "httpx", "chatscope.containers")


def _run(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "chatscope", *args],
        cwd=cwd,
        env=cli_env(cwd / "data"),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "an interactive chat needs a terminal"),
        (("chat",), "chat needs a prompt when not on a terminal"),
        (("chat", "--json"), "chat --json needs a prompt"),
        (("chat", "--output-schema", "s.json"), "chat --output-schema needs a prompt"),
    ],
)
def test_without_a_prompt_off_a_terminal_is_a_usage_error(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    """Piped, nothing waits for a person: no prompt means exit 2 and a hint."""
    result = _run(*args, cwd=tmp_path)
    assert result.returncode == EXIT_USAGE
    assert message in result.stderr
    assert result.stdout == ""


def test_chat_dash_reads_the_prompt_from_stdin(tmp_path: Path) -> None:
    """`chatscope chat -` answers what stdin holds, plainly."""
    result = _run("chat", "-", "--json", cwd=tmp_path, stdin="What is on stdin?\n")
    assert result.returncode == 0, result.stderr
    assert "You asked: 'What is on stdin?" in json.loads(result.stdout)["text"]


def test_chat_dash_with_empty_stdin_is_a_usage_error(tmp_path: Path) -> None:
    result = _run("chat", "-", cwd=tmp_path, stdin="  \n")
    assert result.returncode == EXIT_USAGE
    assert "stdin held no prompt" in result.stderr


def test_a_piped_answer_has_no_escape_codes(tmp_path: Path) -> None:
    """Streaming to a pipe prints the raw text, as before: no colours, no cursor moves."""
    result = _run("chat", "hello", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    assert "You asked: 'hello'" in result.stdout


@pytest.mark.parametrize("extra", [["--json"], []])
def test_a_prompt_on_a_terminal_stays_a_one_shot_plain_answer(
    tmp_path: Path, extra: list[str]
) -> None:
    """`chat PROMPT` on a terminal answers once and ends: `--json` prints one document, and
    the plain answer is the text itself (no Markdown rendering, no prompt)."""
    with Terminal(["chat", "hello", *extra], cwd=tmp_path, env=cli_env(tmp_path)) as terminal:
        assert terminal.wait() == 0
    if extra:
        document = json.loads(terminal.output.strip().splitlines()[-1])
        assert document["provider"] == "demo"
    assert b"\x1b[" not in terminal.raw
    assert "You asked: 'hello'" in terminal.output


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    """`--help` loads neither the settings model, the database, the containers nor HTTP."""
    code = (
        "import sys, runpy\n"
        "sys.argv = ['chatscope', '--help']\n"
        "try:\n    runpy.run_module('chatscope', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    loaded = set(result.stderr.split())
    assert "chat interactively, or send one prompt" in result.stdout
    assert not [m for m in loaded if m.startswith(_HEAVY)], sorted(loaded)


def test_the_prompt_needs_nothing_heavy_to_show(tmp_path: Path) -> None:
    """The interactive chat's modules import no settings model, database, containers, HTTP,
    nor rich's Markdown (that comes behind the prompt)."""
    code = (
        "import sys\nimport chatscope.cli.interactive.repl\nprint(' '.join(sorted(sys.modules)))\n"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    loaded = set(result.stdout.split())
    assert "prompt_toolkit" in loaded
    assert not [m for m in loaded if m.startswith((*_HEAVY, "rich.markdown"))], sorted(loaded)


def _subcommands(parser: argparse.ArgumentParser) -> LazySubcommands:
    [action] = [a for a in parser._actions if isinstance(a, LazySubcommands)]
    return action


def test_the_listing_says_what_each_command_module_declares() -> None:
    """Every subcommand's help in `--help` is the help its own module gives it."""
    subcommands = _subcommands(build_parser())
    listed = {action.dest: action.help for action in subcommands._get_subactions()}
    subcommands.fill_all()
    assert subcommands.declared_help == {k: v for k, v in listed.items() if k != "presets"}
    assert set(listed) == set(subcommands.choices or {})


def test_a_filled_chat_parser_still_offers_every_provider() -> None:
    """`chat --provider` accepts exactly the provider names, and lists them in its help."""
    parser = build_parser()
    args = parser.parse_args(["chat", "hi", "--provider", "anthropic"])
    assert args.provider == "anthropic"
    chat = _subcommands(parser).choices["chat"]
    assert ",".join(PROVIDER_NAMES) in "".join(chat.format_help().split())
    with pytest.raises(SystemExit):
        parser.parse_args(["chat", "hi", "--provider", "nowhere"])


def test_no_color_reaches_the_namespace_from_either_place() -> None:
    parser = build_parser()
    assert parser.parse_args(["--no-color"]).no_color is True
    assert parser.parse_args(["chat", "--no-color"]).no_color is True
    assert parser.parse_args(["--no-color", "chat"]).no_color is True
    assert parser.parse_args(["chat"]).no_color is False


def test_read_prompt() -> None:
    assert read_prompt("hi", io.StringIO("ignored")) == "hi"
    assert read_prompt("-", io.StringIO("from\nstdin\n")) == "from\nstdin\n"
    with pytest.raises(ConfigurationError):
        read_prompt("-", io.StringIO(""))


def test_on_terminal_needs_both_ends() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            if self.closed:
                raise ValueError("I/O operation on closed file")
            return True

    closed = Tty()
    closed.close()
    assert on_terminal(Tty(), Tty())
    assert not on_terminal(Tty(), io.StringIO())
    assert not on_terminal(io.StringIO(), Tty())
    assert not on_terminal(closed, Tty())


async def test_sessions_still_run_through_the_lazy_parser(tmp_path: Path) -> None:
    """A command whose arguments come from its own module parses and runs as before."""
    result = await run_cli("sessions", "list", "--json", cwd=tmp_path, env=cli_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
