"""Delivery work shared by several worker processes through Redis Streams consumer groups.

The database stays the record. A *feeder* (every worker runs one) leases due ``pending`` rows
to the streams for a while (``lease_owner = feed:…``; they stay ``pending``, so campaigns can
still hold, defer or cancel them) and adds one stream entry per row. Consumers read entries
with ``XREADGROUP`` and lease the rows behind them in the database: only a due ``pending`` row
(or a dead worker's expired lease) can be taken, and that transition is what makes a row go out
once. They send, write the outcome, then ``XACK`` + ``XDEL``. A dead worker's unacknowledged
entries are taken over with ``XAUTOCLAIM``. If Redis loses the streams (a restart without
persistence), the feeder's lease runs out and it adds the rows again; a duplicate or stale
entry is harmless because the database refuses to lease a row twice.

Streams: ``{prefix}:{channel}:urgent`` (conversation replies, notifications) and
``{prefix}:{channel}:bulk`` (pushes); one consumer group ``workers`` on each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from redis.exceptions import ResponseError

from core.outbox import Leased, StreamQueue, WorkSource, wait_for_event
from core.ports import Clock

__all__ = ["StreamSource", "redis_client"]

log = logging.getLogger(__name__)

T = TypeVar("T", bound=Leased)

GROUP = "workers"
URGENT_BELOW = 5  # priorities under this go to the urgent stream


def redis_client(url: str, *, block_ms: int) -> Any:
    """A client whose read timeout outlasts any ``BLOCK`` we use (redis-py defaults to 5 s)."""
    from redis.asyncio import Redis

    return Redis.from_url(
        url,
        socket_timeout=block_ms / 1000 + 10,
        socket_connect_timeout=5,
        health_check_interval=30,
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class StreamSource(WorkSource[T]):
    """A ``WorkSource`` over Redis Streams (see the module docstring), in front of any queue
    that can mark rows as queued and take them back (``core.outbox.StreamQueue``)."""

    def __init__(
        self,
        redis: Any,
        outbox: StreamQueue[T],
        *,
        channels: Callable[[], Sequence[str]],
        clock: Clock,
        consumer: str,
        prefix: str = "gongnon:delivery",
        block_ms: int = 1000,
        claim_idle: timedelta = timedelta(seconds=30),
        backlog: Callable[[str], int] = lambda _channel: 200,
        hold: timedelta = timedelta(minutes=5),
        owns_client: bool = True,
    ) -> None:
        self.redis = redis
        self.outbox = outbox
        self.channels = channels
        self.clock = clock
        self.consumer = consumer
        self.prefix = prefix
        self.block_ms = block_ms
        self.claim_idle = claim_idle
        self.backlog = backlog
        self.hold = hold
        self.owns_client = owns_client
        self._wake = asyncio.Event()
        self._groups: set[str] = set()
        self._feeder: asyncio.Task[None] | None = None
        self._closing = False
        self._last_autoclaim = 0.0
        self.fed = 0

    # --- names ---------------------------------------------------------------------
    def stream(self, channel: str, priority: int) -> str:
        lane = "urgent" if priority < URGENT_BELOW else "bulk"
        return f"{self.prefix}:{channel}:{lane}"

    def _streams(self) -> list[str]:
        out: list[str] = []
        for channel in self.channels():
            out += [self.stream(channel, 0), self.stream(channel, URGENT_BELOW)]
        return out

    async def _ensure_groups(self, streams: Sequence[str]) -> None:
        for name in streams:
            if name in self._groups:
                continue
            try:
                await self.redis.xgroup_create(name, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._groups.add(name)

    # --- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        self._closing = False
        await self._ensure_groups(self._streams())
        self._feeder = asyncio.create_task(self._feed_loop(), name=f"{self.consumer}-feed")

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        # redis-py may turn a cancel that lands in a read into a ConnectionError (the
        # connection is dropped): the flag, not the cancel alone, is what ends the feeder.
        self._closing = True
        self._wake.set()
        if self._feeder is not None:
            self._feeder.cancel()
            await asyncio.wait([self._feeder], timeout=5.0)
            self._feeder = None
        if self.owns_client:
            await self.redis.aclose()

    # --- feeding -------------------------------------------------------------------
    async def feed_once(self) -> int:
        """Move due rows into the streams while a channel's backlog is short; returns how many."""
        moved = 0
        for channel in list(self.channels()):
            bulk = self.stream(channel, URGENT_BELOW)
            urgent = self.stream(channel, 0)
            await self._ensure_groups([urgent, bulk])
            waiting = int(await self.redis.xlen(bulk)) + int(await self.redis.xlen(urgent))
            room = self.backlog(channel) - waiting
            if room < self.backlog(channel) // 2:
                continue
            rows = await self.outbox.mark_queued(
                [channel], room, self.clock.now(), hold=self.hold, publish=self._publish
            )
            moved += len(rows)
        self.fed += moved
        return moved

    async def _publish(self, rows: list[tuple[int, str, int]]) -> None:
        """One stream entry per row (inside the feeder's lease transaction)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for row_id, row_channel, priority in rows:
                pipe.xadd(self.stream(row_channel, priority), {"id": str(row_id)})
            await pipe.execute()

    async def _feed_loop(self) -> None:
        poll = min(self.block_ms / 1000, 0.5)
        while not self._closing:
            try:
                moved = await self.feed_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._closing:
                    return
                log.exception("delivery feeder %s failed; retrying", self.consumer)
                self._groups.clear()  # Redis may have restarted without our groups
                moved = 0
                await asyncio.sleep(1.0)
            if moved:
                await asyncio.sleep(0.05)
                continue
            self._wake.clear()
            await wait_for_event(self._wake, poll)

    # --- consuming -----------------------------------------------------------------
    def _tickets(self, stream: str, entries: Sequence[Any]) -> dict[int, tuple[str, str]]:
        tickets: dict[int, tuple[str, str]] = {}
        for entry_id, fields in entries:
            if not fields:
                continue
            raw = fields.get(b"id", fields.get("id"))
            if raw is not None:
                tickets[int(_text(raw))] = (stream, _text(entry_id))
        return tickets

    async def _autoclaim(self, streams: Sequence[str], limit: int) -> dict[int, tuple[str, str]]:
        """Entries a dead consumer read but never acknowledged become ours."""
        tickets: dict[int, tuple[str, str]] = {}
        idle_ms = int(self.claim_idle.total_seconds() * 1000)
        for name in streams:
            reply = await self.redis.xautoclaim(
                name, GROUP, self.consumer, min_idle_time=idle_ms, start_id="0-0", count=limit
            )
            tickets.update(self._tickets(name, reply[1]))
        return tickets

    async def fetch(self, limit: int, *, wait: float) -> list[T]:
        streams = self._streams()
        try:
            tickets = await self._read(streams, limit, wait)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._groups.clear()  # Redis lost the groups (restart): make them again
            await self._ensure_groups(streams)
            return []
        if not tickets:
            return []
        items = list(await self.outbox.take(tickets, self.clock.now()))
        taken = {item.id for item in items}
        stale = [ticket for row_id, ticket in tickets.items() if row_id not in taken]
        await self._ack(stale)  # sent, cancelled, or another worker's: nothing to do
        return items

    async def _read(self, streams: Sequence[str], limit: int, wait: float) -> dict[int, Any]:
        await self._ensure_groups(streams)
        tickets: dict[int, Any] = {}
        now = time.monotonic()
        if now - self._last_autoclaim >= self.claim_idle.total_seconds() / 2:
            tickets.update(await self._autoclaim(streams, limit))
            if len(tickets) < limit:  # else a dead worker left more: look again at once
                self._last_autoclaim = now
            if tickets:
                return tickets
        block = int(wait * 1000) if wait > 0 else None
        reply = await self.redis.xreadgroup(
            GROUP, self.consumer, dict.fromkeys(streams, ">"), count=limit, block=block
        )
        # Urgent streams come first in ``streams``; keep that order.
        for name, entries in reply or []:
            tickets.update(self._tickets(_text(name), entries))
        return tickets

    async def _ack(self, tickets: Sequence[tuple[str, str]]) -> None:
        if not tickets:
            return
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id in tickets:
            by_stream.setdefault(stream, []).append(entry_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():
                pipe.xack(stream, GROUP, *ids)
                pipe.xdel(stream, *ids)
            await pipe.execute()

    async def done(self, items: Sequence[T]) -> None:
        await self._ack([item.ticket for item in items if item.ticket is not None])
