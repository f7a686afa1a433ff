"""`chatscope chat` exports its traces where `OTEL_EXPORTER_OTLP_ENDPOINT` says (OTLP/HTTP)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from chatscope.cli.main import main
from tests.support.cli import cli_env, run_cli


class _Collector(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP trace exports and keeps their bodies on the server."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append((self.path, body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@contextmanager
def _collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    server.bodies = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.bodies  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


async def test_chat_sends_its_spans_to_the_otlp_endpoint(tmp_path: Path) -> None:
    """One `chatscope chat` run (demo provider, one tool call): its spans reach the collector
    before the process exits, as one trace of service `chatscope`."""
    with _collector() as (endpoint, bodies):
        env = cli_env(
            tmp_path / "data",
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            CHATSCOPE_HISTORY_BACKEND="memory",
        )
        result = await run_cli("chat", "hello", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr
    assert [path for path, _ in bodies] == ["/v1/traces"] * len(bodies)
    spans, services = [], set()
    for _, body in bodies:
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
            resource = {item.key: item.value for item in resource_spans.resource.attributes}
            services.add(resource["service.name"].string_value)
            for scope_spans in resource_spans.scope_spans:
                assert scope_spans.scope.name == "chatscope"
                spans.extend(scope_spans.spans)
    assert services == {"chatscope"}
    assert sorted(span.name for span in spans) == [
        "chat chatscope-demo",
        "chat chatscope-demo",
        "execute_tool list_directory",
        "invoke_agent chatscope",
    ]
    assert len({span.trace_id for span in spans}) == 1


def test_a_missing_extra_is_one_warning_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`OTEL_*` set but no SDK: the chat answers, and stderr says so in one line."""
    for name in [name for name in os.environ if name.startswith(("CHATSCOPE_", "OTEL_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("CHATSCOPE_HISTORY_BACKEND", "memory")
    monkeypatch.setattr("chatscope.containers.tracing.sdk_installed", lambda: False)
    monkeypatch.chdir(tmp_path)
    assert main(["chat", "hello"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert "pip install 'chatscope[otel]'" in warnings[0]
    assert "You asked: 'hello'" in captured.out
