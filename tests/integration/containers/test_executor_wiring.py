"""The application container's subagent executor: local by default, and Ray-free when local."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chatscope.errors import ConfigurationError
from chatscope.services.subagents.task import LocalExecutor, SubagentRunner
from chatscope.services.subagents.task_tools import TaskTool
from chatscope.testing import ScriptedProvider
from tests.support.subagents import profile, subagent_app

_LOCAL_APP = """
import asyncio, sys
from chatscope.config.settings import ExplicitSettings
from chatscope.containers.application import ApplicationContainer

async def main():
    app = ApplicationContainer(settings=ExplicitSettings(workspace=sys.argv[1]), environ={})
    await app.init_resources()
    app.runtime.scopes().foreground()
    await app.shutdown_resources()
    print(sorted(name for name in sys.modules if name == "ray" or name.startswith("ray.")))

asyncio.run(main())
"""


def test_the_default_executor_is_the_local_one_and_every_task_tool_uses_it(
    tmp_path: Path,
) -> None:
    """With default settings, `subagent_executor` is a `LocalExecutor`, handed to every runner."""
    app = subagent_app(
        ScriptedProvider([], name="openai"), workspace=tmp_path, profiles=[profile()]
    )
    executor = app.subagent_executor()
    assert isinstance(executor, LocalExecutor)
    tool = app.runtime.scopes().foreground().tools.get("task")
    assert isinstance(tool, TaskTool)
    assert isinstance(tool.runner, SubagentRunner)
    assert tool.runner.executor is executor


def test_a_local_application_and_the_help_import_nothing_of_ray(tmp_path: Path) -> None:
    """Starting and stopping a local application, or `chatscope --help`, never imports Ray."""
    app = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", _LOCAL_APP, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert app.stdout.strip() == "[]"
    help_run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "chatscope", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    imported = [line.rsplit("|", 1)[-1].strip() for line in help_run.stderr.splitlines()]
    assert "chatscope.cli.main" in imported
    assert not [name for name in imported if name == "ray" or name.startswith("ray.")]


def test_the_ray_setting_gives_a_ray_executor_that_starts_nothing_until_used(
    tmp_path: Path,
) -> None:
    """`subagent_executor="ray"`: the container's executor is a `RayExecutor`, handed to every
    runner; resolving and shutting it down starts no worker."""
    from chatscope.distributed.executor import RayExecutor

    app = subagent_app(
        ScriptedProvider([], name="openai"), workspace=tmp_path, subagent_executor="ray"
    )
    executor = app.subagent_executor()
    assert isinstance(executor, RayExecutor)
    tool_runner = app.runtime.subagent_tools().runner_for(
        app.runtime.scopes().foreground(), app.runtime.scopes()
    )
    assert tool_runner.executor is executor
    app.shutdown_resources()
    assert executor.pool.handles() == ()


def test_the_ray_setting_without_the_extra_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without Ray installed, choosing it is a `ConfigurationError` saying what to install."""
    monkeypatch.setitem(sys.modules, "ray", None)
    for name in [name for name in sys.modules if name.startswith("chatscope.distributed")]:
        monkeypatch.delitem(sys.modules, name)
    app = subagent_app(
        ScriptedProvider([], name="openai"), workspace=tmp_path, subagent_executor="ray"
    )
    with pytest.raises(ConfigurationError, match=r"pip install 'chatscope\[ray\]'"):
        app.subagent_executor()
