"""Where subagents run: the executor resource of the application container."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from chatscope.config.settings import Settings
from chatscope.services.runtime.ports import TelemetrySink
from chatscope.services.subagents.task import SubagentExecutor


def ray_executor(
    settings: Settings, environ: Mapping[str, str], telemetry_sink: TelemetrySink
) -> Iterator[SubagentExecutor | None]:
    """The Ray executor, whose worker actors die when the container shuts down.

    A `Selector`'s resources are all started by `init_resources`, chosen or not: unless the
    settings choose `ray`, this yields None and imports nothing of Ray (`chatscope.distributed`
    is imported only here, only then). Without the `ray` extra it raises `ConfigurationError`
    naming it.
    """
    if settings.subagent_executor != "ray":
        yield None
        return
    from chatscope.distributed.executor import ray_executor as open_ray_executor

    yield from open_ray_executor(settings, environ, telemetry_sink)
