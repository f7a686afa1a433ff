"""Recording spans in tests: the OpenTelemetry SDK exporting into memory.

`SpanRecorder` is a tracer provider handed to an application (`record_spans(app)`), so nothing
process-wide (the global tracer provider) is touched; `everything_recorded(span)` is every
text a span carries, for looking for what must not be there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from dependency_injector import providers
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chatscope.containers.application import ApplicationContainer

__all__ = [
    "SpanRecorder",
    "attribute",
    "everything_recorded",
    "parent_id",
    "record_spans",
    "span_id",
]


class SpanRecorder:
    """A tracer provider whose every ended span is kept in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def spans(self) -> tuple[ReadableSpan, ...]:
        """Every span ended so far, in the order they ended."""
        return tuple(self.exporter.get_finished_spans())

    def named(self, prefix: str) -> list[ReadableSpan]:
        """The spans whose name starts with `prefix` (`chat`, `execute_tool task`, ...)."""
        return [span for span in self.spans() if span.name.startswith(prefix)]

    def one(self, prefix: str) -> ReadableSpan:
        """The only span whose name starts with `prefix`."""
        [span] = self.named(prefix)
        return span

    def by_trace(self) -> dict[int, list[ReadableSpan]]:
        """The spans of each trace, by trace id."""
        traces: dict[int, list[ReadableSpan]] = defaultdict(list)
        for span in self.spans():
            traces[_context(span).trace_id].append(span)
        return dict(traces)

    def clear(self) -> None:
        """Forget the spans recorded so far."""
        self.exporter.clear()


def record_spans(app: ApplicationContainer, recorder: SpanRecorder | None = None) -> SpanRecorder:
    """Make `app` trace with `recorder` (a new one unless given); before its first scope."""
    recorder = recorder or SpanRecorder()
    app.tracer_provider.override(providers.Object(recorder.provider))
    return recorder


def attribute(span: ReadableSpan, name: str) -> Any:
    """One attribute of `span` (None when it has none of that name)."""
    return (span.attributes or {}).get(name)


def span_id(span: ReadableSpan) -> int:
    """The span's own id."""
    own: int = _context(span).span_id
    return own


def parent_id(span: ReadableSpan) -> int | None:
    """The id of the span's parent, None for a root span."""
    return span.parent.span_id if span.parent is not None else None


def everything_recorded(spans: Sequence[ReadableSpan]) -> str:
    """Every name, attribute, event and status text of `spans`, as one string."""
    return "\n".join(piece for span in spans for piece in _texts(span))


def _texts(span: ReadableSpan) -> Iterator[str]:
    yield span.name
    yield from _attribute_texts(span.attributes)
    for event in span.events:
        yield event.name
        yield from _attribute_texts(event.attributes)
    if span.status.description:
        yield span.status.description


def _attribute_texts(attributes: Any) -> Iterator[str]:
    for key, value in (attributes or {}).items():
        yield str(key)
        values = value if isinstance(value, tuple | list) else (value,)
        yield from (str(item) for item in values)


def _context(span: ReadableSpan) -> Any:
    context = span.context
    assert context is not None
    return context
