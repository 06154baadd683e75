"""SQL for the officials feature: the board queue, triage posts and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.db import insert_for
from core.adapters.orm_officials import OfficialAudit, OfficialOutbox, OfficialPost

__all__ = ["OfficialsRepository"]


class OfficialsRepository:
    """Used inside a unit of work (``uow.repo(OfficialsRepository)``) or a write session."""

    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enqueue(
        self,
        *,
        kind: str,
        dedupe_key: str,
        payload: dict[str, Any],
        now: datetime,
        proposal_id: int | None = None,
    ) -> bool:
        """True when queued; False when this key was queued before."""
        stmt = (
            insert_for(self.session, OfficialOutbox.__table__)
            .values(
                dedupe_key=dedupe_key,
                kind=kind,
                proposal_id=proposal_id,
                payload=payload,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(OfficialOutbox.__table__.c.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def pending(self, kind: str, proposal_id: int) -> bool:
        """Is a row of this kind still waiting (or in flight) for this proposal?"""
        row = (
            await self.session.execute(
                select(OfficialOutbox.id)
                .where(
                    OfficialOutbox.kind == kind,
                    OfficialOutbox.proposal_id == proposal_id,
                    OfficialOutbox.status.in_(("pending", "sending")),
                )
                .limit(1)
            )
        ).first()
        return row is not None

    async def post_of(self, proposal_id: int) -> OfficialPost | None:
        return await self.session.get(OfficialPost, proposal_id)

    async def ensure_post(self, proposal_id: int, channel: str, now: datetime) -> None:
        """The card's row, before it is posted (``ts`` unknown)."""
        await self.session.execute(
            insert_for(self.session, OfficialPost.__table__)
            .values(
                proposal_id=proposal_id,
                channel=channel,
                ts=None,
                thread_open=False,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["proposal_id"])
        )

    async def posted(self, proposal_id: int, channel: str, ts: str, now: datetime) -> None:
        await self.ensure_post(proposal_id, channel, now)
        await self.session.execute(
            update(OfficialPost)
            .where(OfficialPost.proposal_id == proposal_id)
            .values(channel=channel, ts=ts, updated_at=now)
        )

    async def open_thread(self, proposal_id: int, now: datetime) -> bool:
        """True the first time the feedback thread of this card is opened."""
        result = await self.session.execute(
            update(OfficialPost)
            .where(OfficialPost.proposal_id == proposal_id, OfficialPost.thread_open.is_(False))
            .values(thread_open=True, updated_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def thread_open(self, proposal_id: int) -> bool:
        post = await self.post_of(proposal_id)
        return bool(post and post.thread_open)

    async def record(
        self,
        *,
        actor: str,
        action: str,
        tracking: str | None,
        outcome: str,
        detail: dict[str, Any],
        now: datetime,
    ) -> None:
        self.session.add(
            OfficialAudit(
                actor=actor[:64],
                action=action[:32],
                tracking=tracking,
                outcome=outcome[:16],
                detail=detail,
                created_at=now,
            )
        )
