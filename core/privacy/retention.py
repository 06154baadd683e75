"""Retention: one daily purge job for every kind of data that must not be kept for ever.

Each feature registers a purger for its own kind (``Retention.add(kind, purge)``;
``purge(now) -> rows removed``) and the one job runs them all, once a day across every process
(``core.once("privacy:purge:<date>")``). Purgers delete in batches and are idempotent: a pass that
dies half-way is simply finished by the next one. This module registers the purgers for the rows
it can judge itself: finished deliveries, sent forum outbox rows, done Slack outbox rows and the
officials' audit. Web sessions, inbox and uploads are purged by the web chat's retention, the
conversation state expires by its TTL (``conversation_ttl_seconds``), the inbound journal by its
own feature; each reads its ``*_days`` setting (README "Retention").
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import delete, select

from core.adapters.orm_delivery import Delivery
from core.adapters.orm_officials import OfficialAudit, OfficialOutbox
from core.adapters.orm_sync import SyncOutbox
from core.kernel import Kernel
from core.ports import Clock

__all__ = ["Retention", "install"]

log = logging.getLogger(__name__)

BATCH = 1000
Purger = Callable[[datetime], Awaitable[int]]
FINISHED_DELIVERIES = ("sent", "failed", "unreachable", "cancelled", "opted_out")


class Retention:
    """The purgers by kind; ``run(now)`` runs each and returns the counts; ``daily()`` is the
    scheduled job (once a day across every process)."""

    def __init__(
        self, *, clock: Clock, once: Callable[[str], Awaitable[bool]], tz: tzinfo
    ) -> None:
        self.purgers: dict[str, Purger] = {}
        self._clock = clock
        self._once = once
        self._tz = tz

    async def daily(self) -> None:
        now = self._clock.now()
        if await self._once(f"privacy:purge:{now.astimezone(self._tz):%Y-%m-%d}"):
            counts = await self.run(now)
            log.info("retention purge: %s", counts)

    def add(self, kind: str, purge: Purger) -> None:
        self.purgers[kind] = purge

    async def run(self, now: datetime) -> dict[str, int]:
        counts: dict[str, int] = {}
        for kind, purge in self.purgers.items():
            try:
                counts[kind] = await purge(now)
            except Exception:
                log.exception("retention: purging %s failed (the next pass continues)", kind)
        return counts


async def _purge_batches(db: Any, table: Any, *conditions: Any) -> int:
    """Delete matching rows ``BATCH`` at a time (short write transactions)."""
    removed = 0
    while True:
        async with db.write() as session:
            ids = list(
                (await session.execute(select(table.id).where(*conditions).limit(BATCH))).scalars()
            )
            if not ids:
                return removed
            await session.execute(delete(table).where(table.id.in_(ids)))
        removed += len(ids)


def install(core: Kernel) -> Retention:
    """Register the purgers this module can judge and the daily job; the ``Retention`` is
    kept on ``core.privacy.retention`` (other features may ``add`` their own purgers)."""
    settings = core.settings
    db = core.db
    retention = Retention(clock=core.clock, once=core.once, tz=settings.tz)

    def days(n: int) -> timedelta:
        return timedelta(days=n)

    async def deliveries(now: datetime) -> int:
        cutoff = now - days(settings.retention_delivery_days)
        return await _purge_batches(
            db, Delivery, Delivery.status.in_(FINISHED_DELIVERIES), Delivery.created_at < cutoff
        )

    async def outboxes(now: datetime) -> int:
        cutoff = now - days(settings.retention_outbox_days)
        forum = await _purge_batches(
            db, SyncOutbox, SyncOutbox.status == "sent", SyncOutbox.created_at < cutoff
        )
        slack = await _purge_batches(
            db, OfficialOutbox, OfficialOutbox.status == "done", OfficialOutbox.created_at < cutoff
        )
        return forum + slack

    async def audit(now: datetime) -> int:
        cutoff = now - days(settings.retention_audit_days)
        return await _purge_batches(db, OfficialAudit, OfficialAudit.created_at < cutoff)

    retention.add("deliveries", deliveries)
    retention.add("outboxes", outboxes)
    retention.add("audit", audit)

    core.scheduler.cron(
        "privacy-purge", retention.daily, hour=settings.retention_purge_hour, minute=20
    )
    return retention
