"""The server's own protection: client addresses, the descriptor budget and a connection guard.

- ``client_address``: the peer's address, or, when the peer is a trusted proxy
  (``GONGNON_TRUSTED_PROXIES``), the last untrusted hop of ``X-Forwarded-For``.
- ``descriptor_budget``: reads ``RLIMIT_NOFILE`` once at start and sizes the caps under it,
  keeping ``GONGNON_WEB_FD_RESERVE`` descriptors for the database, files, outbound calls, the chat
  and ``/healthz``.
- ``ConnectionGuard`` + ``GuardedSite``: a TCP site whose connections are counted before aiohttp
  sees them; beyond the total or a direct peer's cap a new connection is closed at once (its
  descriptor is back in microseconds instead of waiting for a read timeout). Slow request
  headers are dropped by aiohttp's ``keepalive_timeout``, which also runs from the moment a
  connection opens until its first request is complete (``web_protocol.RequestHandler``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import resource
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

__all__ = [
    "Budget",
    "ConnectionGuard",
    "GuardedSite",
    "Network",
    "client_address",
    "descriptor_budget",
    "networks",
]

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
CLIENT: web.RequestKey[str] = web.RequestKey("client_address", str)
REFUSAL_LOG_EVERY = 60.0  # seconds between two "connections refused" lines


def networks(values: Sequence[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "127.0.0.1"]`` → networks (validated by the settings already)."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def _ip(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not value:
        return None
    try:
        ip = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_trusted(value: str | None, trusted: Sequence[Network]) -> bool:
    ip = _ip(value)
    return ip is not None and any(ip in net for net in trusted)


def client_address(request: web.Request, trusted: Sequence[Network]) -> str:
    """Who is asking: the peer, or behind trusted proxies the nearest untrusted forwarded hop.

    ``X-Forwarded-For`` is read right to left (each proxy appends the address it saw); the
    first hop that is not a trusted proxy is the client. From an untrusted peer the header is
    ignored: anyone can write it.
    """
    known = request.get(CLIENT)
    if known is not None:
        return known
    peer = request.remote or "unknown"
    address = peer
    if trusted and is_trusted(peer, trusted):
        hops = [
            hop.strip()
            for value in request.headers.getall("X-Forwarded-For", [])
            for hop in value.split(",")
            if hop.strip()
        ]
        for hop in reversed(hops):
            ip = _ip(hop)
            if ip is None:
                break  # garbage: stop at the last address we could trust
            address = str(ip)
            if not any(ip in net for net in trusted):
                break
    request[CLIENT] = address
    return address


@dataclass(frozen=True, slots=True)
class Budget:
    """What this process may hold: ``nofile`` (the soft limit), ``connections`` and ``streams``."""

    nofile: int
    connections: int
    streams: int


def descriptor_budget(
    *, reserve: int, streams_max: int, nofile: int | None = None
) -> Budget:
    """Caps under ``ulimit -n``: connections leave ``reserve`` free; streams take at most half
    of the connections, so requests and ``/healthz`` always find room."""
    if nofile is None:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        nofile = soft if soft != resource.RLIM_INFINITY else 1 << 20
    connections = max(16, nofile - reserve)
    streams = max(1, min(streams_max, connections // 2))
    return Budget(nofile=nofile, connections=connections, streams=streams)


class ConnectionGuard:
    """Counts open connections, in all and per direct peer (trusted proxies are not capped
    per address: every client behind them shares their address)."""

    def __init__(
        self, *, max_connections: int, per_address: int, trusted: Sequence[Network] = ()
    ) -> None:
        self.max_connections = max_connections
        self.per_address = per_address
        self.trusted = tuple(trusted)
        self.open = 0
        self.refused = 0
        self._peers: Counter[str] = Counter()
        self._unlogged = 0
        self._logged_at = -REFUSAL_LOG_EVERY

    def admit(self, peer: str) -> bool:
        if self.open >= self.max_connections or (
            self._peers[peer] >= self.per_address and not is_trusted(peer, self.trusted)
        ):
            self._refuse()
            return False
        self.open += 1
        self._peers[peer] += 1
        return True

    def release(self, peer: str) -> None:
        self.open -= 1
        self._peers[peer] -= 1
        if self._peers[peer] <= 0:
            del self._peers[peer]

    def _refuse(self) -> None:
        """Counted; logged at most one line a minute (an attack must not fill the disk)."""
        self.refused += 1
        self._unlogged += 1
        now = time.monotonic()
        if now - self._logged_at >= REFUSAL_LOG_EVERY:
            log.warning(
                "connections refused: %d since the last report (open %d, cap %d, %d per address)",
                self._unlogged, self.open, self.max_connections, self.per_address,
            )
            self._unlogged = 0
            self._logged_at = now

    def stats(self) -> dict[str, Any]:
        return {"open": self.open, "cap": self.max_connections, "refused": self.refused}


class _Guarded(asyncio.Protocol):
    """Wraps aiohttp's protocol: a refused connection is closed before aiohttp sees it."""

    __slots__ = ("_guard", "_inner", "_peer")

    def __init__(self, guard: ConnectionGuard, inner: Any) -> None:
        self._guard = guard
        self._inner: Any = inner
        self._peer: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peername = transport.get_extra_info("peername")
        peer = str(peername[0]) if isinstance(peername, tuple) and peername else "unknown"
        if not self._guard.admit(peer):
            self._inner = None
            transport.abort()  # type: ignore[attr-defined]
            return
        self._peer = peer
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._peer is not None:
            self._guard.release(self._peer)
            self._peer = None
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class GuardedSite(web.BaseSite):
    """``web.TCPSite`` with a ``ConnectionGuard`` in front of every connection."""

    __slots__ = ("_guard", "_host", "_port", "_bound")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        guard: ConnectionGuard,
        backlog: int = 512,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._guard = guard
        self._host = host
        self._port = port
        self._bound: tuple[str, int] | None = None

    @property
    def name(self) -> str:
        host, port = self._bound or (self._host, self._port)
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return self._bound[1] if self._bound else self._port

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        guard = self._guard
        self._server = await loop.create_server(
            lambda: _Guarded(guard, server()),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=True,
        )
        sockets = self._server.sockets or ()
        if sockets:
            address = sockets[0].getsockname()
            self._bound = (str(address[0]), int(address[1]))
