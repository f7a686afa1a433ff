"""Declarative dependency-injector containers, one per concern, composed by the application."""

from __future__ import annotations

from chatscope.containers.application import ApplicationContainer
from chatscope.containers.providers import ModelProvidersContainer
from chatscope.containers.runtime import RuntimeScopeContainer
from chatscope.containers.storage import StorageContainer
from chatscope.containers.tools import ToolsContainer

__all__ = [
    "ApplicationContainer",
    "ModelProvidersContainer",
    "RuntimeScopeContainer",
    "StorageContainer",
    "ToolsContainer",
]
