"""The write side of the deliveries outbox, used by handlers inside a unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.db import insert_for
from core.adapters.orm_delivery import Delivery
from core.messages import Reply, ReplyKind, reply_to_json

__all__ = [
    "FINAL_STATUSES",
    "PRIORITY",
    "WAITING",
    "DeliveryRepository",
    "Outgoing",
    "push_report",
]

PRIORITY = {ReplyKind.CONVERSATION: 0, ReplyKind.NOTIFICATION: 3, ReplyKind.PUSH: 7}
FINAL_STATUSES = ("sent", "failed", "unreachable", "opted_out", "cancelled")
WAITING = ("pending", "held")  # not in any worker's hands


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """One message to one recipient, for ``enqueue_many``."""

    dedupe_key: str
    channel: str
    address: str
    reply: Reply
    person_id: int | None = None
    push_id: int | None = None
    not_before: datetime | None = None


def _row(item: Outgoing, now: datetime) -> dict[str, Any]:
    return {
        "dedupe_key": item.dedupe_key,
        "channel": item.channel,
        "address": item.address,
        "person_id": item.person_id,
        "kind": item.reply.kind.value,
        "priority": PRIORITY[item.reply.kind],
        "payload": reply_to_json(item.reply),
        "push_id": item.push_id,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": item.not_before or now,
        "created_at": now,
    }


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
        """True when queued; False when a row with this key already exists.

        ``not_before``: nothing is sent before then (quiet hours, scheduled pushes).
        """
        item = Outgoing(
            dedupe_key=dedupe_key,
            channel=channel,
            address=address,
            reply=reply,
            person_id=person_id,
            push_id=push_id,
            not_before=not_before,
        )
        stmt = (
            insert_for(self.session, Delivery.__table__)
            .values(_row(item, now))
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(Delivery.__table__.c.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def enqueue_many(self, items: Sequence[Outgoing], *, now: datetime) -> int:
        """Queue many rows in few statements; returns how many were new (duplicates skipped)."""
        table = Delivery.__table__
        added = 0
        for start in range(0, len(items), 1000):
            rows = [_row(item, now) for item in items[start : start + 1000]]
            stmt = (
                insert_for(self.session, table)
                .on_conflict_do_nothing(index_elements=["dedupe_key"])
                .returning(table.c.id)
            )
            added += len((await self.session.execute(stmt, rows)).all())
        return added

    async def push_report(self, push_id: int) -> dict[str, int]:
        """How many deliveries of a push are in each status (``sent``, ``pending`` …)."""
        return await push_report(self.session, push_id)


async def push_report(session: AsyncSession, push_id: int) -> dict[str, int]:
    """``{status: count}`` for one push; every final status is present (0 when none)."""
    rows = await session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.push_id == push_id)
        .group_by(Delivery.status)
    )
    report = dict.fromkeys(FINAL_STATUSES, 0)
    for status, count in rows:
        report[str(status)] = int(count)
    return report
