"""Repositories: the SQL behind the handlers' intent-named calls (people, proposals)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.db import insert_for
from core.adapters.orm import (
    Attachment,
    Counter,
    Feedback,
    Follow,
    Identity,
    OnceKey,
    Person,
    Proposal,
    StatusChange,
    Support,
)
from core.domain.model import AttachmentView
from core.domain.participation import higher

__all__ = ["IdentityIn", "PersonRepository", "ProposalRepository", "Recipient"]


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityIn:
    channel: str
    external_id: str
    address: str
    locale: str
    display_name: str | None = None
    level: str = "guest"


@dataclass(frozen=True, slots=True)
class Recipient:
    person_id: int
    channel: str
    address: str
    locale: str


def _dialect(session: AsyncSession) -> str:
    bind = session.bind
    assert bind is not None, "a session bound to an engine"
    return str(bind.dialect.name)


class PersonRepository:
    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def ensure_identities(
        self, items: Sequence[IdentityIn], *, now: datetime
    ) -> list[tuple[int, bool]]:
        """(person id, created?) for each channel identity, creating both on first contact.

        Written for group commit: whatever the batch size, one SELECT of the known ones, one
        multi-row INSERT of new people and one of their identities (``ON CONFLICT DO NOTHING``
        for a concurrent first contact elsewhere), as plain statements — few round trips
        under SQLite's one write lock.
        """
        keys = list(dict.fromkeys((i.channel, i.external_id) for i in items))
        found = await self._identities(keys)
        latest = {(i.channel, i.external_id): i for i in items}  # the newest address wins
        for key, row in found.items():
            await self._refresh(row, latest[key], now)
        missing = [latest[k] for k in keys if k not in found]
        created: dict[tuple[str, str], int] = {}
        if missing:
            persons = cast(Table, Person.__table__)
            person_ids = list(
                (
                    await self.session.execute(
                        persons.insert()
                        .values([{"locale": m.locale, "created_at": now} for m in missing])
                        .returning(persons.c.id)
                    )
                ).scalars()
            )
            identities = Identity.__table__
            rows = await self.session.execute(
                insert_for(self.session, identities)
                .values(
                    [
                        {
                            "person_id": pid,
                            "channel": m.channel,
                            "external_id": m.external_id,
                            "address": m.address,
                            "display_name": m.display_name,
                            "created_at": now,
                            "last_seen_at": now,
                            "reachable": True,
                            "level": m.level,
                        }
                        for pid, m in zip(person_ids, missing, strict=True)
                    ]
                )
                .on_conflict_do_nothing(index_elements=["channel", "external_id"])
                .returning(identities.c.channel, identities.c.external_id, identities.c.person_id)
            )
            created = {(r.channel, r.external_id): int(r.person_id) for r in rows}
            unused = set(person_ids) - set(created.values())
            if unused:  # another process created some of them first: use theirs
                await self.session.execute(persons.delete().where(persons.c.id.in_(unused)))
                lost = [(m.channel, m.external_id) for m in missing]
                lost = [k for k in lost if k not in created]
                for key, row in (await self._identities(lost)).items():
                    found[key] = row
                    await self._refresh(row, latest[key], now)
        results: list[tuple[int, bool]] = []
        announced: set[tuple[str, str]] = set()
        for item in items:
            key = (item.channel, item.external_id)
            if key in created:
                results.append((created[key], key not in announced))
                announced.add(key)
            else:
                results.append((int(found[key].person_id), False))
        return results

    async def _identities(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        if not keys:
            return {}
        rows = await self.session.execute(
            select(
                Identity.id,
                Identity.person_id,
                Identity.channel,
                Identity.external_id,
                Identity.address,
                Identity.reachable,
                Identity.level,
            ).where(tuple_(Identity.channel, Identity.external_id).in_(keys))
        )
        return {(r.channel, r.external_id): r for r in rows}

    async def _refresh(self, row: Any, item: IdentityIn, now: datetime) -> None:
        values: dict[str, object] = {"last_seen_at": now}
        if row.address != item.address:
            values["address"] = item.address
        if not row.reachable:
            values["reachable"] = True
            values["unreachable_reason"] = None
        if item.level != row.level and higher(item.level, row.level) == item.level:
            values["level"] = item.level
        await self.session.execute(update(Identity).where(Identity.id == row.id).values(values))

    async def locale_of(self, person_id: int) -> str | None:
        return (
            await self.session.execute(select(Person.locale).where(Person.id == person_id))
        ).scalar_one_or_none()

    async def set_locale(self, person_id: int, locale: str) -> None:
        await self.session.execute(
            update(Person).where(Person.id == person_id).values(locale=locale)
        )

    async def set_reachable(
        self, *, channel: str, address: str, reachable: bool, reason: str | None
    ) -> int:
        result = await self.session.execute(
            update(Identity)
            .where(Identity.channel == channel, Identity.address == address)
            .values(reachable=reachable, unreachable_reason=None if reachable else reason)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def recipients(self, person_ids: set[int]) -> list[Recipient]:
        """Every reachable identity of these people, with each person's locale."""
        if not person_ids:
            return []
        rows = await self.session.execute(
            select(Identity.person_id, Identity.channel, Identity.address, Person.locale)
            .join(Person, Person.id == Identity.person_id)
            .where(
                Identity.person_id.in_(person_ids),
                Identity.reachable.is_(True),
                Person.erased_at.is_(None),
            )
            .order_by(Identity.person_id, Identity.id)
        )
        return [Recipient(r.person_id, r.channel, r.address, r.locale) for r in rows]


