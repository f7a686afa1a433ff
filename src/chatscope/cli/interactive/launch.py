"""How the command line starts fast, and when it opens the interactive chat.

`chatscope --help` and the interactive prompt must appear quickly, so nothing here imports the
settings model, the containers, the database or a provider: a subcommand's arguments are added
(`LazySubcommands`) and its module imported only when that subcommand is parsed, the provider
names are read when first looked at (`ProviderNames`), and the interactive chat's own modules
are imported when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO, overload

from chatscope.errors import ConfigurationError

if TYPE_CHECKING:
    _SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    _SubParsers = argparse._SubParsersAction

__all__ = [
    "LazySubcommands",
    "ProviderNames",
    "add_color_flag",
    "asks_for_interactive",
    "color_disabled",
    "not_interactive_reason",
    "on_terminal",
    "read_prompt",
    "run_interactive",
]

Fill = Callable[["LazySubcommands"], None]


class LazySubcommands(_SubParsers):
    """Subcommands whose arguments are added only when one of them is parsed.

    `add_lazy(name, help, fill)` lists the subcommand (its help shows in `--help`); `fill` adds
    its arguments when it is chosen. A `fill` may call `add_parser` for names already listed
    (a module's own `add_*_parser` function does): it gets the listed parser back, and the help
    it passed is kept in `declared_help`, so a test can hold the listing to it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fills: dict[str, Fill] = {}
        self.declared_help: dict[str, str] = {}

    def add_lazy(self, name: str, help: str, fill: Fill | None = None) -> None:
        """List subcommand `name`; `fill` adds its arguments when it is parsed."""
        self.add_parser(name, help=help)
        if fill is not None:
            self._fills[name] = fill

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        """A new subcommand's parser, or the listed one while its `fill` runs."""
        listed = self._name_parser_map.get(name)
        if listed is None:
            return super().add_parser(name, **kwargs)
        self.declared_help[name] = kwargs.get("help", "")
        if "description" in kwargs:
            listed.description = kwargs["description"]
        return listed

    def fill(self, name: str) -> None:
        """Add the arguments of subcommand `name` (once; a `fill` shared by several names
        fills them all)."""
        fill = self._fills.get(name)
        if fill is None:
            return
        for other in [key for key, value in self._fills.items() if value is fill]:
            del self._fills[other]
        fill(self)

    def fill_all(self) -> None:
        """Add every subcommand's arguments (what an eager parser would hold)."""
        for name in list(self._fills):
            self.fill(name)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if isinstance(values, Sequence) and values and isinstance(values[0], str):
            self.fill(values[0])
        super().__call__(parser, namespace, values, option_string)


class ProviderNames(Sequence[str]):
    """`PROVIDER_NAMES`, read when first looked at: the settings module takes a fifth of a
    second to import, which `chatscope chat` should not pay before its prompt appears."""

    @staticmethod
    def _names() -> tuple[str, ...]:
        from chatscope.config.settings import PROVIDER_NAMES

        return PROVIDER_NAMES

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __contains__(self, value: object) -> bool:
        return value in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())


def add_color_flag(parser: argparse.ArgumentParser, *, top_level: bool = True) -> None:
    """`--no-color`; a subcommand's copy leaves the top-level value alone unless given."""
    parser.add_argument(
        "--no-color",
        action="store_true",
        default=False if top_level else argparse.SUPPRESS,
        help="no colours in the interactive chat (also: the NO_COLOR variable)",
    )


def asks_for_interactive(args: argparse.Namespace) -> bool:
    """`chatscope` alone, or `chatscope chat` without a prompt."""
    return args.command is None or (args.command == "chat" and args.prompt is None)


def on_terminal(stdin: TextIO, stdout: TextIO) -> bool:
    """Whether a person is at a terminal on both ends."""
    return _isatty(stdin) and _isatty(stdout)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def not_interactive_reason(args: argparse.Namespace, *, terminal: bool) -> str | None:
    """Why this request for an interactive chat is a usage error (None when it is not)."""
    if args.command is None and not terminal:
        return (
            "the following arguments are required: command (an interactive chat needs a "
            "terminal; `chatscope chat -` reads the prompt from stdin)"
        )
    if args.command != "chat":
        return None
    for flag, given in (("--json", args.json), ("--output-schema", args.output_schema)):
        if given:
            return f"chat {flag} needs a prompt: give one, or - to read it from stdin"
    if not terminal:
        return "chat needs a prompt when not on a terminal: give one, or - to read it from stdin"
    return None


def read_prompt(prompt: str, stdin: TextIO) -> str:
    """The prompt of `chat PROMPT`; `-` means all of stdin."""
    if prompt != "-":
        return prompt
    text = stdin.read()
    if not text.strip():
        raise ConfigurationError("chat -: stdin held no prompt")
    return text


def color_disabled(args: argparse.Namespace, environ: Mapping[str, str]) -> bool:
    """`--no-color`, or a non-empty `NO_COLOR` (https://no-color.org)."""
    return bool(getattr(args, "no_color", False) or environ.get("NO_COLOR"))


def run_interactive(args: argparse.Namespace) -> int:
    """Open the interactive chat on this process's terminal; returns the exit status."""
    import asyncio  # the prompt's modules load only when it opens

    from chatscope.cli.interactive.repl import ChatOptions, run_terminal_chat

    options = ChatOptions.from_args(args, no_color=color_disabled(args, os.environ))
    return asyncio.run(run_terminal_chat(options, sys.stdout))
