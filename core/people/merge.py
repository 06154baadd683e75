"""Joining two people into one: all of ``merged`` moves to ``survivor``, nothing counts twice.

Runs inside one write transaction (the caller's unit of work), so a merge is all or nothing.
What a person can have once per thing keeps the *earliest* of the two: one support per proposal,
one follow, one 공감 per opinion, one vote per statement, one ballot per survey. Counters kept
on rows (``proposals.support_count``, ``follower_count``, ``feedback.support_count``,
``surveys.ballot_count``) lose exactly the duplicates removed.

Anonymous ballots carry no person by design: the participation key is an HMAC of the person
under the survey's salt (``core.campaigns.handlers.voter_key``). The merge re-keys the merged
person's participation to the survivor's key, so one person can never vote again. When *both*
had already voted in the same anonymous survey, the two ballots cannot be told apart from the
others without breaking the anonymity promised when they were cast: the second participation
row is removed, and the merge record and ``gongnon people merge-report`` count it
(``anonymous_duplicates``) so an official sees it; it cannot happen at the default
participation level between a web guest and a messenger (guests cannot vote), only between two
messenger accounts that both voted before linking.

Tables added later that point at ``persons.id`` are moved too (a generic pass; rows that
would collide stay with the emptied person), so a new feature's data is never silently lost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from core.adapters.orm import Base, Feedback, Follow, Identity, Person, Proposal, Support
from core.adapters.orm_campaigns import (
    Ballot,
    ConsentEvent,
    ConsentState,
    Participation,
    Subscription,
    Survey,
    SurveyInvitation,
)
from core.adapters.orm_deliberation import (
    DiscussionAlias,
    OpinionSupport,
    Statement,
    StatementVote,
)
from core.adapters.orm_people import LinkAttempt, LinkCode, PersonMerge
from core.campaigns.handlers import voter_key
from core.people.model import MergeSummary

__all__ = ["MergeSummary", "merge_people"]


async def _moved(session: Any, stmt: Any) -> int:
    return int((await session.execute(stmt)).rowcount or 0)


async def _pairs(
    session: Any, model: Any, key: Any, survivor: int, merged: int
) -> list[tuple[Any, datetime | None, datetime | None]]:
    """Things both people have (same ``key``): (key, survivor's time, merged one's time)."""
    mine = select(key.label("k"), model.created_at.label("at")).where(
        model.person_id == survivor
    ).subquery()
    theirs = select(key.label("k"), model.created_at.label("at")).where(
        model.person_id == merged
    ).subquery()
    rows = await session.execute(
        select(mine.c.k, mine.c.at, theirs.c.at).join(theirs, mine.c.k == theirs.c.k)
    )
    return [(r[0], r[1], r[2]) for r in rows]


async def _once_per(
    session: Any, model: Any, key_col: str, survivor: int, merged: int
) -> tuple[list[Any], int]:
    """Keep the earliest of each pair (the survivor's row takes the earlier time), drop the
    merged person's duplicate, move the rest. Returns (keys of dropped duplicates, moved)."""
    key = getattr(model, key_col)
    pairs = await _pairs(session, model, key, survivor, merged)
    for k, mine_at, theirs_at in pairs:
        if theirs_at is not None and (mine_at is None or theirs_at < mine_at):
            await session.execute(
                update(model).where(model.person_id == survivor, key == k)
                .values(created_at=theirs_at)
            )
    dropped = [k for k, _, _ in pairs]
    if dropped:
        await session.execute(
            delete(model).where(model.person_id == merged, key.in_(dropped))
        )
    moved = await _moved(
        session, update(model).where(model.person_id == merged).values(person_id=survivor)
    )
    return dropped, moved


async def _recount(session: Any, table: Any, count_col: str, ids: list[int]) -> None:
    """Counters kept on rows lose one per dropped duplicate."""
    for row_id in ids:
        await session.execute(
            update(table).where(table.id == row_id)
            .values({count_col: func.max(getattr(table, count_col) - 1, 0)}
                    if session.bind.dialect.name == "sqlite"
                    else {count_col: func.greatest(getattr(table, count_col) - 1, 0)})
        )


async def _ballots(session: Any, survivor: int, merged: int, s: MergeSummary) -> None:
    # Identified ballots (person on the row): one per survey, the earliest.
    mine = select(Ballot.survey_id, Ballot.id, Ballot.cast_at).where(Ballot.person_id == survivor)
    theirs = {
        r.survey_id: r for r in await session.execute(
            select(Ballot.survey_id, Ballot.id, Ballot.cast_at).where(Ballot.person_id == merged)
        )
    }
    for r in await session.execute(mine):
        other = theirs.get(r.survey_id)
        if other is None:
            continue
        keep_theirs = (other.cast_at is not None and r.cast_at is not None
                       and other.cast_at < r.cast_at)
        drop_id = r.id if keep_theirs else other.id
        keep_id = other.id if keep_theirs else r.id
        await session.execute(delete(Ballot).where(Ballot.id == drop_id))
        await session.execute(
            update(Participation).where(Participation.ballot_id == drop_id)
            .values(ballot_id=keep_id)
        )
        await _recount(session, Survey, "ballot_count", [r.survey_id])
        s.ballots_dropped += 1
    s.ballots = await _moved(
        session, update(Ballot).where(Ballot.person_id == merged).values(person_id=survivor)
    )
    # Participation keys of open surveys: re-keyed to the survivor, one per survey.
    surveys = await session.execute(
        select(Survey.id, Survey.voter_salt, Survey.anonymous).where(Survey.voter_salt.is_not(None))
    )
    for survey_id, salt, anonymous in surveys:
        old = voter_key(salt, survey_id, merged)
        new = voter_key(salt, survey_id, survivor)
        had_old = (await session.execute(
            select(Participation.voter_key).where(
                Participation.survey_id == survey_id, Participation.voter_key == old)
        )).scalar_one_or_none()
        if had_old is None:
            continue
        had_new = (await session.execute(
            select(Participation.voter_key).where(
                Participation.survey_id == survey_id, Participation.voter_key == new)
        )).scalar_one_or_none()
        if had_new is None:
            await session.execute(
                update(Participation).where(
                    Participation.survey_id == survey_id, Participation.voter_key == old)
                .values(voter_key=new)
            )
            continue
        await session.execute(
            delete(Participation).where(
                Participation.survey_id == survey_id, Participation.voter_key == old)
        )
        if anonymous:
            s.anonymous_duplicates += 1


async def _consent(session: Any, survivor: int, merged: int, s: MergeSummary) -> None:
    """The latest decision of either stands; the ledger keeps every event of both."""
    theirs = await session.get(ConsentState, merged)
    if theirs is not None:
        mine = await session.get(ConsentState, survivor)
        if mine is None:
            await session.execute(
                update(ConsentState).where(ConsentState.person_id == merged)
                .values(person_id=survivor)
            )
        else:
            if theirs.updated_at > mine.updated_at:
                mine.opted_in = theirs.opted_in
                mine.updated_at = theirs.updated_at
            await session.delete(theirs)
        s.consent = True
    await session.execute(
        update(ConsentEvent).where(ConsentEvent.person_id == merged).values(person_id=survivor)
    )


_HANDLED = {
    Identity.__table__, Proposal.__table__, Feedback.__table__, Follow.__table__,
    Support.__table__, OpinionSupport.__table__, StatementVote.__table__,
    DiscussionAlias.__table__, Statement.__table__, Ballot.__table__, ConsentState.__table__,
    ConsentEvent.__table__, Subscription.__table__, LinkCode.__table__, LinkAttempt.__table__,
    PersonMerge.__table__, SurveyInvitation.__table__,
}


async def _others(session: Any, survivor: int, merged: int, s: MergeSummary) -> None:
    """Any other table pointing at persons.id: move what does not collide."""
    for table in Base.metadata.sorted_tables:
        if table in _HANDLED:
            continue
        for column in table.columns:
            if not any(fk.column.table.name == "persons" for fk in column.foreign_keys):
                continue
            try:
                async with session.begin_nested():
                    moved = await _moved(
                        session,
                        table.update().where(column == merged).values({column.name: survivor}),
                    )
            except IntegrityError:
                continue
            if moved:
                s.other[f"{table.name}.{column.name}"] = moved


async def merge_people(
    session: Any, *, survivor: int, merged: int, channel: str, now: datetime
) -> MergeSummary:
    """Move everything of ``merged`` to ``survivor``; record the merge; return the summary."""
    s = MergeSummary(survivor_id=survivor, merged_id=merged)
    s.identities = await _moved(
        session, update(Identity).where(Identity.person_id == merged).values(person_id=survivor)
    )
    s.proposals = await _moved(
        session, update(Proposal).where(Proposal.author_id == merged).values(author_id=survivor)
    )
    s.opinions = await _moved(
        session, update(Feedback).where(Feedback.person_id == merged).values(person_id=survivor)
    )
    await session.execute(
        update(Statement).where(Statement.person_id == merged).values(person_id=survivor)
    )
    dropped, s.supports = await _once_per(session, Support, "proposal_id", survivor, merged)
    s.supports_dropped = len(dropped)
    await _recount(session, Proposal, "support_count", dropped)
    dropped, s.follows = await _once_per(session, Follow, "proposal_id", survivor, merged)
    await _recount(session, Proposal, "follower_count", dropped)
    dropped, s.opinion_supports = await _once_per(
        session, OpinionSupport, "feedback_id", survivor, merged
    )
    s.opinion_supports_dropped = len(dropped)
    await _recount(session, Feedback, "support_count", dropped)
    # 공감 on one's own opinion (the other identity wrote it) does not count either.
    own = list((await session.execute(
        select(OpinionSupport.feedback_id).join(
            Feedback, Feedback.id == OpinionSupport.feedback_id
        ).where(OpinionSupport.person_id == survivor, Feedback.person_id == survivor)
    )).scalars())
    if own:
        await session.execute(delete(OpinionSupport).where(
            OpinionSupport.person_id == survivor, OpinionSupport.feedback_id.in_(own)))
        await _recount(session, Feedback, "support_count", own)
        s.opinion_supports_dropped += len(own)
    dropped, s.statement_votes = await _once_per(
        session, StatementVote, "statement_id", survivor, merged
    )
    s.statement_votes_dropped = len(dropped)
    # Pseudonyms: where both had one on a proposal, the survivor's stays.
    both = select(DiscussionAlias.proposal_id).where(DiscussionAlias.person_id == survivor)
    await session.execute(delete(DiscussionAlias).where(
        DiscussionAlias.person_id == merged, DiscussionAlias.proposal_id.in_(both)))
    await session.execute(
        update(DiscussionAlias).where(DiscussionAlias.person_id == merged)
        .values(person_id=survivor)
    )
    await _ballots(session, survivor, merged, s)
    # targeted surveys sent to either may be answered by the one person (once: one ballot)
    await session.execute(delete(SurveyInvitation).where(
        SurveyInvitation.person_id == merged,
        SurveyInvitation.survey_id.in_(select(SurveyInvitation.survey_id).where(
            SurveyInvitation.person_id == survivor)),
    ))
    await session.execute(
        update(SurveyInvitation).where(SurveyInvitation.person_id == merged)
        .values(person_id=survivor)
    )
    mine_topics = select(Subscription.kind, Subscription.topic).where(
        Subscription.person_id == survivor
    )
    existing = {(k, t) for k, t in await session.execute(mine_topics)}
    for kind, topic in list(await session.execute(
        select(Subscription.kind, Subscription.topic).where(Subscription.person_id == merged)
    )):
        if (kind, topic) in existing:
            await session.execute(delete(Subscription).where(and_(
                Subscription.person_id == merged, Subscription.kind == kind,
                Subscription.topic == topic)))
    s.subscriptions = await _moved(
        session,
        update(Subscription).where(Subscription.person_id == merged).values(person_id=survivor),
    )
    await _consent(session, survivor, merged, s)
    await _verified(session, survivor, merged)
    await session.execute(delete(LinkCode).where(LinkCode.person_id == merged))
    await session.execute(delete(LinkAttempt).where(LinkAttempt.person_id == merged))
    await _others(session, survivor, merged, s)
    session.add(PersonMerge(survivor_id=survivor, merged_id=merged, channel=channel,
                            summary=s.as_dict(), created_at=now))
    await session.flush()
    return s


async def _verified(session: Any, survivor: int, merged: int) -> None:
    """A verification of either person holds for the one person (the earliest)."""
    column = getattr(Person, "verified_at", None)
    if column is None:
        return
    theirs = (await session.execute(select(column).where(Person.id == merged))).scalar()
    if theirs is None:
        return
    mine = (await session.execute(select(column).where(Person.id == survivor))).scalar()
    if mine is None or theirs < mine:
        await session.execute(update(Person).where(Person.id == survivor)
                              .values(verified_at=theirs))
