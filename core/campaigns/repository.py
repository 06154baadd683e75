"""The SQL behind the campaign handlers: surveys, ballots, consent, subscriptions, pushes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.db import insert_for
from core.adapters.orm import Identity, Person
from core.adapters.orm_campaigns import (
    Ballot,
    ConsentEvent,
    ConsentState,
    Participation,
    Push,
    Subscription,
    Survey,
    SurveyInvitation,
)
from core.adapters.orm_delivery import Delivery
from core.campaigns.model import Segment

__all__ = ["CampaignRepository", "Target", "audience_persons", "pick_targets"]

OPEN_DELIVERY = ("pending", "held", "sending")


@dataclass(frozen=True, slots=True)
class Target:
    """Where one person of a push's audience is reached: their most recently seen identity."""

    person_id: int
    channel: str
    address: str
    locale: str


def audience_persons(segment: Segment, *, unpushable: Sequence[str] = ()) -> Any:
    """``SELECT persons.id`` of everyone a push to ``segment`` may reach (consent, reachable
    on a channel that can push: identities on ``unpushable`` channels do not count)."""
    reachable = [
        Identity.person_id == Person.id,
        Identity.reachable.is_(True),
    ]
    if segment.channels:
        reachable.append(Identity.channel.in_(segment.channels))
    if unpushable:
        reachable.append(Identity.channel.not_in(list(unpushable)))
    stmt = (
        select(Person.id)
        .join(ConsentState, ConsentState.person_id == Person.id)
        .where(
            ConsentState.opted_in.is_(True),
            Person.erased_at.is_(None),
            exists().where(*reachable),
        )
    )
    if segment.locales:
        stmt = stmt.where(Person.locale.in_(segment.locales))
    for kind, topics in (("category", segment.topics), ("region", segment.regions)):
        if topics:
            stmt = stmt.where(
                exists().where(
                    Subscription.person_id == Person.id,
                    Subscription.kind == kind,
                    Subscription.topic.in_(topics),
                )
            )
    return stmt


async def pick_targets(
    session: AsyncSession, segment: Segment, *, after: int, limit: int,
    unpushable: Sequence[str] = (),
) -> list[Target]:
    """The next ``limit`` people (by id, after ``after``) with the identity to reach each
    (never one on a channel that cannot push)."""
    ids = [
        int(r)
        for r in (
            await session.execute(
                audience_persons(segment, unpushable=unpushable)
                .where(Person.id > after)
                .order_by(Person.id)
                .limit(limit)
            )
        ).scalars()
    ]
    if not ids:
        return []
    conditions = [Identity.person_id.in_(ids), Identity.reachable.is_(True)]
    if segment.channels:
        conditions.append(Identity.channel.in_(segment.channels))
    if unpushable:
        conditions.append(Identity.channel.not_in(list(unpushable)))
    rows = await session.execute(
        select(Identity.person_id, Identity.channel, Identity.address, Person.locale)
        .join(Person, Person.id == Identity.person_id)
        .where(*conditions)
        .order_by(Identity.person_id, Identity.last_seen_at.desc(), Identity.id.desc())
    )
    chosen: dict[int, Target] = {}
    for r in rows:
        chosen.setdefault(r.person_id, Target(r.person_id, r.channel, r.address, r.locale))
    return [chosen[i] for i in ids if i in chosen]


def _dialect(session: AsyncSession) -> str:
    bind = session.bind
    assert bind is not None, "a session bound to an engine"
    return str(bind.dialect.name)


