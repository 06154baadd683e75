"""What we hold about one person, read-only, for "내 정보" and its JSON download (PIPA Art. 35).

``my_data(db, person_id)`` returns plain JSON-ready data: identities, proposals, comments,
supports, follows, identified ballots, the consent ledger and topic subscriptions. Anonymous
ballots are not in it: nothing ties them to the person (that is the point).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select

from core.adapters.db import Database
from core.adapters.orm import Feedback, Follow, Identity, Person, Proposal, Support
from core.adapters.orm_campaigns import Ballot, ConsentEvent, Subscription, Survey

__all__ = ["my_data", "to_json"]


def _at(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def my_data(db: Database, person_id: int) -> dict[str, Any] | None:
    """Everything held about ``person_id`` (None when unknown or erased)."""
    async with db.read() as session:
        person = await session.get(Person, person_id)
        if person is None or person.erased_at is not None:
            return None
        identities = (await session.execute(
            select(Identity).where(Identity.person_id == person_id).order_by(Identity.id)
        )).scalars().all()
        proposals = (await session.execute(
            select(Proposal).where(Proposal.author_id == person_id).order_by(Proposal.id)
        )).scalars().all()
        comments = (await session.execute(
            select(Proposal.tracking, Feedback.body, Feedback.created_at)
            .join(Proposal, Proposal.id == Feedback.proposal_id)
            .where(Feedback.person_id == person_id)
            .order_by(Feedback.id)
        )).all()
        supports = (await session.execute(
            select(Proposal.tracking, Support.created_at)
            .join(Proposal, Proposal.id == Support.proposal_id)
            .where(Support.person_id == person_id)
            .order_by(Proposal.id)
        )).all()
        follows = (await session.execute(
            select(Proposal.tracking, Follow.created_at)
            .join(Proposal, Proposal.id == Follow.proposal_id)
            .where(Follow.person_id == person_id)
            .order_by(Proposal.id)
        )).all()
        ballots = (await session.execute(
            select(Survey.slug, Survey.title, Ballot.answers, Ballot.cast_at)
            .join(Survey, Survey.id == Ballot.survey_id)
            .where(Ballot.person_id == person_id)
            .order_by(Ballot.id)
        )).all()
        consents = (await session.execute(
            select(ConsentEvent).where(ConsentEvent.person_id == person_id)
            .order_by(ConsentEvent.id)
        )).scalars().all()
        subscriptions = (await session.execute(
            select(Subscription).where(Subscription.person_id == person_id)
            .order_by(Subscription.kind, Subscription.topic)
        )).scalars().all()
    return {
        "person": {"locale": person.locale, "since": _at(person.created_at)},
        "identities": [
            {"channel": i.channel, "display_name": i.display_name, "since": _at(i.created_at),
             "last_seen": _at(i.last_seen_at)}
            for i in identities
        ],
        "proposals": [
            {"tracking": p.tracking, "title": p.title, "body": p.body, "category": p.category,
             "region": p.region, "status": p.status, "submitted": _at(p.created_at)}
            for p in proposals
        ],
        "comments": [{"tracking": t, "body": b, "at": _at(at)} for t, b, at in comments],
        "supports": [{"tracking": t, "at": _at(at)} for t, at in supports],
        "follows": [{"tracking": t, "at": _at(at)} for t, at in follows],
        "ballots": [
            {"survey": slug, "title": title, "answers": answers, "at": _at(at)}
            for slug, title, answers, at in ballots
        ],
        "consents": [
            {"action": c.action, "channel": c.channel, "at": _at(c.created_at)} for c in consents
        ],
        "subscriptions": [{"kind": s.kind, "topic": s.topic} for s in subscriptions],
    }


def to_json(data: dict[str, Any]) -> bytes:
    """The download: UTF-8 JSON, Korean kept readable."""
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
