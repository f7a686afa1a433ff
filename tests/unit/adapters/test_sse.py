"""The SSE parser: line ends, multi-line data, comments, and chunks split anywhere."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

from hypothesis import given
from hypothesis import strategies as st

from chatscope.adapters.providers._sse import SSEEvent, SSEParser, iter_sse_batches


def _parse(*chunks: str) -> list[SSEEvent]:
    parser = SSEParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events + parser.close()


def test_events_are_split_on_blank_lines_with_names_and_data() -> None:
    """`event:` names the event, `data:` lines are joined with newlines, comments are skipped."""
    body = ": keep-alive\nevent: delta\ndata: a\ndata:  b\n\ndata: {}\n\n"
    assert _parse(body) == [("delta", "a\n b"), ("message", "{}")]


def test_crlf_and_cr_line_ends_are_accepted() -> None:
    """Gemini's CRLF and bare CR end lines just like LF."""
    assert _parse("data: 1\r\n\r\ndata: 2\r\rdata: 3\n\n") == [
        ("message", "1"),
        ("message", "2"),
        ("message", "3"),
    ]


def test_unicode_line_separators_inside_data_do_not_split_lines() -> None:
    """U+2028 and U+0085 are data, not line ends (unlike `str.splitlines`)."""
    assert _parse('data: {"t": "a\u2028b\u0085c"}\n\n') == [("message", '{"t": "a\u2028b\u0085c"}')]


def test_an_unterminated_last_event_is_still_delivered() -> None:
    """A body ending without the closing blank line still yields its last event."""
    assert _parse("data: first\n\ndata: last") == [
        ("message", "first"),
        ("message", "last"),
    ]


def test_a_crlf_split_across_chunks_is_one_line_end() -> None:
    """A CR at the end of one chunk and the LF starting the next make a single line end."""
    assert _parse("data: x\r", "\n\r", "\n") == [("message", "x")]


@given(chunks=st.lists(st.sampled_from(["data: a\n", "\n", "data: b", "\n\n", ": c\n", "x"])))
async def test_batches_hold_what_the_parser_gives_for_the_same_chunks(chunks: list[str]) -> None:
    """`iter_sse_batches` yields, in order, the events the parser completes for each chunk and
    then the unterminated last one, never an empty list."""

    async def text() -> AsyncIterator[str]:
        for chunk in chunks:
            yield chunk

    batches = [batch async for batch in iter_sse_batches(text())]
    assert all(batches)
    assert [event for batch in batches for event in batch] == _parse(*chunks)


_lines = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=20).map(
            lambda text: f"data: {text}"
        ),
        st.sampled_from(["", ": comment", "event: named", "data:", "id: 7"]),
    ),
    max_size=30,
)


@given(
    lines=_lines,
    line_end=st.sampled_from(["\n", "\r\n", "\r"]),
    cuts=st.lists(st.integers(0, 10**4)),
)
def test_any_split_of_a_body_gives_the_same_events(
    lines: list[str], line_end: str, cuts: list[int]
) -> None:
    """However the body is cut into chunks, the parsed events are the same as for the whole."""
    body = line_end.join(lines) + line_end * 2
    points = sorted({cut % (len(body) + 1) for cut in cuts} | {0, len(body)})
    pieces = [body[start:end] for start, end in itertools.pairwise(points)]
    assert _parse(*pieces) == _parse(body)


@given(values=st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=30)))
def test_data_round_trips(values: list[str]) -> None:
    """Each value sent as one `data:` event comes back unchanged, in order."""
    body = "".join(f"data: {value}\n\n" for value in values)
    assert [data for _, data in _parse(body)] == values
