"""The shared HTTP connection pool: one per application container, closed on shutdown.

It carries no credentials and no base URL: those go into each request (REQ-SP4-003). The client
is built synchronously (httpx binds it to no event loop until first use) so that the adapter
factories receive it directly; `http_client_lifecycle` is the resource that closes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from chatscope.config.settings import HttpSettings

__all__ = ["create_http_client", "http_client_lifecycle"]


def create_http_client(http: HttpSettings) -> httpx.AsyncClient:
    """A pooled client with the configured timeouts and no default headers or auth."""
    timeout = httpx.Timeout(
        connect=http.connect_timeout,
        read=http.idle_stream_timeout,
        write=http.connect_timeout,
        pool=http.connect_timeout,
    )
    limits = httpx.Limits(
        max_connections=http.max_connections, max_keepalive_connections=http.max_connections
    )
    return httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False)


async def http_client_lifecycle(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """Start: hand out the client. Stop: close its connections (a dependency-injector Resource)."""
    try:
        yield client
    finally:
        await client.aclose()
