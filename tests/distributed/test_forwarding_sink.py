"""The worker's telemetry sink: records go back only to the run they belong to, and only the
events that run's parent keeps are ever built."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from chatscope.distributed.stream import ForwardingSink
from chatscope.services.runtime.observability.telemetry import TELEMETRY_EVENTS

names = st.sampled_from(sorted(TELEMETRY_EVENTS))
wanted_sets = st.frozensets(names)


@given(first=wanted_sets, second=wanted_sets, event=names)
def test_an_event_is_wanted_when_a_running_parent_wants_it(
    first: frozenset[str], second: frozenset[str], event: str
) -> None:
    """`wants` is the union of what the parents of the running subagents keep; with nothing
    running, nothing is wanted."""
    sink = ForwardingSink()
    assert not sink.wants(event)
    with sink.routed("a", lambda *_: None, first), sink.routed("b", lambda *_: None, second):
        assert sink.wants(event) == (event in first | second)
    assert not sink.wants(event)


@given(first=wanted_sets, second=wanted_sets, events=st.lists(names, max_size=12))
def test_each_record_reaches_only_its_own_run_and_only_if_wanted(
    first: frozenset[str], second: frozenset[str], events: list[str]
) -> None:
    """Records of two runs interleaved: each run gets its own, those its parent wants, in
    order; a record of no running subagent goes nowhere."""
    got: dict[str, list[str]] = {"a": [], "b": []}

    def route(run: str) -> Any:
        return lambda name, fields: got[run].append(f"{name}:{fields['runtime_id']}")

    sink = ForwardingSink()
    with sink.routed("a", route("a"), first), sink.routed("b", route("b"), second):
        for index, event in enumerate(events):
            sink.emit(event, {"runtime_id": "ab"[index % 2]})
        sink.emit("api_request", {"runtime_id": "nobody"})
    for run, wanted in (("a", first), ("b", second)):
        expected = [
            f"{event}:{run}"
            for index, event in enumerate(events)
            if "ab"[index % 2] == run and event in wanted
        ]
        assert got[run] == expected


@given(runs=st.lists(wanted_sets, max_size=8), ends=st.lists(st.integers(0, 7), max_size=8))
def test_what_is_wanted_follows_the_runs_as_they_start_and_end(
    runs: list[frozenset[str]], ends: list[int]
) -> None:
    """Runs start together and end in any order: after each end, `wants` is exactly the union
    of what the parents of the runs still going keep."""
    sink = ForwardingSink()
    with contextlib.ExitStack() as stack:
        going: dict[int, contextlib.ExitStack] = {}
        for index, wanted in enumerate(runs):
            run = stack.enter_context(contextlib.ExitStack())
            run.enter_context(sink.routed(f"run-{index}", lambda *_: None, wanted))
            going[index] = run
        for index in ends:
            if index in going:
                going.pop(index).close()
            still = frozenset().union(*(runs[i] for i in going))
            assert {event for event in TELEMETRY_EVENTS if sink.wants(event)} == still
    assert not any(sink.wants(event) for event in TELEMETRY_EVENTS)
