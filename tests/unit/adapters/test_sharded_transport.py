"""The provider connection pool's shards: many requests at once over real sockets, each answered
on its own stream, spread evenly, and every shard's count back to zero when bodies close."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatscope.adapters.providers.http_client import (
    ShardedTransport,
    create_http_client,
    least_busy,
)
from chatscope.config.settings import HttpSettings


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer each request with its own `x-tag` header, after `x-wait` seconds."""
    try:
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)
            await asyncio.sleep(float(headers.get("x-wait", "0")))
            body = json.dumps({"tag": headers["x-tag"]}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@asynccontextmanager
async def tagging_server() -> AsyncIterator[str]:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0, backlog=512)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_concurrent_requests_each_get_their_own_answer_spread_over_the_shards() -> None:
    client = create_http_client(HttpSettings(max_connections=100))
    transport = client._transport
    assert isinstance(transport, ShardedTransport)
    # 100 connections in shards of at most 8: thirteen, as even as can be.
    assert transport.shard_limits == (8,) * 9 + (7,) * 4
    seen: list[tuple[int, ...]] = []

    async def one(url: str, tag: int) -> str:
        headers = {"x-tag": str(tag), "x-wait": "0.05"}
        async with client.stream("GET", url, headers=headers) as response:
            seen.append(transport.in_flight)
            body = await response.aread()
        answer: str = json.loads(body)["tag"]
        return answer

    async with tagging_server() as url, client:
        answers = await asyncio.gather(*(one(url, tag) for tag in range(80)))
        assert answers == [str(tag) for tag in range(80)]
        assert transport.in_flight == (0,) * 13
    busiest = max(seen, key=sum)
    assert max(busiest) - min(busiest) <= 1
    assert all(count <= 8 for counts in seen for count in counts)


async def test_a_failed_request_releases_its_shard() -> None:
    transport = ShardedTransport(max_connections=4, shard_size=2)
    async with httpx.AsyncClient(transport=transport) as client:
        async with tagging_server() as url:
            pass  # closed: its port now refuses connections
        with pytest.raises(httpx.ConnectError):
            await client.get(url)
    assert transport.in_flight == (0, 0)


@given(
    max_connections=st.integers(min_value=1, max_value=2_000),
    shard_size=st.integers(min_value=1, max_value=128),
)
def test_shards_hold_the_connections_asked_for_none_bigger_than_a_shard(
    max_connections: int, shard_size: int
) -> None:
    limits = ShardedTransport(max_connections=max_connections, shard_size=shard_size).shard_limits
    assert sum(limits) == max_connections
    assert max(limits) <= shard_size
    assert max(limits) - min(limits) <= 1


@given(
    shards=st.integers(min_value=1, max_value=16),
    steps=st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=15)), max_size=200),
)
def test_least_busy_always_picks_a_shard_with_the_fewest_under_way(
    shards: int, steps: list[int | None]
) -> None:
    """`None` starts a request on the least busy shard; an int closes one on that shard."""
    in_flight = [0] * shards
    for step in steps:
        if step is None:
            index = least_busy(in_flight)
            assert in_flight[index] == min(in_flight)
            in_flight[index] += 1
        elif in_flight[step % shards]:
            in_flight[step % shards] -= 1
    spread = [0] * shards
    for _ in range(shards * 3):
        spread[least_busy(spread)] += 1
    assert spread == [3] * shards


async def test_the_environments_proxy_carries_requests_and_no_proxy_hosts_go_direct(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`HTTP_PROXY` is honoured as httpx honours it; `NO_PROXY` hosts are reached directly."""
    requests: list[str] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append((await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")[0])
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nproxied")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    async with server, tagging_server() as direct:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with create_http_client(HttpSettings()) as client:
            through = await client.get("http://models.example.invalid/v1/models")
            around = await client.get(direct, headers={"x-tag": "direct"})
    assert through.text == "proxied"
    assert requests == ["GET http://models.example.invalid/v1/models HTTP/1.1"]
    assert around.json() == {"tag": "direct"}
