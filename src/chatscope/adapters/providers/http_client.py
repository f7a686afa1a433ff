"""The shared HTTP connection pool: one per application container, closed on shutdown.

It carries no credentials and no base URL: those go into each request (REQ-SP4-003). The client
is built synchronously (httpx binds it to no event loop until first use) so that the adapter
factories receive it directly; `http_client_lifecycle` is the resource that closes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from math import ceil
from typing import cast

import httpx
from httpx._utils import get_environment_proxies  # httpx's own reading of them

from chatscope.config.settings import HttpSettings

__all__ = ["ShardedTransport", "create_http_client", "http_client_lifecycle", "least_busy"]

SHARD_CONNECTIONS = 8
"""The most connections one shard of `ShardedTransport` holds. The walk checks every idle
connection with a system call (is the socket readable, i.e. closed by the server?), so its
cost is what a shard holds: 8 rather than 32 took 1,000 concurrent chats from 495 to 721 turns/s
and Ray workers' subagents from 6.0 s to 5.8 s of CPU each (benchmarks/concurrent_chats.py,
benchmarks/subagent_executors.py); choosing among more shards costs less than the walk saved."""


def create_http_client(http: HttpSettings) -> httpx.AsyncClient:
    """A pooled client with the configured timeouts and no default headers or auth."""
    timeout = httpx.Timeout(
        connect=http.connect_timeout,
        read=http.idle_stream_timeout,
        write=http.connect_timeout,
        pool=http.connect_timeout,
    )
    transport = ShardedTransport(max_connections=http.max_connections)
    return httpx.AsyncClient(
        timeout=timeout,
        transport=transport,
        mounts=_environment_proxies(http.max_connections),
        follow_redirects=False,
    )


def _environment_proxies(max_connections: int) -> dict[str, httpx.AsyncBaseTransport | None]:
    """The proxies of `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY`, read as httpx
    reads them (a client given its own transport would ignore them): a sharded pool through
    each proxy, and None (no proxy) for the hosts `NO_PROXY` names."""
    return {
        pattern: None
        if url is None
        else ShardedTransport(max_connections=max_connections, proxy=httpx.Proxy(url))
        for pattern, url in get_environment_proxies().items()
    }


class ShardedTransport(httpx.AsyncBaseTransport):
    """Small connection pools side by side; each request goes through the least busy one.

    httpcore's pool walks every one of its connections when a request starts and when a
    response closes, so one pool of N streams costs O(N) per request: at 500 concurrent
    streams that walk was 70% of a turn's CPU. Pools of at most `shard_size` connections keep
    that walk short however many streams are open; together they hold exactly
    `max_connections`.
    """

    def __init__(
        self,
        *,
        max_connections: int,
        shard_size: int = SHARD_CONNECTIONS,
        proxy: httpx.Proxy | None = None,
    ) -> None:
        count = ceil(max_connections / shard_size)
        size, larger = divmod(max_connections, count)
        sizes = [size + 1] * larger + [size] * (count - larger)
        # One TLS context (the CA bundle, loaded once) for every shard.
        tls = httpx.create_ssl_context()
        self._shards = tuple(
            httpx.AsyncHTTPTransport(
                verify=tls,
                proxy=proxy,
                limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
            )
            for n in sizes
        )
        self._sizes = tuple(sizes)
        self._in_flight = [0] * count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = least_busy(self._in_flight)
        self._in_flight[index] += 1
        try:
            response = await self._shards[index].handle_async_request(request)
        except BaseException:
            self._in_flight[index] -= 1
            raise
        # An async transport's responses have async streams.
        stream = cast(httpx.AsyncByteStream, response.stream)
        response.stream = _Releasing(stream, lambda: self._release(index))
        return response

    @property
    def in_flight(self) -> tuple[int, ...]:
        """The responses under way on each shard (sent, body not yet closed)."""
        return tuple(self._in_flight)

    @property
    def shard_limits(self) -> tuple[int, ...]:
        """The most connections each shard holds."""
        return self._sizes

    def _release(self, index: int) -> None:
        self._in_flight[index] -= 1

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


def least_busy(in_flight: list[int]) -> int:
    """The index of the first shard with the fewest responses under way."""
    return min(range(len(in_flight)), key=in_flight.__getitem__)


class _Releasing(httpx.AsyncByteStream):
    """A response body that tells its shard when it is closed (once)."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    def __aiter__(self) -> AsyncIterator[bytes]:
        # The body's own iterator: no generator of ours between each chunk and its reader.
        return self._stream.__aiter__()

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


async def http_client_lifecycle(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """Start: hand out the client. Stop: close its connections (a dependency-injector Resource)."""
    try:
        yield client
    finally:
        await client.aclose()
