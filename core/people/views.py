"""Reads for linked identities: a person's identities, and the record of merges."""

from __future__ import annotations

from sqlalchemy import select

from core.adapters.db import Database
from core.adapters.orm import Identity
from core.adapters.orm_people import PersonMerge
from core.people.model import IdentityRow, MergeRow

__all__ = ["PeopleViews"]


class PeopleViews:
    """``core.people``: what the link flow and ``gongnon people merge-report`` read."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def identities_of(self, person_id: int) -> list[IdentityRow]:
        async with self._db.read() as session:
            rows = await session.execute(
                select(Identity).where(Identity.person_id == person_id).order_by(Identity.id)
            )
            return [
                IdentityRow(id=i.id, channel=i.channel, external_id=i.external_id,
                            display_name=i.display_name, level=str(i.level or "guest"))
                for i in rows.scalars()
            ]

    async def merges(self, *, limit: int = 200) -> list[MergeRow]:
        async with self._db.read() as session:
            rows = await session.execute(
                select(PersonMerge).order_by(PersonMerge.id.desc()).limit(limit)
            )
            return [
                MergeRow(id=m.id, survivor_id=m.survivor_id, merged_id=m.merged_id,
                         channel=m.channel, created_at=m.created_at, summary=dict(m.summary))
                for m in rows.scalars()
            ]
