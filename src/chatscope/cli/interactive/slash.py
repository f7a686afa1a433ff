"""What a line typed at the interactive prompt asks for: a prompt for the model, or a command.

A line whose first word is `/` followed by letters is a command (`/model gpt-4o`); a unique
prefix of a command's name is that command (`/mo`). Any other line is a prompt, so a path such
as `/etc/hosts is what?` goes to the model, and `//help` sends `/help` itself. `parse_line`
never raises: an unknown command or a wrong number of arguments comes back as `Invalid` with
a message that says what to type instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "COMMANDS",
    "CommandSpec",
    "Empty",
    "Invalid",
    "Line",
    "Prompt",
    "SlashCommand",
    "help_text",
    "parse_line",
]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command: how it is typed, what it does, and how many words may follow it."""

    usage: str
    summary: str
    max_args: int = 0


COMMANDS: Mapping[str, CommandSpec] = MappingProxyType(
    {
        "help": CommandSpec("/help [COMMAND]", "list the commands, or explain one", 1),
        "provider": CommandSpec(
            "/provider [NAME]", "show the provider, or switch to NAME; the conversation goes on", 1
        ),
        "model": CommandSpec(
            "/model [NAME]", "show the model, or switch to NAME; the conversation goes on", 1
        ),
        "session": CommandSpec(
            "/session [show | list | new | switch ID]",
            "this session; saved sessions; a new one; continue saved session ID (or a prefix)",
            2,
        ),
        "tools": CommandSpec("/tools", "the tools the model may call (* asks first)"),
        "compress": CommandSpec("/compress", "condense the older part of this conversation now"),
        "clear": CommandSpec("/clear", "clear the screen and start a new session"),
        "exit": CommandSpec("/exit", "leave (also Ctrl-D)"),
    }
)

_ALIASES: Mapping[str, str] = MappingProxyType({"quit": "exit", "q": "exit", "?": "help"})


@dataclass(frozen=True, slots=True)
class Prompt:
    """Text for the model."""

    text: str


@dataclass(frozen=True, slots=True)
class SlashCommand:
    """A known command and the words after it."""

    name: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Invalid:
    """A command that cannot run as typed, and what to type instead."""

    message: str


@dataclass(frozen=True, slots=True)
class Empty:
    """A blank line: nothing to do."""


Line = Prompt | SlashCommand | Invalid | Empty


def parse_line(text: str) -> Line:
    """What `text`, as submitted at the prompt, asks for."""
    stripped = text.strip()
    if not stripped:
        return Empty()
    if stripped.startswith("//"):
        return Prompt(stripped[1:])
    if stripped == "/":
        return Invalid("/help lists the commands")
    word, *args = stripped[1:].split() or [""]
    if not stripped.startswith("/") or stripped[1].isspace() or not _is_command_word(word):
        return Prompt(text.strip("\n"))
    return _command(word, tuple(args))


def _command(word: str, args: tuple[str, ...]) -> SlashCommand | Invalid:
    name = _resolve(word.lower())
    if name is None:
        return Invalid(_unknown(word))
    spec = COMMANDS[name]
    if len(args) > spec.max_args:
        return Invalid(f"usage: {spec.usage}")
    return SlashCommand(name, args)


def _is_command_word(word: str) -> bool:
    return word == "?" or (word.isascii() and word.isalpha())


def _resolve(word: str) -> str | None:
    """The command `word` names: its name, an alias, or a unique prefix of a name."""
    if word in COMMANDS:
        return word
    if word in _ALIASES:
        return _ALIASES[word]
    matches = [name for name in COMMANDS if name.startswith(word)]
    return matches[0] if len(matches) == 1 else None


def _unknown(word: str) -> str:
    close = difflib.get_close_matches(word.lower(), list(COMMANDS), n=1)
    guess = f" (did you mean /{close[0]}?)" if close else ""
    return f"unknown command /{word}{guess}; /help lists the commands"


def help_text(topic: str | None = None) -> str:
    """The command list, or one command's usage and summary."""
    if topic is not None:
        name = _resolve(topic.lstrip("/").lower())
        if name is None:
            return _unknown(topic.lstrip("/"))
        spec = COMMANDS[name]
        return f"{spec.usage}\n  {spec.summary}"
    width = max(len(spec.usage) for spec in COMMANDS.values())
    lines = [f"{spec.usage:<{width}}  {spec.summary}" for spec in COMMANDS.values()]
    lines += [
        "",
        "Enter sends; Alt-Enter (or a line ending in \\) starts a new line.",
        "Ctrl-C stops an answer (nothing of it is saved); Ctrl-D leaves.",
        "A line starting with // sends the rest with one /.",
    ]
    return "\n".join(lines)
