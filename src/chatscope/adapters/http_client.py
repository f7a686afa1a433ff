"""The shared HTTP connection pool: one per application, opened and closed as a resource.

It carries no credentials and no base URL: those go into each request (REQ-SP4-003).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from chatscope.config.settings import HttpSettings

__all__ = ["open_http_client"]


async def open_http_client(http: HttpSettings) -> AsyncIterator[httpx.AsyncClient]:
    """Yield a pooled client and close it on shutdown (a dependency-injector `Resource`)."""
    timeout = httpx.Timeout(
        connect=http.connect_timeout,
        read=http.idle_stream_timeout,
        write=http.connect_timeout,
        pool=http.connect_timeout,
    )
    limits = httpx.Limits(
        max_connections=http.max_connections, max_keepalive_connections=http.max_connections
    )
    async with httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False) as client:
        yield client