class ProposalRepository:
    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def next_sequence(self, name: str) -> int:
        stmt = (
            insert_for(self.session, Counter.__table__)
            .values(name=name, value=1)
            .on_conflict_do_update(
                index_elements=["name"], set_={"value": Counter.__table__.c.value + 1}
            )
            .returning(Counter.__table__.c.value)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def add(
        self,
        *,
        tracking: str,
        title: str,
        body: str,
        category: str,
        region: str | None,
        author_id: int,
        channel: str,
        attachments: tuple[AttachmentView, ...],
        now: datetime,
    ) -> int:
        proposal = Proposal(
            tracking=tracking,
            title=title,
            body=body,
            category=category,
            region=region,
            author_id=author_id,
            channel=channel,
            status="received",
            status_version=0,
            created_at=now,
            updated_at=now,
            support_count=0,
            follower_count=0,
        )
        self.session.add(proposal)
        await self.session.flush()
        for item in attachments:
            self.session.add(
                Attachment(
                    proposal_id=proposal.id,
                    kind=item.kind,
                    ref=item.ref,
                    latitude=item.latitude,
                    longitude=item.longitude,
                )
            )
        self.session.add(
            StatusChange(
                proposal_id=proposal.id,
                from_status=None,
                to_status="received",
                reason="",
                actor=f"person:{author_id}",
                source=channel,
                version=0,
                created_at=now,
            )
        )
        return proposal.id

    async def get(self, tracking: str, *, for_update: bool = False) -> Proposal | None:
        stmt = select(Proposal).where(Proposal.tracking == tracking)
        if for_update and _dialect(self.session) == "postgresql":
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_by_id(self, proposal_id: int) -> Proposal | None:
        return await self.session.get(Proposal, proposal_id)

    async def get_by_forum_id(self, forum_id: str) -> Proposal | None:
        return (
            await self.session.execute(select(Proposal).where(Proposal.forum_id == forum_id))
        ).scalar_one_or_none()

    async def set_status(
        self,
        proposal: Proposal,
        *,
        to_status: str,
        reason: str,
        expected_date: date | None,
        actor: str,
        source: str,
        version: int,
        now: datetime,
    ) -> str:
        previous = proposal.status
        proposal.status = to_status
        proposal.status_version = version
        proposal.updated_at = now
        self.session.add(
            StatusChange(
                proposal_id=proposal.id,
                from_status=previous,
                to_status=to_status,
                reason=reason,
                expected_date=expected_date,
                actor=actor,
                source=source,
                version=version,
                created_at=now,
            )
        )
        await self.session.flush()
        return previous

    async def add_support(self, proposal_id: int, person_id: int, now: datetime) -> int | None:
        """The new support count, or None when this person already supported it."""
        inserted = (
            await self.session.execute(
                insert_for(self.session, Support.__table__)
                .values(proposal_id=proposal_id, person_id=person_id, created_at=now)
                .on_conflict_do_nothing()
                .returning(Support.__table__.c.person_id)
            )
        ).scalar_one_or_none()
        if inserted is None:
            return None
        return int(
            (
                await self.session.execute(
                    update(Proposal)
                    .where(Proposal.id == proposal_id)
                    .values(support_count=Proposal.support_count + 1, updated_at=now)
                    .returning(Proposal.support_count)
                )
            ).scalar_one()
        )

    async def set_follow(
        self, proposal_id: int, person_id: int, following: bool, now: datetime
    ) -> bool:
        """True when something changed."""
        if following:
            changed = (
                await self.session.execute(
                    insert_for(self.session, Follow.__table__)
                    .values(proposal_id=proposal_id, person_id=person_id, created_at=now)
                    .on_conflict_do_nothing()
                    .returning(Follow.__table__.c.person_id)
                )
            ).scalar_one_or_none() is not None
            delta = 1
        else:
            result = await self.session.execute(
                delete(Follow).where(
                    Follow.proposal_id == proposal_id, Follow.person_id == person_id
                )
            )
            changed = bool(result.rowcount)  # type: ignore[attr-defined]
            delta = -1
        if changed:
            await self.session.execute(
                update(Proposal)
                .where(Proposal.id == proposal_id)
                .values(follower_count=Proposal.follower_count + delta)
            )
        return changed

    async def add_feedback(
        self,
        *,
        proposal_id: int,
        person_id: int | None,
        kind: str,
        body: str,
        actor: str | None,
        forum_id: str | None,
        now: datetime,
        stance: str | None = None,
        parent_id: int | None = None,
    ) -> int | None:
        """The new feedback id, or None if a comment with this forum id is already stored."""
        if forum_id is not None:
            exists = (
                await self.session.execute(select(Feedback.id).where(Feedback.forum_id == forum_id))
            ).scalar_one_or_none()
            if exists is not None:
                return None
        item = Feedback(
            proposal_id=proposal_id,
            person_id=person_id,
            kind=kind,
            body=body,
            actor=actor,
            forum_id=forum_id,
            created_at=now,
            stance=stance,
            parent_id=parent_id,
        )
        self.session.add(item)
        await self.session.flush()
        return item.id

    async def assign(self, proposal: Proposal, assignee: str, now: datetime) -> None:
        proposal.assigned_to = assignee
        proposal.updated_at = now

    async def set_forum_id(self, proposal_id: int, forum_id: str) -> None:
        await self.session.execute(
            update(Proposal).where(Proposal.id == proposal_id).values(forum_id=forum_id)
        )

    async def set_feedback_forum_id(self, feedback_id: int, forum_id: str) -> bool:
        """Remember the forum's id of our own comment; False if that id is already taken."""
        taken = (
            await self.session.execute(select(Feedback.id).where(Feedback.forum_id == forum_id))
        ).scalar_one_or_none()
        if taken is not None:
            return taken == feedback_id
        await self.session.execute(
            update(Feedback).where(Feedback.id == feedback_id).values(forum_id=forum_id)
        )
        return True

    async def audience(self, proposal_id: int) -> set[int]:
        """Author, supporters and followers: everyone who cares about this proposal."""
        author = select(Proposal.author_id).where(Proposal.id == proposal_id)
        supporters = select(Support.person_id).where(Support.proposal_id == proposal_id)
        followers = select(Follow.person_id).where(Follow.proposal_id == proposal_id)
        rows = await self.session.execute(author.union(supporters, followers))
        return {int(r[0]) for r in rows}

    async def count(self) -> int:
        return int((await self.session.execute(select(func.count(Proposal.id)))).scalar_one())


async def claim_once(session: AsyncSession, key: str, now: datetime) -> bool:
    """True for the first caller of ``key``, ever, across processes (a unique row)."""
    inserted = (
        await session.execute(
            insert_for(session, OnceKey.__table__)
            .values(key=key, created_at=now)
            .on_conflict_do_nothing()
            .returning(OnceKey.__table__.c.key)
        )
    ).scalar_one_or_none()
    return inserted is not None
