"""pytest fixtures for chatscope users' tests (registered through the `pytest11` entry point)."""

from __future__ import annotations
