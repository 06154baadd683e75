"""The server's connection guard, header timeout, descriptor budget and client addresses."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import make_mocked_request

from bots.guard import (
    ConnectionGuard,
    GuardedSite,
    client_address,
    descriptor_budget,
    networks,
)


async def hello(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _serve(guard: ConnectionGuard, *, header_timeout: float = 10.0) -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_get("/healthz", hello)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=header_timeout)
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", 0, guard=guard)
    await site.start()
    try:
        yield site.port
    finally:
        await runner.cleanup()


async def _closed(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), within) == b""
    except (TimeoutError, ConnectionResetError):
        return False


async def test_connections_beyond_the_caps_are_closed_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = ConnectionGuard(max_connections=4, per_address=3)
    async for port in _serve(guard):
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await asyncio.sleep(0.05)
        assert guard.open == 3
        extra = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
        for reader, _ in extra:  # refused: closed without a byte, long before any timeout
            assert await _closed(reader, 1.0)
        assert guard.refused == 5 and guard.open == 3
        assert len([r for r in caplog.records if "connections refused" in r.message]) == 1
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.05)
        async with ClientSession() as http:  # room again: the service answers
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200
        assert guard.open <= 1


async def test_trusted_proxies_are_capped_only_in_total() -> None:
    guard = ConnectionGuard(max_connections=5, per_address=1, trusted=networks(["127.0.0.1"]))
    async for port in _serve(guard):
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
        await asyncio.sleep(0.05)
        assert guard.open == 5
        reader, _ = await asyncio.open_connection("127.0.0.1", port)
        assert await _closed(reader, 1.0)  # the total holds
        for _, writer in held:
            writer.close()


async def test_half_sent_headers_are_dropped_after_the_header_timeout() -> None:
    guard = ConnectionGuard(max_connections=100, per_address=100)
    async for port in _serve(guard, header_timeout=0.4):
        slow = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
        for _, writer in slow:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
            await writer.drain()
        loop = asyncio.get_running_loop()
        started = loop.time()
        for reader, _ in slow:
            assert await _closed(reader, 3.0)
        assert loop.time() - started < 2.5
        await asyncio.sleep(0.05)
        assert guard.open == 0


def test_descriptor_budget_sizes_the_caps_under_the_limit() -> None:
    budget = descriptor_budget(reserve=160, streams_max=400, nofile=1024)
    assert (budget.connections, budget.streams) == (864, 400)
    small = descriptor_budget(reserve=160, streams_max=400, nofile=256)
    assert small.connections == 96 and small.streams == 48  # half the connections at most
    real = descriptor_budget(reserve=160, streams_max=400)
    assert real.nofile > 0 and real.streams <= real.connections // 2


def _request(peer: str, forwarded: str | None = None) -> web.Request:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    request = make_mocked_request("GET", "/", headers=headers)

    class _Transport:
        def get_extra_info(self, name: str, default: object = None) -> object:
            return (peer, 5555) if name == "peername" else default

    request._transport_peername = (peer, 5555)  # type: ignore[attr-defined]
    request.protocol.transport = _Transport()  # type: ignore[assignment]
    return request


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("198.51.100.1", "203.0.113.9", "198.51.100.1"),  # untrusted peer: header ignored
        ("10.0.0.2", "203.0.113.9", "203.0.113.9"),
        ("10.0.0.2", "1.2.3.4, 203.0.113.9, 10.0.0.7", "203.0.113.9"),  # spoofed left part
        ("10.0.0.2", None, "10.0.0.2"),
        ("10.0.0.2", "not-an-ip", "10.0.0.2"),
        ("10.0.0.2", "10.0.0.3", "10.0.0.3"),  # only proxies: the farthest one
        ("::ffff:10.0.0.2", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_address(peer: str, forwarded: str | None, expected: str) -> None:
    trusted = networks(["10.0.0.0/8"])
    assert client_address(_request(peer, forwarded), trusted) == expected


def test_guard_logs_at_most_one_line_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    guard = ConnectionGuard(max_connections=0, per_address=1)
    for _ in range(1000):
        assert not guard.admit("203.0.113.1")
    assert guard.refused == 1000
    assert len(caplog.records) == 1
