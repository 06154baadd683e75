"""Deliberation's read side: pages of opinions, summaries, statements and their analysis."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from core.adapters.db import Database
from core.adapters.orm import Feedback, Follow, Proposal
from core.adapters.orm_deliberation import (
    DiscussionAlias,
    OpinionSupport,
    Statement,
    StatementRound,
    StatementVote,
)
from core.deliberation.analysis import Analysis, analyse
from core.deliberation.model import (
    PAGE_SIZE,
    REPLIES_SHOWN,
    DiscussionPage,
    DiscussionSummary,
    OpinionSort,
    OpinionView,
    Stance,
    StatementStatus,
    StatementView,
)
from core.domain.model import FeedbackKind, parse_tracking

__all__ = ["DeliberationViews"]

_COMMENT = FeedbackKind.COMMENT.value
_ANSWER = FeedbackKind.OFFICIAL_ANSWER.value


class DeliberationViews:
    """Never writes. Opinions show a pseudonym, a stance and counts: never a name or channel."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _proposal(self, s: Any, tracking_text: str) -> Any:
        tracking = parse_tracking(tracking_text)
        if tracking is None:
            return None
        return (
            await s.execute(select(Proposal.id, Proposal.tracking, Proposal.title,
                                   Proposal.author_id, Proposal.support_count)
                            .where(Proposal.tracking == tracking))
        ).first()

    async def _views(self, s: Any, proposal: Any, rows: Iterable[Feedback],
                     reader: int | None) -> list[OpinionView]:
        rows = list(rows)
        people = {r.person_id for r in rows if r.person_id is not None}
        aliases: dict[int, int] = {}
        if people:
            aliases = dict((await s.execute(
                select(DiscussionAlias.person_id, DiscussionAlias.alias).where(
                    DiscussionAlias.proposal_id == proposal.id,
                    DiscussionAlias.person_id.in_(people)))).all())
        supported: set[int] = set()
        if reader is not None and rows:
            supported = set((await s.execute(
                select(OpinionSupport.feedback_id).where(
                    OpinionSupport.person_id == reader,
                    OpinionSupport.feedback_id.in_([r.id for r in rows])))).scalars())
        return [
            OpinionView(
                id=r.id,
                alias=aliases.get(r.person_id) if r.person_id is not None else None,
                stance=Stance(r.stance) if r.stance else None,
                body=r.body,
                support_count=r.support_count,
                at=r.created_at,
                official=r.kind == _ANSWER,
                from_forum=r.person_id is None and r.forum_id is not None and r.kind == _COMMENT,
                mine=reader is not None and r.person_id == reader,
                supported=r.id in supported,
            )
            for r in rows
        ]

    async def page(self, tracking: str, *, sort: OpinionSort = OpinionSort.TOP, page: int = 0,
                   reader: int | None = None, size: int = PAGE_SIZE) -> DiscussionPage | None:
        """One page of a proposal's opinions with their first replies; official answers count."""
        async with self.db.read() as s:
            proposal = await self._proposal(s, tracking)
            if proposal is None:
                return None
            standing = (Feedback.proposal_id == proposal.id, Feedback.withdrawn_at.is_(None),
                        Feedback.parent_id.is_(None))
            total = int((await s.execute(select(func.count()).where(*standing))).scalar_one())
            by_stance = dict((await s.execute(
                select(Feedback.stance, func.count()).where(*standing, Feedback.kind == _COMMENT)
                .group_by(Feedback.stance))).all())
            pages = max(1, math.ceil(total / size))
            page = min(max(page, 0), pages - 1)
            order = ((Feedback.support_count.desc(), Feedback.id.desc()) if sort is OpinionSort.TOP
                     else (Feedback.id.desc(),))
            rows = (await s.execute(select(Feedback).where(*standing).order_by(*order)
                                    .limit(size).offset(page * size))).scalars().all()
            items = await self._views(s, proposal, rows, reader)
            replies: dict[int, list[Feedback]] = {}
            counts: dict[int, int] = {}
            if rows:
                ids = [r.id for r in rows]
                counts = dict((await s.execute(
                    select(Feedback.parent_id, func.count()).where(
                        Feedback.parent_id.in_(ids), Feedback.withdrawn_at.is_(None))
                    .group_by(Feedback.parent_id))).all())
                for reply in (await s.execute(
                        select(Feedback).where(Feedback.parent_id.in_(ids),
                                               Feedback.withdrawn_at.is_(None))
                        .order_by(Feedback.id))).scalars():
                    replies.setdefault(reply.parent_id, []).append(reply)
            out = []
            for item in items:
                shown = replies.get(item.id, [])[:REPLIES_SHOWN]
                reply_views = await self._views(s, proposal, shown, reader)
                out.append(replace(item, reply_count=counts.get(item.id, 0),
                                   replies=tuple(reply_views)))
            return DiscussionPage(
                tracking=proposal.tracking, title=proposal.title, sort=sort, page=page,
                pages=pages, total=total, opinions=sum(int(v) for v in by_stance.values()),
                by_stance=_stances(by_stance),
                items=tuple(out),
            )

    async def opinion(self, opinion_id: int, *, reader: int | None = None,
                      replies: int = 20) -> tuple[str, OpinionView] | None:
        """One opinion with its replies (newest last), and its proposal's tracking number."""
        async with self.db.read() as s:
            row = await s.get(Feedback, opinion_id)
            if row is None or row.withdrawn_at is not None:
                return None
            proposal = (await s.execute(select(Proposal.id, Proposal.tracking)
                                        .where(Proposal.id == row.proposal_id))).first()
            [view] = await self._views(s, proposal, [row], reader)
            reply_rows = (await s.execute(
                select(Feedback).where(Feedback.parent_id == row.id,
                                       Feedback.withdrawn_at.is_(None))
                .order_by(Feedback.id))).scalars().all()
            reply_views = await self._views(s, proposal, reply_rows[-replies:], reader)
            return proposal.tracking, replace(view, reply_count=len(reply_rows),
                                              replies=tuple(reply_views))

    async def counts(self, tracking: str) -> tuple[int, dict[str, int]]:
        """Opinions standing on a proposal, and how many take each stance."""
        page = await self.page(tracking, size=1)
        if page is None:
            return 0, {}
        return page.opinions, page.by_stance

    async def summary(self, tracking: str, *, top: int = 2) -> DiscussionSummary | None:
        async with self.db.read() as s:
            proposal = await self._proposal(s, tracking)
            if proposal is None:
                return None
            standing = (Feedback.proposal_id == proposal.id, Feedback.withdrawn_at.is_(None),
                        Feedback.kind == _COMMENT)
            opinions = int((await s.execute(select(func.count()).where(
                *standing, Feedback.parent_id.is_(None)))).scalar_one())
            replies = int((await s.execute(select(func.count()).where(
                *standing, Feedback.parent_id.is_not(None)))).scalar_one())
            by_stance = dict((await s.execute(
                select(Feedback.stance, func.count()).where(*standing,
                                                            Feedback.parent_id.is_(None))
                .group_by(Feedback.stance))).all())

            async def best(stance: Stance) -> tuple[OpinionView, ...]:
                rows = (await s.execute(
                    select(Feedback).where(*standing, Feedback.parent_id.is_(None),
                                           Feedback.stance == stance.value)
                    .order_by(Feedback.support_count.desc(), Feedback.id).limit(top)
                )).scalars().all()
                return tuple(await self._views(s, proposal, rows, None))

            return DiscussionSummary(
                tracking=proposal.tracking, title=proposal.title, opinions=opinions,
                replies=replies, by_stance=_stances(by_stance),
                top_for=await best(Stance.FOR), top_against=await best(Stance.AGAINST),
                support_count=int(proposal.support_count),
            )

    async def active_discussions(self, since: datetime, *, limit: int = 10,
                                 until: datetime | None = None) -> list[str]:
        """Tracking numbers of proposals with new opinions in ``[since, until)``, busiest
        first (then the lowest tracking number)."""
        async with self.db.read() as s:
            window = [Feedback.created_at >= since]
            if until is not None:
                window.append(Feedback.created_at < until)
            rows = (await s.execute(
                select(Proposal.tracking, func.count(Feedback.id).label("n"))
                .join(Feedback, Feedback.proposal_id == Proposal.id)
                .where(*window, Feedback.kind == _COMMENT, Feedback.withdrawn_at.is_(None))
                .group_by(Proposal.tracking)
                .order_by(func.count(Feedback.id).desc(), Proposal.tracking)
                .limit(limit))).all()
            return [r.tracking for r in rows]

    async def news_since(self, since: datetime, until: datetime) -> dict[int, dict[str, Any]]:
        """Per person: new opinions on proposals they wrote or follow, and new replies to their
        own opinions, in ``[since, until)``. What the daily summary tells them."""
        async with self.db.read() as s:
            fresh = (await s.execute(
                select(Feedback.id, Feedback.proposal_id, Feedback.stance, Feedback.parent_id,
                       Feedback.person_id)
                .where(Feedback.created_at >= since, Feedback.created_at < until,
                       Feedback.kind == _COMMENT, Feedback.withdrawn_at.is_(None)))).all()
            if not fresh:
                return {}
            proposals = {r.proposal_id for r in fresh}
            meta = {r.id: r for r in (await s.execute(
                select(Proposal.id, Proposal.tracking, Proposal.title, Proposal.author_id)
                .where(Proposal.id.in_(proposals)))).all()}
            followers: dict[int, set[int]] = {}
            for pid, person in (await s.execute(
                    select(Follow.proposal_id, Follow.person_id)
                    .where(Follow.proposal_id.in_(proposals)))).all():
                followers.setdefault(pid, set()).add(person)
            parents = {r.parent_id for r in fresh if r.parent_id is not None}
            parent_writer = dict((await s.execute(
                select(Feedback.id, Feedback.person_id).where(Feedback.id.in_(parents))
            )).all()) if parents else {}
            out: dict[int, dict[str, Any]] = {}
            for row in fresh:
                p = meta[row.proposal_id]
                audience = set(followers.get(row.proposal_id, set())) | {p.author_id}
                for person in audience:
                    if person == row.person_id or row.parent_id is not None:
                        continue
                    item = out.setdefault(person, {"proposals": {}, "replies": 0})
                    entry = item["proposals"].setdefault(
                        p.tracking, {"title": p.title, "count": 0, "for": 0, "against": 0,
                                     "other": 0})
                    entry["count"] += 1
                    entry[row.stance or "other"] += 1
                if row.parent_id is not None:
                    writer = parent_writer.get(row.parent_id)
                    if writer is not None and writer != row.person_id:
                        out.setdefault(writer, {"proposals": {}, "replies": 0})["replies"] += 1
            return out

    # --- statements -------------------------------------------------------------------
    async def statements_open(self, tracking: str) -> bool:
        async with self.db.read() as s:
            proposal = await self._proposal(s, tracking)
            if proposal is None:
                return False
            round_ = await s.get(StatementRound, proposal.id)
            return round_ is not None and round_.closed_at is None

    async def next_statement(self, tracking: str, person_id: int) -> StatementView | None:
        """The oldest approved statement this person has not voted on yet."""
        async with self.db.read() as s:
            proposal = await self._proposal(s, tracking)
            if proposal is None:
                return None
            voted = select(StatementVote.statement_id).where(StatementVote.person_id == person_id)
            row = (await s.execute(
                select(Statement).where(Statement.proposal_id == proposal.id,
                                        Statement.status == StatementStatus.APPROVED.value,
                                        Statement.id.not_in(voted))
                .order_by(Statement.id).limit(1))).scalar_one_or_none()
            if row is None:
                return None
            return StatementView(id=row.id, text=row.text, status=StatementStatus(row.status),
                                 mine=row.person_id == person_id)

    async def statements(self, tracking: str) -> list[StatementView]:
        async with self.db.read() as s:
            proposal = await self._proposal(s, tracking)
            if proposal is None:
                return []
            rows = (await s.execute(select(Statement).where(Statement.proposal_id == proposal.id)
                                    .order_by(Statement.id))).scalars().all()
            tallies: dict[int, dict[int, int]] = {}
            for sid, vote, n in (await s.execute(
                    select(StatementVote.statement_id, StatementVote.vote, func.count())
                    .join(Statement, Statement.id == StatementVote.statement_id)
                    .where(Statement.proposal_id == proposal.id)
                    .group_by(StatementVote.statement_id, StatementVote.vote))).all():
                tallies.setdefault(sid, {})[vote] = n
            return [StatementView(id=r.id, text=r.text, status=StatementStatus(r.status),
                                  agree=tallies.get(r.id, {}).get(1, 0),
                                  disagree=tallies.get(r.id, {}).get(-1, 0),
                                  passed=tallies.get(r.id, {}).get(0, 0)) for r in rows]

    async def analysis(self, tracking: str) -> Analysis | None:
        """Opinion groups, broad agreement and divisive statements (anonymous: no person ids
        leave this function; participants are numbered)."""
        async with self.db.read() as s:
            proposal = await self._proposal(s, tracking)
            if proposal is None:
                return None
            rows = (await s.execute(
                select(StatementVote.person_id, StatementVote.statement_id, StatementVote.vote)
                .join(Statement, Statement.id == StatementVote.statement_id)
                .where(Statement.proposal_id == proposal.id,
                       Statement.status == StatementStatus.APPROVED.value))).all()
        numbering: dict[int, str] = {}
        votes = [(numbering.setdefault(person, str(len(numbering))), str(sid), int(vote))
                 for person, sid, vote in rows]
        return analyse(votes)


def _stances(rows: dict[Any, Any]) -> dict[str, int]:
    """Counts per stance; an opinion that gave none (e.g. from the forum) counts as other."""
    out: dict[str, int] = {}
    for stance, count in rows.items():
        key = str(stance) if stance else Stance.OTHER.value
        out[key] = out.get(key, 0) + int(count)
    return out
