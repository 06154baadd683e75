"""The read side: queries that build frozen view models (never write)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, text

from core import news
from core.adapters.db import Database
from core.adapters.orm import (
    Attachment,
    Feedback,
    Follow,
    Identity,
    Person,
    Proposal,
    StatusChange,
    Support,
)
from core.domain.model import (
    AttachmentView,
    FeedbackKind,
    FeedbackView,
    KnownIdentity,
    ProposalStatus,
    ProposalSummary,
    ProposalView,
    Relation,
    StatusChangeView,
    parse_tracking,
)

__all__ = ["KnownIdentity", "Relation", "Views"]


def _summary(p: Proposal) -> ProposalSummary:
    return ProposalSummary(
        tracking=p.tracking,
        title=p.title,
        category=p.category,
        status=ProposalStatus(p.status),
        created_at=p.created_at,
        support_count=p.support_count,
    )


class Views:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def proposal(self, tracking_text: str) -> ProposalView | None:
        tracking = parse_tracking(tracking_text)
        if tracking is None:
            return None
        async with self.db.read() as s:
            p = (
                await s.execute(select(Proposal).where(Proposal.tracking == tracking))
            ).scalar_one_or_none()
            if p is None:
                return None
            attachments = (
                await s.execute(
                    select(Attachment).where(Attachment.proposal_id == p.id).order_by(Attachment.id)
                )
            ).scalars()
            history = (
                await s.execute(
                    select(StatusChange)
                    .where(StatusChange.proposal_id == p.id)
                    .order_by(StatusChange.id)
                )
            ).scalars()
            feedback = (
                await s.execute(
                    select(Feedback).where(Feedback.proposal_id == p.id).order_by(Feedback.id)
                )
            ).scalars()
            return ProposalView(
                id=p.id,
                tracking=p.tracking,
                title=p.title,
                body=p.body,
                category=p.category,
                region=p.region,
                status=ProposalStatus(p.status),
                author_id=p.author_id,
                created_at=p.created_at,
                updated_at=p.updated_at,
                support_count=p.support_count,
                follower_count=p.follower_count,
                assigned_to=p.assigned_to,
                forum_id=p.forum_id,
                status_version=p.status_version,
                attachments=tuple(
                    AttachmentView(a.kind, a.ref, a.latitude, a.longitude) for a in attachments
                ),
                history=tuple(
                    StatusChangeView(
                        from_status=ProposalStatus(h.from_status) if h.from_status else None,
                        to_status=ProposalStatus(h.to_status),
                        reason=h.reason,
                        expected_date=h.expected_date,
                        actor=h.actor,
                        source=h.source,
                        at=h.created_at,
                    )
                    for h in history
                ),
                feedback=tuple(
                    FeedbackView(
                        id=f.id,
                        kind=FeedbackKind(f.kind),
                        body=f.body,
                        at=f.created_at,
                        by_author=f.person_id == p.author_id,
                    )
                    for f in feedback
                ),
            )

    async def proposals_of(
        self, person_id: int, *, limit: int = 10, offset: int = 0
    ) -> tuple[list[ProposalSummary], int]:
        """A person's own proposals, newest first, and how many there are in all."""
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    select(Proposal)
                    .where(Proposal.author_id == person_id)
                    .order_by(Proposal.id.desc())
                    .limit(limit)
                    .offset(offset)
                )
            ).scalars()
            total = (
                await s.execute(
                    select(func.count(Proposal.id)).where(Proposal.author_id == person_id)
                )
            ).scalar_one()
            return [_summary(p) for p in rows], int(total)

    async def followed_by(self, person_id: int, *, limit: int = 10) -> list[ProposalSummary]:
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    select(Proposal)
                    .join(Follow, Follow.proposal_id == Proposal.id)
                    .where(Follow.person_id == person_id, Proposal.author_id != person_id)
                    .order_by(Proposal.updated_at.desc())
                    .limit(limit)
                )
            ).scalars()
            return [_summary(p) for p in rows]

    async def relation(self, person_id: int, tracking: str) -> Relation:
        async with self.db.read() as s:
            p = (
                await s.execute(
                    select(Proposal.id, Proposal.author_id).where(Proposal.tracking == tracking)
                )
            ).first()
            if p is None:
                return Relation(supporting=False, following=False, is_author=False)
            supporting = (
                await s.execute(
                    select(Support.person_id).where(
                        Support.proposal_id == p.id, Support.person_id == person_id
                    )
                )
            ).first() is not None
            following = (
                await s.execute(
                    select(Follow.person_id).where(
                        Follow.proposal_id == p.id, Follow.person_id == person_id
                    )
                )
            ).first() is not None
            return Relation(
                supporting=supporting, following=following, is_author=p.author_id == person_id
            )

    async def search(self, words: str, *, limit: int = 10) -> list[ProposalSummary]:
        terms = [w for w in words.split() if w][:5]
        if not terms:
            return []
        async with self.db.read() as s:
            stmt = select(Proposal).order_by(Proposal.id.desc()).limit(limit)
            for term in terms:
                like = f"%{term.replace('%', '').replace('_', '')}%"
                stmt = stmt.where(or_(Proposal.title.ilike(like), Proposal.body.ilike(like)))
            return [_summary(p) for p in (await s.execute(stmt)).scalars()]

    async def recent(self, *, limit: int = 10) -> list[ProposalSummary]:
        async with self.db.read() as s:
            rows = (
                await s.execute(select(Proposal).order_by(Proposal.id.desc()).limit(limit))
            ).scalars()
            return [_summary(p) for p in rows]

    async def stats(self) -> dict[str, Any]:
        async with self.db.read() as s:
            rows = await s.execute(
                select(Proposal.status, func.count()).group_by(Proposal.status)
            )
            by_status = {status: int(count) for status, count in rows}
            total = sum(by_status.values())
            supports = (await s.execute(select(func.count()).select_from(Support))).scalar_one()
            return {"total": total, "by_status": by_status, "supports": int(supports)}

    async def identity(self, channel: str, external_id: str) -> KnownIdentity | None:
        """Who is behind a channel identity, read without taking the write lock."""
        async with self.db.read() as s:
            row = (
                await s.execute(
                    select(Identity.person_id, Identity.address, Identity.reachable, Person.locale)
                    .join(Person, Person.id == Identity.person_id)
                    .where(Identity.channel == channel, Identity.external_id == external_id)
                )
            ).first()
        if row is None:
            return None
        return KnownIdentity(
            person_id=row.person_id, address=row.address, reachable=row.reachable,
            locale=row.locale,
        )

    async def schema_version(self) -> str | None:
        """The database's Alembic revision (raises when the database cannot be read)."""
        async with self.db.read() as s:
            version = (
                await s.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar_one_or_none()
        return None if version is None else str(version)

    async def news_waiting(self, channel: str, address: str, *, now: datetime) -> int:
        """How many notifications wait for this address on a channel that cannot push
        (``core.news``)."""
        return await news.waiting(self.db, channel, address, now=now)
