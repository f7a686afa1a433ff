"""Subagents on a Ray cluster (the `ray` extra): the parent's executor and the worker actors.

An entry point like `web/`: it may import the containers, services, config, errors and
adapters; nothing of services or adapters imports it. Only this package imports `ray`, and only
when the settings choose the Ray executor (`CHATSCOPE_SUBAGENT_EXECUTOR=ray`).
"""

from __future__ import annotations

from chatscope.errors import ConfigurationError

try:
    import ray  # noqa: F401 - the extra's presence, checked once on first import
except ModuleNotFoundError as exc:
    raise ConfigurationError(
        "subagent_executor 'ray' needs Ray: pip install 'chatscope[ray]'"
    ) from exc
