"""SQL for forum sync: outbox rows (insert, claim with a lease, finish, retry), cursors, counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.adapters.db import insert_for
from core.adapters.orm import Proposal
from core.adapters.orm_sync import SyncCursor, SyncOutbox
from core.outbox import LeasedQueue

__all__ = ["QUEUE", "Claimed", "OutboxCounts", "SyncRepository"]

UNFINISHED = ("pending", "sending", "dead")  # an earlier row in one of these holds back later ones


def _heads_only() -> list[Any]:
    """Only the oldest unfinished row of each proposal may go: strict order per proposal."""
    earlier = aliased(SyncOutbox)
    return [
        ~exists().where(
            earlier.proposal_id == SyncOutbox.proposal_id,
            earlier.id < SyncOutbox.id,
            earlier.status.in_(UNFINISHED),
        )
    ]


# The forum outbox's ordering plugged into the shared leased queue: by id, heads only.
QUEUE = LeasedQueue(
    SyncOutbox,
    order_by=lambda: (SyncOutbox.id,),
    eligible=_heads_only,
    returning=lambda: (
        SyncOutbox.id,
        SyncOutbox.kind,
        SyncOutbox.proposal_id,
        SyncOutbox.tracking,
        SyncOutbox.ref_id,
        SyncOutbox.idempotency_key,
        SyncOutbox.payload,
        SyncOutbox.attempts,
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Claimed:
    """An outbox row this relay holds until ``lease_until``."""

    id: int
    kind: str
    proposal_id: int
    tracking: str
    ref_id: int | None
    idempotency_key: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxCounts:
    pending: int
    sending: int
    dead: int
    sent: int
    oldest_pending_at: datetime | None


class SyncRepository:
    """Used inside a unit of work (``uow.repo(SyncRepository)``) or a plain write session."""

    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- writing the outbox (in the citizen's transaction) ---------------------------
    async def enqueue(
        self,
        *,
        kind: str,
        proposal_id: int,
        tracking: str,
        idempotency_key: str,
        payload: dict[str, Any],
        now: datetime,
        ref_id: int | None = None,
    ) -> bool:
        """True when queued; False when this action is already in the outbox."""
        stmt = (
            insert_for(self.session, SyncOutbox.__table__)
            .values(
                kind=kind,
                proposal_id=proposal_id,
                tracking=tracking,
                ref_id=ref_id,
                idempotency_key=idempotency_key,
                payload=payload,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(SyncOutbox.__table__.c.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    # --- the relay -------------------------------------------------------------------
    async def claim(
        self, *, owner: str, now: datetime, lease: timedelta, batch: int
    ) -> list[Claimed]:
        """Due rows that head their proposal's queue, leased to ``owner`` (attempts + 1)."""
        rows = await QUEUE.claim(self.session, owner=owner, now=now, lease=lease, limit=batch)
        claimed = [
            Claimed(
                id=r.id,
                kind=r.kind,
                proposal_id=r.proposal_id,
                tracking=r.tracking,
                ref_id=r.ref_id,
                idempotency_key=r.idempotency_key,
                payload=dict(r.payload),
                attempts=r.attempts,
            )
            for r in rows
        ]
        return sorted(claimed, key=lambda c: c.id)

    async def renew(self, ids: list[int], *, owner: str, until: datetime) -> None:
        await QUEUE.renew(self.session, ids, owner=owner, until=until)

    async def forum_id_of(self, proposal_id: int) -> str | None:
        return (
            await self.session.execute(
                select(Proposal.forum_id).where(Proposal.id == proposal_id)
            )
        ).scalar_one_or_none()

    async def finish(self, row_id: int, *, owner: str, **values: Any) -> bool:
        """Record an outcome if ``owner`` still holds the lease; False when it was lost."""
        return await QUEUE.finish(self.session, row_id, owner=owner, **values)

    async def next_due(self) -> datetime | None:
        return (
            await self.session.execute(
                select(func.min(SyncOutbox.next_attempt_at)).where(SyncOutbox.status == "pending")
            )
        ).scalar_one_or_none()

    # --- operators ---------------------------------------------------------------------
    async def retry_dead(self, *, now: datetime, row_id: int | None = None) -> int:
        stmt = update(SyncOutbox).where(SyncOutbox.status == "dead")
        if row_id is not None:
            stmt = stmt.where(SyncOutbox.id == row_id)
        result = await self.session.execute(
            stmt.values(status="pending", attempts=0, next_attempt_at=now, dead_at=None)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def counts(self) -> OutboxCounts:
        rows = (
            await self.session.execute(
                select(SyncOutbox.status, func.count(SyncOutbox.id)).group_by(SyncOutbox.status)
            )
        ).all()
        by_status = {status: int(n) for status, n in rows}
        oldest = (
            await self.session.execute(
                select(func.min(SyncOutbox.created_at)).where(
                    SyncOutbox.status.in_(("pending", "sending"))
                )
            )
        ).scalar_one_or_none()
        return OutboxCounts(
            pending=by_status.get("pending", 0),
            sending=by_status.get("sending", 0),
            dead=by_status.get("dead", 0),
            sent=by_status.get("sent", 0),
            oldest_pending_at=oldest,
        )

    async def support_sent(self, proposal_id: int) -> bool:
        """Whether a support of this proposal already reached the forum (any voter)."""
        found = await self.session.execute(
            select(SyncOutbox.id).where(
                SyncOutbox.proposal_id == proposal_id, SyncOutbox.kind == "support",
                SyncOutbox.status == "sent", SyncOutbox.forum_ref == "voted",
            ).limit(1)
        )
        return found.first() is not None

    async def support_notes(self) -> dict[str, int]:
        """Sent supports by their note: ``voted``, ``counted_once`` (the forum counts the
        proposal's chat supporters once), ``refused`` (the forum said no for good)."""
        rows = (
            await self.session.execute(
                select(SyncOutbox.forum_ref, func.count(SyncOutbox.id))
                .where(SyncOutbox.kind == "support", SyncOutbox.status == "sent")
                .group_by(SyncOutbox.forum_ref)
            )
        ).all()
        return {str(note or "sent"): int(n) for note, n in rows}

    async def dead_rows(self, limit: int = 20) -> list[SyncOutbox]:
        rows = await self.session.execute(
            select(SyncOutbox)
            .where(SyncOutbox.status == "dead")
            .order_by(SyncOutbox.id)
            .limit(limit)
        )
        return list(rows.scalars())

    # --- proposals seen from the forum ---------------------------------------------------
    async def tracking_for(self, *, forum_id: str, tracking: str | None) -> str | None:
        found = (
            await self.session.execute(
                select(Proposal.tracking).where(Proposal.forum_id == forum_id)
            )
        ).scalar_one_or_none()
        if found is None and tracking:
            found = (
                await self.session.execute(
                    select(Proposal.tracking).where(
                        Proposal.tracking == tracking,
                        or_(Proposal.forum_id.is_(None), Proposal.forum_id == forum_id),
                    )
                )
            ).scalar_one_or_none()
        return found

    # --- cursors ---------------------------------------------------------------------------
    async def cursor(self, name: str) -> tuple[str | None, datetime | None]:
        row = (
            await self.session.execute(
                select(SyncCursor.value, SyncCursor.updated_at).where(SyncCursor.name == name)
            )
        ).first()
        return (row.value, row.updated_at) if row is not None else (None, None)

    async def set_cursor(self, name: str, value: str | None, now: datetime) -> None:
        stmt = (
            insert_for(self.session, SyncCursor.__table__)
            .values(name=name, value=value, updated_at=now)
            .on_conflict_do_update(
                index_elements=["name"], set_={"value": value, "updated_at": now}
            )
        )
        await self.session.execute(stmt)
