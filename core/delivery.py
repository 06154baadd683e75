"""The delivery engine: a durable outbox of messages and the workers that drain it.

Every message that is not an immediate answer goes through ``deliveries``: one row per
recipient, unique on a logical ``dedupe_key`` so a retried enqueue never sends twice. Workers
claim due rows with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), send them through the
channel's ``Sender``, and record each outcome; a row whose worker died is reclaimed when its
lease runs out (at most the one message in flight is sent again).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.db import Database, insert_for
from core.adapters.orm_delivery import Delivery
from core.messages import Reply, ReplyKind, reply_from_json, reply_to_json
from core.ports import (
    Clock,
    PermanentSendError,
    RetryLater,
    Sender,
    TransientSendError,
    Unreachable,
)

__all__ = ["DeliveryRepository", "DeliveryWorker", "Outbound", "PRIORITY"]

log = logging.getLogger(__name__)

PRIORITY = {ReplyKind.CONVERSATION: 0, ReplyKind.NOTIFICATION: 3, ReplyKind.PUSH: 7}
LEASE = timedelta(seconds=60)


class DeliveryRepository:
    """Outbox rows, used inside a unit of work (``uow.repo(DeliveryRepository)``)."""

    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enqueue(
        self,
        *,
        dedupe_key: str,
        channel: str,
        address: str,
        reply: Reply,
        now: datetime,
        person_id: int | None = None,
        push_id: int | None = None,
        not_before: datetime | None = None,
    ) -> bool:
        """True when queued; False when a row with this key already exists."""
        stmt = (
            insert_for(self.session, Delivery.__table__)
            .values(
                dedupe_key=dedupe_key,
                channel=channel,
                address=address,
                person_id=person_id,
                kind=reply.kind.value,
                priority=PRIORITY[reply.kind],
                payload=reply_to_json(reply),
                push_id=push_id,
                status="pending",
                attempts=0,
                next_attempt_at=not_before or now,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(Delivery.__table__.c.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    channel: str
    address: str
    reply: Reply
    attempts: int


class DeliveryWorker:
    """Drains the outbox. Several may run (in one or many processes) without double sends."""

    def __init__(
        self,
        *,
        db: Database,
        senders: Mapping[str, Sender],
        clock: Clock,
        max_attempts: int = 8,
        batch: int = 50,
        on_unreachable: Any = None,
        name: str | None = None,
    ) -> None:
        self.db = db
        self.senders = senders
        self.clock = clock
        self.max_attempts = max_attempts
        self.batch = batch
        self.on_unreachable = on_unreachable  # async (channel, address, reason) -> None
        self.name = name or f"worker-{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    async def claim(self) -> list[Claimed]:
        now = self.clock.now()
        channels = list(self.senders)
        async with self.db.write() as session:
            due = (
                select(Delivery.id)
                .where(
                    Delivery.channel.in_(channels),
                    or_(
                        and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
                        and_(Delivery.status == "sending", Delivery.lease_until < now),
                    ),
                )
                .order_by(Delivery.priority, Delivery.id)
                .limit(self.batch)
            )
            if self.db.dialect == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = list((await session.execute(due)).scalars())
            if not ids:
                return []
            rows = (
                await session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(ids))
                    .values(
                        status="sending",
                        lease_until=now + LEASE,
                        lease_owner=self.name,
                        attempts=Delivery.attempts + 1,
                    )
                    .returning(
                        Delivery.id,
                        Delivery.channel,
                        Delivery.address,
                        Delivery.payload,
                        Delivery.attempts,
                        Delivery.priority,
                    )
                )
            ).all()
        rows.sort(key=lambda r: (r.priority, r.id))
        return [
            Claimed(r.id, r.channel, r.address, reply_from_json(r.payload), r.attempts)
            for r in rows
        ]

    async def _finish(self, item: Claimed, **values: Any) -> None:
        async with self.db.write() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.id == item.id, Delivery.lease_owner == self.name)
                .values(lease_until=None, lease_owner=None, **values)
            )

    def _backoff(self, attempts: int) -> timedelta:
        base = min(300.0, 2.0 ** min(attempts, 8))
        return timedelta(seconds=base * (0.5 + random.random() / 2))  # noqa: S311

    async def deliver(self, item: Claimed) -> str:
        """Send one claimed row and record the outcome; returns the new status."""
        sender = self.senders[item.channel]
        now = self.clock.now
        try:
            ref = await sender.send(item.address, item.reply)
        except RetryLater as exc:
            await self._finish(
                item,
                status="pending",
                attempts=item.attempts - 1,  # the platform's pacing is not a failure
                next_attempt_at=now() + timedelta(seconds=max(exc.retry_after, 0.05)),
                last_error=str(exc)[:500],
            )
            return "pending"
        except Unreachable as exc:
            await self._finish(item, status="unreachable", last_error=str(exc)[:500])
            if self.on_unreachable is not None:
                await self.on_unreachable(item.channel, item.address, str(exc)[:200])
            return "unreachable"
        except PermanentSendError as exc:
            await self._finish(item, status="failed", last_error=str(exc)[:500])
            return "failed"
        except (TransientSendError, OSError, asyncio.TimeoutError) as exc:
            if item.attempts >= self.max_attempts:
                await self._finish(item, status="failed", last_error=str(exc)[:500])
                return "failed"
            await self._finish(
                item,
                status="pending",
                next_attempt_at=now() + self._backoff(item.attempts),
                last_error=str(exc)[:500],
            )
            return "pending"
        await self._finish(item, status="sent", sent_at=now(), message_ref=ref, last_error=None)
        return "sent"

    async def run_once(self) -> int:
        items = await self.claim()
        if items:
            await asyncio.gather(*(self.deliver(item) for item in items))
        return len(items)

    async def run(self, *, idle: float = 1.0) -> None:
        while not self._stopping:
            try:
                count = await self.run_once()
            except Exception:
                log.exception("delivery worker %s: claim failed", self.name)
                count = 0
            if count == 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), idle)
                except TimeoutError:
                    pass

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()


class Outbound:
    """Immediate answers to what a person just did, sent ahead of bulk work.

    Channels call ``send_now`` for conversation replies; it honours ``RetryLater`` a few times
    and reports an unreachable person. (Bulk and notifications go through the outbox.)
    """

    def __init__(self, senders: Mapping[str, Sender], *, on_unreachable: Any = None) -> None:
        self.senders = senders
        self.on_unreachable = on_unreachable

    async def send_now(
        self, channel: str, address: str, replies: Sequence[Reply], *, edit_ref: str | None = None
    ) -> list[str | None]:
        sender = self.senders[channel]
        refs: list[str | None] = []
        for index, reply in enumerate(replies):
            ref = edit_ref if (index == 0 and reply.edit) else None
            for attempt in range(5):
                try:
                    refs.append(await sender.send(address, reply, edit_ref=ref))
                    break
                except RetryLater as exc:
                    await asyncio.sleep(min(exc.retry_after, 30.0))
                except TransientSendError:
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.2 * 2**attempt)
                except Unreachable as exc:
                    if self.on_unreachable is not None:
                        await self.on_unreachable(channel, address, str(exc)[:200])
                    return refs
        return refs
