"""Exporting traces where the standard `OTEL_*` variables say, with the `otel` extra's SDK.

chatscope itself depends on `opentelemetry-api` only; an entry point (`chatscope chat`,
`chatscope serve`) sets up the SDK and its OTLP/HTTP exporter when the environment asks for
traces (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
`OTEL_TRACES_EXPORTER`; not with `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`).
The SDK reads the rest of its configuration from the process environment itself: endpoint,
headers, sampler, batching, `OTEL_SERVICE_NAME` (default here: `chatscope`) and
`OTEL_RESOURCE_ATTRIBUTES`. Without the extra, the caller is told so in one warning line.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "MISSING_EXTRA",
    "SERVICE_NAME",
    "TRACE_VARIABLES",
    "export_problems",
    "exporters_wanted",
    "sdk_installed",
    "sdk_tracer_provider",
    "traces_requested",
]

SERVICE_NAME = "chatscope"
"""`service.name` of chatscope's traces unless `OTEL_SERVICE_NAME` names another."""

TRACE_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
)
"""Any of these, set, asks for traces."""

MISSING_EXTRA = (
    "OTEL_* variables ask for traces, but the OpenTelemetry SDK is not installed: "
    "install chatscope with the otel extra (pip install 'chatscope[otel]'); "
    "no traces are exported"
)

_SDK_MODULES = ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http")
_EXPORTERS = ("otlp", "console")


def traces_requested(environ: Mapping[str, str]) -> bool:
    """Whether the environment asks for traces to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if _exporter_names(environ) == ["none"]:
        return False
    return any(environ.get(name, "").strip() for name in TRACE_VARIABLES)


def sdk_installed(find_spec: Callable[[str], Any] = importlib.util.find_spec) -> bool:
    """Whether the `otel` extra (the SDK and the OTLP/HTTP exporter) is installed."""
    try:
        return all(find_spec(module) is not None for module in _SDK_MODULES)
    except ModuleNotFoundError:  # a parent package is missing altogether
        return False


def export_problems(environ: Mapping[str, str]) -> list[str]:
    """What the environment asks for that chatscope cannot do (each a warning line)."""
    problems = [
        f"OTEL_TRACES_EXPORTER={name!r} is not supported (only otlp and console); ignored"
        for name in _exporter_names(environ)
        if name not in _EXPORTERS and name != "none"
    ]
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", ""
    )
    if protocol.strip() and protocol.strip() != "http/protobuf":
        problems.append(
            f"OTLP protocol {protocol.strip()!r} is not supported; traces are sent as "
            "http/protobuf (port 4318 by default)"
        )
    return problems


def sdk_tracer_provider(environ: Mapping[str, str]) -> Iterator[TracerProvider]:
    """A tracer provider exporting as `environ` asks, flushed and shut down on exit (a
    dependency-injector `Resource`)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    defaults = {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": SERVICE_NAME}
    provider = TracerProvider(resource=Resource.create(defaults))
    for exporter in _exporters(environ):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    try:
        yield provider
    finally:
        provider.shutdown()


def exporters_wanted(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The exporters to use: those of `OTEL_TRACES_EXPORTER` chatscope has, else `otlp`."""
    names = _exporter_names(environ)
    if not names:
        return ("otlp",)
    return tuple(name for name in _EXPORTERS if name in names)


def _exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    names = exporters_wanted(environ)
    exporters: list[SpanExporter] = []
    if "otlp" in names:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        exporters.append(OTLPSpanExporter())
    if "console" in names:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        exporters.append(ConsoleSpanExporter(out=sys.stderr))  # stdout is the answer's
    return exporters


def _exporter_names(environ: Mapping[str, str]) -> list[str]:
    value = environ.get("OTEL_TRACES_EXPORTER", "")
    return [name.strip().lower() for name in value.split(",") if name.strip()]
