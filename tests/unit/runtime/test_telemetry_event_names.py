"""`TELEMETRY_EVENTS` names every event a scope's telemetry emits: a remote worker builds and
sends back only the events of that set that the parent's sink keeps."""

from __future__ import annotations

import ast
import inspect

from chatscope.services.runtime.observability import telemetry


def emitted_names() -> set[str]:
    """The event names `RuntimeTelemetry`'s methods pass to `_emit`."""
    tree = ast.parse(inspect.getsource(telemetry.RuntimeTelemetry))
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "_emit"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    }


def test_the_event_set_is_exactly_what_the_scope_emits() -> None:
    """No event is missing from the set (a worker would never send it back) and none is left
    over."""
    assert emitted_names() == set(telemetry.TELEMETRY_EVENTS)
    assert len(emitted_names()) == 8
