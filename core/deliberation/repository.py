"""Deliberation's writes inside a unit of work (``uow.repo(DeliberationRepository)``)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from core.adapters.db import insert_for
from core.adapters.orm import Feedback
from core.adapters.orm_deliberation import (
    DiscussionAlias,
    OpinionSupport,
    Statement,
    StatementRound,
    StatementVote,
)

__all__ = ["DeliberationRepository"]

ALIAS_LOW, ALIAS_HIGH = 1000, 9999


class DeliberationRepository:
    def __init__(self, session: Any) -> None:
        self.session = session

    async def ensure_alias(self, proposal_id: int, person_id: int) -> int:
        """This person's pseudonym number on this proposal, drawn once at random."""
        found = (
            await self.session.execute(
                select(DiscussionAlias.alias).where(
                    DiscussionAlias.proposal_id == proposal_id,
                    DiscussionAlias.person_id == person_id,
                )
            )
        ).scalar_one_or_none()
        if found is not None:
            return int(found)
        taken = set(
            (
                await self.session.execute(
                    select(DiscussionAlias.alias).where(DiscussionAlias.proposal_id == proposal_id)
                )
            ).scalars()
        )
        free = ALIAS_HIGH - ALIAS_LOW + 1 - len(taken)
        if free <= 0:  # 9,000 people in one discussion: widen the range, never collide
            alias = ALIAS_HIGH + 1 + len(taken)
        else:
            while True:
                alias = ALIAS_LOW + secrets.randbelow(ALIAS_HIGH - ALIAS_LOW + 1)
                if alias not in taken:
                    break
        await self.session.execute(
            insert_for(self.session, DiscussionAlias.__table__)
            .values(proposal_id=proposal_id, person_id=person_id, alias=alias)
            .on_conflict_do_nothing()
        )
        return await self.ensure_alias(proposal_id, person_id) if free > 0 else alias

    async def opinion(self, feedback_id: int, *, for_update: bool = False) -> Feedback | None:
        query = select(Feedback).where(Feedback.id == feedback_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()  # type: ignore[no-any-return]

    async def add_support(self, feedback_id: int, person_id: int, now: datetime) -> int | None:
        """The opinion's new 공감 count, or None when this person already gave one."""
        inserted = (
            await self.session.execute(
                insert_for(self.session, OpinionSupport.__table__)
                .values(feedback_id=feedback_id, person_id=person_id, created_at=now)
                .on_conflict_do_nothing()
                .returning(OpinionSupport.__table__.c.person_id)
            )
        ).scalar_one_or_none()
        if inserted is None:
            return None
        return int(
            (
                await self.session.execute(
                    update(Feedback)
                    .where(Feedback.id == feedback_id)
                    .values(support_count=Feedback.support_count + 1)
                    .returning(Feedback.support_count)
                )
            ).scalar_one()
        )

    async def round_of(self, proposal_id: int) -> StatementRound | None:
        return await self.session.get(StatementRound, proposal_id)  # type: ignore[no-any-return]

    async def open_round(self, proposal_id: int, opened_by: str, now: datetime) -> bool:
        """True when statement voting was opened now (False: it already was)."""
        existing = await self.round_of(proposal_id)
        if existing is not None:
            if existing.closed_at is None:
                return False
            existing.closed_at = None
            existing.opened_at = now
            existing.opened_by = opened_by
            return True
        self.session.add(StatementRound(proposal_id=proposal_id, opened_by=opened_by,
                                        opened_at=now))
        await self.session.flush()
        return True

    async def add_statement(
        self, *, proposal_id: int, text: str, person_id: int | None, actor: str | None,
        status: str, now: datetime,
    ) -> int:
        item = Statement(proposal_id=proposal_id, text=text, person_id=person_id, actor=actor,
                         status=status, created_at=now)
        self.session.add(item)
        await self.session.flush()
        return int(item.id)

    async def statement(self, statement_id: int) -> Statement | None:
        return await self.session.get(Statement, statement_id)  # type: ignore[no-any-return]

    async def vote(self, statement_id: int, person_id: int, value: int, now: datetime) -> bool:
        """True for a first vote; a second vote on the same statement changes nothing."""
        inserted = (
            await self.session.execute(
                insert_for(self.session, StatementVote.__table__)
                .values(statement_id=statement_id, person_id=person_id, vote=value,
                        created_at=now)
                .on_conflict_do_nothing()
                .returning(StatementVote.__table__.c.person_id)
            )
        ).scalar_one_or_none()
        return inserted is not None