class CampaignRepository:
    """Used inside a unit of work: ``uow.repo(CampaignRepository)``."""

    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _pg(self) -> bool:
        return bool(_dialect(self.session) == "postgresql")

    # --- surveys ---------------------------------------------------------------------
    async def add_survey(self, **values: Any) -> int | None:
        """The new id, or None when the slug is taken."""
        stmt = (
            insert_for(self.session, Survey.__table__)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["slug"])
            .returning(Survey.__table__.c.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def survey(self, survey_id: int, *, for_update: bool = False) -> Survey | None:
        stmt = select(Survey).where(Survey.id == survey_id)
        if for_update and self._pg:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def invite(self, survey_id: int, person_ids: set[int], now: datetime) -> None:
        """These people may answer the targeted survey (a second push changes nothing)."""
        for person_id in sorted(person_ids):
            await self.session.execute(
                insert_for(self.session, SurveyInvitation.__table__)
                .values(survey_id=survey_id, person_id=person_id, created_at=now)
                .on_conflict_do_nothing(index_elements=["survey_id", "person_id"])
            )

    async def invited(self, survey_id: int, person_id: int) -> bool:
        found = await self.session.execute(
            select(SurveyInvitation.person_id).where(
                SurveyInvitation.survey_id == survey_id, SurveyInvitation.person_id == person_id
            )
        )
        return found.first() is not None

    async def claim_participation(self, survey_id: int, voter_key: str) -> bool:
        """True for the first ballot of this voter: the database decides, once."""
        stmt = (
            insert_for(self.session, Participation.__table__)
            .values(survey_id=survey_id, voter_key=voter_key, ballot_id=None)
            .on_conflict_do_nothing(index_elements=["survey_id", "voter_key"])
            .returning(Participation.__table__.c.voter_key)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def participation_ballot(self, survey_id: int, voter_key: str) -> int | None:
        return (
            await self.session.execute(
                select(Participation.ballot_id).where(
                    Participation.survey_id == survey_id, Participation.voter_key == voter_key
                )
            )
        ).scalar_one_or_none()

    async def participated(self, survey_id: int, voter_keys: Sequence[str]) -> set[str]:
        if not voter_keys:
            return set()
        rows = await self.session.execute(
            select(Participation.voter_key).where(
                Participation.survey_id == survey_id, Participation.voter_key.in_(voter_keys)
            )
        )
        return {str(r) for r in rows.scalars()}

    async def add_ballot(
        self,
        *,
        survey_id: int,
        answers: dict[str, Any],
        person_id: int | None,
        channel: str | None,
        at: datetime | None,
        voter_key: str | None,
    ) -> int:
        ballot = Ballot(
            survey_id=survey_id, answers=answers, person_id=person_id, channel=channel, cast_at=at
        )
        self.session.add(ballot)
        await self.session.flush()
        if voter_key is not None:  # identified: remember which ballot a change replaces
            await self.session.execute(
                update(Participation)
                .where(Participation.survey_id == survey_id, Participation.voter_key == voter_key)
                .values(ballot_id=ballot.id)
            )
        await self.session.execute(
            update(Survey)
            .where(Survey.id == survey_id)
            .values(ballot_count=Survey.ballot_count + 1)
        )
        return ballot.id

    async def change_ballot(
        self, ballot_id: int, answers: dict[str, Any], channel: str, at: datetime
    ) -> None:
        await self.session.execute(
            update(Ballot)
            .where(Ballot.id == ballot_id)
            .values(answers=answers, channel=channel, cast_at=at)
        )

    async def set_survey_status(
        self, survey_id: int, *, from_status: str, to_status: str, **values: Any
    ) -> bool:
        result = await self.session.execute(
            update(Survey)
            .where(Survey.id == survey_id, Survey.status == from_status)
            .values(status=to_status, **values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def person_ids(self, *, after: int, limit: int) -> list[int]:
        rows = await self.session.execute(
            select(Person.id)
            .where(Person.id > after, Person.erased_at.is_(None))
            .order_by(Person.id)
            .limit(limit)
        )
        return [int(r) for r in rows.scalars()]

    # --- consent and topics ----------------------------------------------------------
    async def consent(self, person_id: int) -> bool | None:
        return (
            await self.session.execute(
                select(ConsentState.opted_in).where(ConsentState.person_id == person_id)
            )
        ).scalar_one_or_none()

    async def record_consent(
        self, *, person_id: int, opted_in: bool, channel: str, source: str, now: datetime
    ) -> None:
        upsert = insert_for(self.session, ConsentState.__table__).values(
            person_id=person_id, opted_in=opted_in, updated_at=now
        )
        await self.session.execute(
            upsert.on_conflict_do_update(
                index_elements=["person_id"],
                set_={"opted_in": opted_in, "updated_at": now},
            )
        )
        self.session.add(
            ConsentEvent(
                person_id=person_id,
                action="opt_in" if opted_in else "opt_out",
                channel=channel,
                source=source[:200],
                created_at=now,
            )
        )

    async def set_subscription(
        self, *, person_id: int, kind: str, topic: str, on: bool, now: datetime
    ) -> bool:
        if on:
            stmt = (
                insert_for(self.session, Subscription.__table__)
                .values(person_id=person_id, kind=kind, topic=topic, created_at=now)
                .on_conflict_do_nothing()
                .returning(Subscription.__table__.c.topic)
            )
            return (await self.session.execute(stmt)).scalar_one_or_none() is not None
        from sqlalchemy import delete

        result = await self.session.execute(
            delete(Subscription).where(
                Subscription.person_id == person_id,
                Subscription.kind == kind,
                Subscription.topic == topic,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # --- pushes ----------------------------------------------------------------------
    async def add_push(self, **values: Any) -> int:
        push = Push(**values)
        self.session.add(push)
        await self.session.flush()
        return push.id

    async def push(self, push_id: int, *, for_update: bool = False) -> Push | None:
        stmt = select(Push).where(Push.id == push_id)
        if for_update and self._pg:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def targets(
        self, segment: Segment, *, after: int, limit: int, unpushable: Sequence[str] = ()
    ) -> list[Target]:
        return await pick_targets(
            self.session, segment, after=after, limit=limit, unpushable=unpushable
        )

    # --- the push's deliveries (rows of the shared outbox) ---------------------------
    async def move_deliveries(
        self,
        *,
        push_id: int | None = None,
        person_id: int | None = None,
        from_status: Sequence[str],
        to_status: str,
        **values: Any,
    ) -> int:
        conditions = [Delivery.status.in_(from_status), Delivery.kind == "push"]
        if push_id is not None:
            conditions.append(Delivery.push_id == push_id)
        if person_id is not None:
            conditions.append(Delivery.person_id == person_id)
        result = await self.session.execute(
            update(Delivery).where(and_(*conditions)).values(status=to_status, **values)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def defer_pushes(self, until: datetime) -> int:
        """Quiet hours: push deliveries due before ``until`` wait until then."""
        result = await self.session.execute(
            update(Delivery)
            .where(
                Delivery.status == "pending",
                Delivery.kind == "push",
                Delivery.next_attempt_at < until,
            )
            .values(next_attempt_at=until)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def open_deliveries(self, push_id: int) -> int:
        return int(
            (
                await self.session.execute(
                    select(func.count(Delivery.id)).where(
                        Delivery.push_id == push_id, Delivery.status.in_(OPEN_DELIVERY)
                    )
                )
            ).scalar_one()
        )
