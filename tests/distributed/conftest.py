"""One local Ray cluster for the distributed tests (2 CPUs, no dashboard), and mock LLMs.

Workers reach a local OpenAI-compatible server over a real socket; their settings come from
the environment the tests give the worker actors (`runtime_env`), never from the parent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from ray._private import ray_constants

from chatscope.config.settings import RaySettings
from chatscope.distributed.executor import WorkerPool
from tests.support.chat_server import chat_server
from tests.support.profiles import write_profile
from tests.support.replay_server import ReplayServer

WORKER_KEY = "sk-worker-only-0123456789"


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """A local Ray cluster for the whole session; yields its GCS address."""
    with pytest.MonkeyPatch.context() as patch:
        # Workers run this very interpreter, not a `uv run` of a copy of the working directory
        # (Ray reads its variable when imported, so the constant is what counts by now).
        patch.setattr(ray_constants, "RAY_ENABLE_UV_RUN_RUNTIME_ENV", False)
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            configure_logging=False,
        )
        try:
            yield str(ray.get_runtime_context().gcs_address)
        finally:
            ray.shutdown()


@pytest.fixture(scope="module")
def worker_llm() -> Iterator[ReplayServer]:
    """The mock LLM the workers call: quick answers quoting the prompt, slow ones on "slowly"."""
    with chat_server(slow_delay=0.05) as server:
        yield server


@pytest.fixture(scope="module")
def worker_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workers' directory: their profiles (`helper`, on openai) and their data."""
    home = tmp_path_factory.mktemp("worker")
    write_profile(
        home / "profiles",
        "helper",
        name="helper",
        description="answers",
        provider="openai",
        model="worker-model",
        allowed_tools=[],
        max_turns=3,
    )
    return home


@contextlib.contextmanager
def worker_pool(workers: int, home: Path, server: ReplayServer) -> Iterator[WorkerPool]:
    """A pool of `workers` worker actors whose environment points at `server`, shut down after."""
    pool = WorkerPool(
        RaySettings(workers=workers), runtime_env={"env_vars": worker_env(home, server)}
    )
    try:
        yield pool
    finally:
        pool.shutdown()


def worker_env(home: Path, server: ReplayServer) -> dict[str, str]:
    """The workers' environment: their endpoint, their profiles and a key only they hold."""
    return {
        "CHATSCOPE_PROVIDER": "openai",
        "CHATSCOPE_PROVIDERS__OPENAI__BASE_URL": f"{server.url}/v1",
        "CHATSCOPE_PROFILES_DIR": str(home / "profiles"),
        "CHATSCOPE_WORKSPACE": str(home),
        "CHATSCOPE_DATA_DIR": str(home / "data"),
        "CHATSCOPE_LOG_LEVEL": "error",
        "OPENAI_API_KEY": WORKER_KEY,
    }
