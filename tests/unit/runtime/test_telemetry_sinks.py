"""Telemetry sinks: which events they want, and that unwanted events are never built."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from chatscope.adapters.logging.sink import StructlogSink
from chatscope.services.messages import Usage
from chatscope.services.runtime.observability.telemetry import RecordingSink, RuntimeTelemetry
from chatscope.services.runtime.state import AgentRuntimeState

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
EVENTS = ["api_request", "api_response", "api_error", "tool_call", "compression_failed"]
WARNING_EVENTS = {"api_error", "compression_failed"}


class _PickySink:
    """Wants only the events it is told to, and remembers what reached `emit`."""

    def __init__(self, wanted: set[str]) -> None:
        self.wanted = wanted
        self.emitted: list[str] = []

    def wants(self, event: str) -> bool:
        return event in self.wanted

    def emit(self, event: str, fields: Mapping[str, Any]) -> None:
        self.emitted.append(event)


def _state() -> AgentRuntimeState:
    return AgentRuntimeState.create(provider="openai", model="m")


@given(level=st.sampled_from(sorted(LEVELS)), event=st.sampled_from(EVENTS))
def test_structlog_sink_wants_exactly_what_its_level_lets_through(level: str, event: str) -> None:
    """Errors are warnings, the rest info; the sink agrees with the logger's filter."""
    logger = structlog.wrap_logger(
        structlog.PrintLogger(),
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        processors=[],
    )
    wanted = StructlogSink(logger).wants(event)
    event_level = logging.WARNING if event in WARNING_EVENTS else logging.INFO
    assert wanted is (event_level >= LEVELS[level])


def test_a_logger_that_cannot_tell_its_level_gets_every_event() -> None:
    """Without `is_enabled_for` the sink cannot know, so nothing is dropped."""
    assert StructlogSink(object()).wants("api_response") is True


@given(wanted=st.sets(st.sampled_from(["api_request", "api_response", "tool_call"])))
def test_runtime_telemetry_hands_a_sink_only_the_events_it_wants(wanted: set[str]) -> None:
    """Unwanted events never reach `emit` (and are never built); wanted ones all do."""
    sink = _PickySink(wanted)
    telemetry = RuntimeTelemetry(sink, _state())
    telemetry.api_request(message_count=1, tool_count=0)
    telemetry.api_response(duration_ms=1.0, usage=Usage(), finish_reason="stop")
    telemetry.tool_call(name="t", call_id="c", duration_ms=1.0)
    order = ["api_request", "api_response", "tool_call"]
    assert sink.emitted == [event for event in order if event in wanted]


@pytest.mark.parametrize("event", EVENTS)
def test_recording_sink_wants_everything(event: str) -> None:
    """A recording sink is for tests: it keeps every event."""
    assert RecordingSink().wants(event) is True
