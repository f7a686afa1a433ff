"""Declarative dependency-injector containers, split by layer and composed by the application."""

from __future__ import annotations

from chatscope.containers.adapters import AdaptersContainer
from chatscope.containers.application import ApplicationContainer
from chatscope.containers.runtime import RuntimeScopeContainer

__all__ = ["AdaptersContainer", "ApplicationContainer", "RuntimeScopeContainer"]
