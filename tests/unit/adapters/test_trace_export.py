"""When and how traces are exported: the standard `OTEL_*` variables and the `otel` extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider

from chatscope.adapters.telemetry.export import (
    MISSING_EXTRA,
    TRACE_VARIABLES,
    export_problems,
    exporters_wanted,
    sdk_installed,
    traces_requested,
)
from chatscope.containers.tracing import export_traces
from chatscope.testing import build_test_app

other_variables = st.dictionaries(
    st.sampled_from(
        ["OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "PATH", "HOME"]
    ),
    st.text(max_size=10),
)
asking = st.dictionaries(
    st.sampled_from(TRACE_VARIABLES),
    st.sampled_from(["http://127.0.0.1:4318", "otlp", "console", "otlp,console"]),
    min_size=1,
)


@given(environ=other_variables)
def test_nothing_is_exported_unless_a_trace_variable_is_set(environ: dict[str, str]) -> None:
    """Other variables, `OTEL_*` or not, never ask for traces."""
    assert not traces_requested(environ)


@given(environ=asking, others=other_variables)
def test_a_trace_variable_asks_for_traces(environ: dict[str, str], others: dict[str, str]) -> None:
    """An endpoint or an exporter asks for traces."""
    assert traces_requested(others | environ)


@given(
    environ=asking,
    disabled=st.sampled_from(["true", "TRUE", " True "]),
)
def test_the_sdk_disabled_or_no_exporter_means_no_traces(
    environ: dict[str, str], disabled: str
) -> None:
    """`OTEL_SDK_DISABLED=true` wins over everything; so does `OTEL_TRACES_EXPORTER=none`."""
    assert not traces_requested(environ | {"OTEL_SDK_DISABLED": disabled})
    assert not traces_requested(environ | {"OTEL_TRACES_EXPORTER": "none"})


exporter_names = st.lists(
    st.sampled_from(["otlp", "console", "zipkin", "jaeger", "prometheus"]), max_size=4
)


@given(names=exporter_names, upper=st.booleans(), spaced=st.booleans())
def test_exporters_wanted_are_those_chatscope_has(
    names: list[str], upper: bool, spaced: bool
) -> None:
    """OTLP when `OTEL_TRACES_EXPORTER` is unset or empty; else the exporters it names that
    chatscope has (otlp, console), in that order, whatever the case and spacing."""
    written = [name.upper() if upper else name for name in names]
    value = (", " if spaced else ",").join(written)
    wanted = exporters_wanted({"OTEL_TRACES_EXPORTER": value} if value else {})
    if not names:
        assert wanted == ("otlp",)
    else:
        assert wanted == tuple(name for name in ("otlp", "console") if name in names)
    problems = export_problems({"OTEL_TRACES_EXPORTER": value})
    assert len(problems) == len([name for name in names if name not in ("otlp", "console")])


def test_what_cannot_be_done_is_named() -> None:
    """An exporter chatscope lacks, or the gRPC protocol, is one problem line each."""
    assert export_problems({"OTEL_TRACES_EXPORTER": "otlp"}) == []
    assert export_problems({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}) == []
    [exporter] = export_problems({"OTEL_TRACES_EXPORTER": "zipkin,otlp"})
    assert "'zipkin' is not supported" in exporter
    [protocol] = export_problems({"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"})
    assert "'grpc' is not supported" in protocol


def test_the_extra_is_found_or_missed() -> None:
    """Installed here (a dev dependency); missing when a module or its package is not."""
    assert sdk_installed()
    assert not sdk_installed(lambda name: None)

    def no_package(name: str) -> None:
        raise ModuleNotFoundError(name)

    assert not sdk_installed(no_package)


def test_a_missing_extra_is_one_warning_and_no_tracing(tmp_path: Path) -> None:
    """With `OTEL_*` set and no SDK: one warning line naming the extra; spans stay off."""
    app = build_test_app(workspace=tmp_path)
    lines: list[str] = []
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert not export_traces(app, environ, lines.append, installed=lambda: False)
    assert lines == [MISSING_EXTRA]
    assert "chatscope[otel]" in MISSING_EXTRA
    assert not isinstance(app.tracer_provider(), TracerProvider)


def test_nothing_asked_nothing_done(tmp_path: Path) -> None:
    """Without trace variables there is no warning and no SDK, installed or not."""
    app = build_test_app(workspace=tmp_path)
    lines: list[str] = []
    assert not export_traces(app, {"OTEL_SERVICE_NAME": "x"}, lines.append)
    assert lines == []
    assert not isinstance(app.tracer_provider(), TracerProvider)


async def test_exported_traces_are_flushed_at_shutdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The console exporter writes every span of a turn to stderr by the time the application
    shuts down; the resource names the service `chatscope`."""
    app = build_test_app(workspace=tmp_path)
    lines: list[str] = []
    assert export_traces(app, {"OTEL_TRACES_EXPORTER": "console"}, lines.append)
    assert lines == []
    await app.init_resources()  # type: ignore[misc]
    assert isinstance(app.tracer_provider(), TracerProvider)
    chat = app.runtime.chat_session(context=app.runtime.scopes().foreground())
    await chat.send("hello")
    await app.shutdown_resources()  # type: ignore[misc]
    captured = capsys.readouterr()
    assert '"name": "invoke_agent chatscope"' in captured.err
    assert '"service.name": "chatscope"' in captured.err
    assert "invoke_agent" not in captured.out


def test_without_trace_variables_the_sdk_is_never_imported(tmp_path: Path) -> None:
    """chatscope needs the OpenTelemetry API only: a whole chat through the containers, with
    no `OTEL_*` variable, loads no module of the SDK or the exporter."""
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from chatscope.containers.tracing import export_traces\n"
        "from chatscope.testing import build_test_app\n"
        f"app = build_test_app(workspace=Path({str(tmp_path)!r}))\n"
        "assert not export_traces(app, {}, print)\n"
        "chat = app.runtime.chat_session(context=app.runtime.scopes().foreground())\n"
        "asyncio.run(chat.send('hi'))\n"
        "loaded = [m for m in sys.modules if m.startswith(('opentelemetry.sdk', "
        "'opentelemetry.exporter'))]\n"
        "assert loaded == [], loaded\n"
        "assert 'opentelemetry.trace' in sys.modules\n"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
