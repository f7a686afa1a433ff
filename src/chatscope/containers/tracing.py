"""Exporting an application's traces where the standard `OTEL_*` variables say.

The entry points (`chatscope chat` and the other commands, `chatscope serve` and its worker
processes) call `export_traces` on the container they built; a library embedding chatscope
configures OpenTelemetry itself, or hands a tracer provider in by overriding `tracer_provider`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from dependency_injector import providers

from chatscope.adapters.telemetry.export import (
    MISSING_EXTRA,
    export_problems,
    exporters_wanted,
    sdk_installed,
    sdk_tracer_provider,
    traces_requested,
)
from chatscope.containers.application import ApplicationContainer

__all__ = ["export_traces"]


def export_traces(
    app: ApplicationContainer,
    environ: Mapping[str, str],
    warn: Callable[[str], None],
    *,
    installed: Callable[[], bool] | None = None,
) -> bool:
    """Have `app` export its traces as `environ` asks; call before the app builds a scope.

    Nothing happens unless the environment asks for traces. What it asks that cannot be done
    (an exporter or protocol chatscope lacks, the `otel` extra not installed) is one `warn`
    line each; `installed` says whether the extra is (default: `sdk_installed`). The SDK's
    tracer provider is a resource of `app`: `shutdown_resources` flushes it. Returns whether
    traces are exported.
    """
    if not traces_requested(environ):
        return False
    for problem in export_problems(environ):
        warn(problem)
    if not exporters_wanted(environ):
        return False
    if not (installed or sdk_installed)():
        warn(MISSING_EXTRA)
        return False
    app.tracer_provider.override(providers.Resource(sdk_tracer_provider, environ))
    return True
