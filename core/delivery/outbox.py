"""The workers' side of the deliveries table: what a worker holds, and the leased SQL.

Deliveries plug into ``core.outbox.LeasedQueue`` with their ordering only: rows of the
worker's channels, by priority (conversation replies, then notifications, then pushes), then
due time. Outcomes are written in group commits (``record``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.adapters.db import Database
from core.adapters.orm_delivery import Delivery
from core.delivery.enqueue import WAITING
from core.messages import Reply, ReplyKind, reply_from_json
from core.outbox import LeasedQueue

__all__ = ["LEASE", "QUEUE", "Claimed", "Outbox", "Outcome"]

LEASE = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row leased to this worker."""

    id: int
    channel: str
    address: str
    reply: Reply
    attempts: int
    priority: int = 5
    kind: str = ReplyKind.NOTIFICATION.value
    due_at: datetime | None = None
    push_id: int | None = None
    ticket: Any = field(default=None, compare=False)  # the work source's handle (stream id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What happened to one claimed row; written in batches."""

    item: Claimed
    status: str  # sent | failed | unreachable | pending (retry later)
    attempts: int
    next_attempt_at: datetime
    error: str | None = None
    message_ref: str | None = None
    sent_at: datetime | None = None


QUEUE = LeasedQueue(
    Delivery,
    order_by=lambda: (Delivery.priority, Delivery.next_attempt_at, Delivery.id),
    returning=lambda: (
        Delivery.id,
        Delivery.channel,
        Delivery.address,
        Delivery.payload,
        Delivery.attempts,
        Delivery.priority,
        Delivery.kind,
        Delivery.next_attempt_at,
        Delivery.push_id,
    ),
)


def _claimed(row: Any, ticket: Any = None) -> Claimed:
    return Claimed(
        row.id,
        row.channel,
        row.address,
        reply_from_json(row.payload),
        row.attempts,
        row.priority,
        row.kind,
        row.next_attempt_at,
        row.push_id,
        ticket,
    )


def _in_order(items: Any) -> list[Claimed]:
    return sorted(items, key=lambda c: (c.priority, c.id))


class Outbox:
    """One worker's hold on the deliveries table: leased claims and batched outcome writes."""

    def __init__(self, db: Database, *, owner: str, lease: timedelta = LEASE) -> None:
        self.db = db
        self.owner = owner
        self.lease = lease
        self.keep_connection = False  # a running worker keeps one for its outcome batches
        self._conn: AsyncConnection | None = None

    @staticmethod
    def _channels(channels: Sequence[str]) -> list[Any]:
        return [Delivery.channel.in_(list(channels))]

    async def claim(self, channels: Sequence[str], limit: int, now: datetime) -> list[Claimed]:
        """Lease up to ``limit`` due rows of these channels to this worker."""
        if not channels or limit <= 0:
            return []
        async with self.db.write() as session:
            rows = await QUEUE.claim(
                session, owner=self.owner, now=now, lease=self.lease, limit=limit,
                where=self._channels(channels),
            )
        return _in_order(_claimed(r) for r in rows)

    async def mark_queued(
        self,
        channels: Sequence[str],
        limit: int,
        now: datetime,
        *,
        hold: timedelta,
        publish: Callable[[list[tuple[int, str, int]]], Awaitable[Any]] | None = None,
    ) -> list[tuple[int, str, int]]:
        """For a stream feeder: lease due rows to the streams for ``hold`` (they stay
        ``pending``); returns (id, channel, priority).

        ``publish(rows)`` runs before the lease commits: a feeder killed after it has left
        entries for rows that any consumer may still take; one killed before it leaves the
        rows unleased, for the next feeder. Never rows leased to a stream that has no entry
        for them until the hold runs out.
        """
        if not channels or limit <= 0:
            return []
        async with self.db.write() as session:
            rows = await QUEUE.mark_queued(
                session, owner=self.owner, now=now, hold=hold, limit=limit,
                where=self._channels(channels),
                returning=(Delivery.id, Delivery.channel, Delivery.priority),
            )
            queued = sorted(
                ((r.id, r.channel, r.priority) for r in rows), key=lambda r: (r[2], r[0])
            )
            if queued and publish is not None:
                await publish(queued)
        return queued

    async def take(self, tickets: Mapping[int, Any], now: datetime) -> list[Claimed]:
        """For a stream consumer: lease the rows behind these entries, if still ours to send."""
        if not tickets:
            return []
        async with self.db.write() as session:
            rows = await QUEUE.take(
                session, list(tickets), owner=self.owner, now=now, lease=self.lease
            )
        return _in_order(_claimed(r, tickets[r.id]) for r in rows)

    async def renew(self, ids: Sequence[int], now: datetime) -> None:
        if not ids:
            return
        async with self.db.write() as session:
            await QUEUE.renew(session, ids, owner=self.owner, until=now + self.lease)

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        """Write many outcomes in one transaction (only rows this worker still holds)."""
        if not outcomes:
            return
        rows = [
            {
                "id": o.item.id,
                "status": o.status,
                "attempts": o.attempts,
                "next_attempt_at": o.next_attempt_at,
                "last_error": o.error,
                "message_ref": o.message_ref,
                "sent_at": o.sent_at,
            }
            for o in outcomes
        ]
        gone = {(o.item.channel, o.item.address) for o in outcomes if o.status == "unreachable"}
        async with self._outcome_writer() as session:
            await QUEUE.finish_many(session, rows, owner=self.owner)
            for channel, address in gone:  # the rest of their queue is moot
                await session.execute(
                    update(Delivery)
                    .where(
                        Delivery.channel == channel,
                        Delivery.address == address,
                        Delivery.status.in_(WAITING),
                    )
                    .values(status="unreachable", last_error="recipient unreachable")
                )

    @contextlib.asynccontextmanager
    async def _outcome_writer(self) -> AsyncIterator[Any]:
        """Where outcome batches go: on PostgreSQL a connection kept for them (no pool
        checkout and ping for every batch of a few ms), elsewhere a write session."""
        if self.db.dialect != "postgresql" or not self.keep_connection:
            async with self.db.write() as session:
                yield session
            return
        if self._conn is None:
            self._conn = await self.db.engine.connect()
        try:
            async with self._conn.begin():
                yield self._conn
        except BaseException:
            conn, self._conn = self._conn, None  # a broken connection is not kept
            with contextlib.suppress(Exception):
                await conn.close()
            raise

    async def close(self) -> None:
        self.keep_connection = False
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def release(self, items: Sequence[Claimed]) -> None:
        """Give unsent rows back (graceful stop): due again at once, the attempt not counted."""
        if not items:
            return
        async with self.db.write() as session:
            await QUEUE.release(session, [i.id for i in items], owner=self.owner)
