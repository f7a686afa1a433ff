"""`session_title` against its definition: the first prompt with visible text, each character
that is not printable made a space, whitespace collapsed, cut to `TITLE_LENGTH`.

`session_title` splits on whitespace first and reads character by character only when that
leaves a character that is not printable; these properties hold it to the character-by-character
definition for any text: control characters, line breaks, Unicode separators and format
characters, and prompts long enough to be cut.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import example, given
from hypothesis import strategies as st

from chatscope.adapters.storage.sql_history import TITLE_LENGTH, session_title
from chatscope.services.messages import Message, Role
from tests.support.histories import reply, user


def defined_title(messages: Sequence[Message]) -> str:
    """The title by its definition, one character at a time."""
    for message in messages:
        if message.role is Role.USER:
            printable = "".join(c if c.isprintable() else " " for c in message.text)
            line = " ".join(printable.split())
            if line:
                return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"
    return ""


# Whitespace that is not printable (line breaks, tabs, separators), characters that are neither
# (NUL, escape, zero-width and bidi controls, a private-use character), and plain text.
_awkward = st.sampled_from(
    "\n\r\t\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u2029\u3000"
    "\x00\x07\x1b\x7f\x9f\xad\u200b\u200e\u2066\ufeff\ue000"
)
_characters = st.characters() | _awkward | st.sampled_from(" ab")
_prompts = (
    st.text(_characters, max_size=40)
    | st.text(_characters, min_size=TITLE_LENGTH - 4, max_size=TITLE_LENGTH + 6)
    | st.text(_characters, min_size=2 * TITLE_LENGTH, max_size=6 * TITLE_LENGTH)
)


@given(prompt=_prompts, greeting=st.booleans(), second=_prompts)
@example(prompt="a\x00b\nc", greeting=False, second="")
@example(prompt="\u200b" * 3, greeting=True, second="next")
@example(prompt="x" * TITLE_LENGTH, greeting=False, second="")
@example(prompt="x\n" * TITLE_LENGTH, greeting=False, second="")
@example(prompt=" " + "y\x1b" * TITLE_LENGTH, greeting=False, second="")
def test_the_title_is_the_character_by_character_definition(
    prompt: str, greeting: bool, second: str
) -> None:
    """Any prompts, after an answer or not: the very title the definition gives."""
    messages = [*([reply("hello")] if greeting else []), user(prompt), user(second)]
    assert session_title(messages) == defined_title(messages)


@given(prompt=st.text(st.characters(categories=("L", "N", "P", "S", "Zs")), max_size=200))
def test_a_printable_prompt_is_its_words_on_one_line(prompt: str) -> None:
    """A prompt of printable characters only: its words joined by single spaces, cut to
    `TITLE_LENGTH`."""
    line = " ".join(prompt.split())
    expected = line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"
    assert session_title([user(prompt)]) == (expected or "")
