"""`chatscope serve` freezes what start-up made (`gc.freeze`): the app, its container and every
module live as long as the process, and a full collection that walked them paused every open
stream (p99 added by the server: about +170 to +250 ms before, +110 to +130 ms after, in
`benchmarks/serve_streams.py`). Both ways of serving do it, and only they: `create_app`, which
applications mount in processes of their own, leaves their collector alone."""

from __future__ import annotations

import argparse
import gc
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from chatscope.cli import serve
from chatscope.config.settings import ExplicitSettings
from chatscope.containers.application import ApplicationContainer
from chatscope.web import create_app
from chatscope.web.app import app_from_environment


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Nothing frozen before the test, and nothing left frozen after it."""
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
def test_one_serving_process_freezes_its_start_up_before_it_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`chatscope serve` (one process): frozen by the time uvicorn is handed the app."""
    frozen_when_served: list[int] = []

    def fake_run(app: Any, **options: Any) -> None:
        frozen_when_served.append(gc.get_freeze_count())

    monkeypatch.setattr(uvicorn, "run", fake_run)
    settings = ExplicitSettings(workspace=tmp_path, data_dir=tmp_path / "data")
    args = argparse.Namespace(host=None, port=0, workers=1, env_file=None)
    assert serve.run_serve(settings, args, io.StringIO()) == 0
    assert len(frozen_when_served) == 1
    assert frozen_when_served[0] > 0


@pytest.mark.usefixtures("unfrozen")
def test_each_worker_process_freezes_the_app_it_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`chatscope serve --workers N`: the factory each worker calls freezes its start-up."""
    monkeypatch.setenv("CHATSCOPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHATSCOPE_WORKSPACE", str(tmp_path))
    app_from_environment()
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("unfrozen")
def test_an_app_an_application_mounts_leaves_its_collector_alone(tmp_path: Path) -> None:
    """`create_app` is for applications' own processes: it freezes nothing."""
    create_app(ApplicationContainer(settings=ExplicitSettings(workspace=tmp_path), environ={}))
    assert gc.get_freeze_count() == 0
