""""Delete me" (PIPA Art. 36): one transaction that leaves no personal data of the person.

What happens, table by table (the column-scan test checks the result on both databases):

- ``identities``: deleted (channel user ids, addresses, display names). ``persons`` keeps the bare
  row (id, locale, dates) with ``erased_at`` set, so proposals keep a valid author id that leads
  to nobody.
- web chat: the person's ``web_sessions`` rows (the token hashes; uploads rows cascade) and their
  ``web_inbox`` messages are deleted; the upload files (ids in ``PersonErased.web_uploads``) are
  removed after commit by an erasure hook (``WebChat.delete_uploads``, see ``core.privacy``).
- ``deliveries`` to them (queued or sent: each holds their address) are deleted, so nothing more is
  sent; Slack and forum outboxes never held addresses.
- proposals stay anonymous, or open ones are withdrawn (the person's choice); ``feedback`` loses its
  ``person_id``; identified ``ballots`` lose person, channel and time, and their participation row
  its ballot link; ``statements`` lose their writer; ``follows``, ``topic_subscriptions`` and
  ``consent_states`` are deleted. ``supports``, 공감 on opinions and statement votes stay as
  pseudonymous counts (a person id that leads to nobody).
- the consent ledger keeps its rows (proof of what was agreed, Art. 22) with only the person id.
- the forum gets one ``anonymise`` outbox row per proposal the person touched (the sync feature's
  subscriber to ``PersonErased``); withdrawals go out as usual through ``ProposalWithdrawn``.
- after commit: conversation state of each identity is dropped.
"""

from __future__ import annotations

from sqlalchemy import delete, select, tuple_, update

from core import events as e
from core.adapters.orm import Feedback, Follow, Identity, Person, Proposal, Support
from core.adapters.orm_campaigns import (
    Ballot,
    ConsentState,
    Participation,
    Subscription,
)
from core.adapters.orm_deliberation import Statement
from core.adapters.orm_delivery import Delivery
from core.adapters.orm_web import WebInboxItem, WebSessionRow, WebUpload
from core.domain.errors import NotFound
from core.domain.model import ProposalStatus, check_transition
from core.privacy.commands import ErasePerson, ProposalsOnErasure
from core.privacy.events import PersonErased
from core.unit_of_work import UnitOfWork

__all__ = ["erase_person"]

WEB = "web"


async def erase_person(cmd: ErasePerson, uow: UnitOfWork) -> bool:
    session = uow.session
    now = uow.now()
    stmt = select(Person).where(Person.id == cmd.person_id)
    if session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    person = (await session.execute(stmt)).scalar_one_or_none()
    if person is None:
        raise NotFound(str(cmd.person_id))
    if person.erased_at is not None:
        return False

    identities = (
        await session.execute(select(Identity).where(Identity.person_id == person.id))
    ).scalars().all()
    pairs = [(i.channel, i.address) for i in identities]
    conversations = tuple((i.channel, i.external_id) for i in identities)
    web_sessions = tuple(i.external_id for i in identities if i.channel == WEB)

    # --- what they touched (for the forum), before links are cut --------------------------
    authored = (
        await session.execute(select(Proposal).where(Proposal.author_id == person.id))
    ).scalars().all()
    touched_ids = {p.id for p in authored}
    touched_ids |= set(
        (await session.execute(
            select(Feedback.proposal_id).where(Feedback.person_id == person.id)
        )).scalars()
    )
    touched_ids |= set(
        (await session.execute(
            select(Support.proposal_id).where(Support.person_id == person.id)
        )).scalars()
    )
    touched = tuple(
        (row.id, row.tracking)
        for row in (
            await session.execute(
                select(Proposal.id, Proposal.tracking)
                .where(Proposal.id.in_(touched_ids))
                .order_by(Proposal.id)
            )
        ).all()
    ) if touched_ids else ()

    # --- proposals: withdrawn when asked (open ones), else simply anonymous --------------------
    if cmd.proposals is ProposalsOnErasure.WITHDRAW:
        for proposal in authored:
            current = ProposalStatus(proposal.status)
            if ProposalStatus.WITHDRAWN not in _next(current):
                continue
            check_transition(current, ProposalStatus.WITHDRAWN)
            await uow.proposals.set_status(
                proposal,
                to_status=ProposalStatus.WITHDRAWN.value,
                reason="",
                expected_date=None,
                actor="person:erased",
                source="citizen",
                version=proposal.status_version + 1,
                now=now,
            )
            uow.emit(
                e.ProposalWithdrawn(
                    proposal_id=proposal.id, tracking=proposal.tracking, person_id=person.id
                )
            )

    # --- links cut, rows deleted -------------------------------------------------------------
    await session.execute(
        update(Feedback).where(Feedback.person_id == person.id).values(person_id=None)
    )
    await session.execute(
        update(Statement).where(Statement.person_id == person.id).values(person_id=None)
    )
    ballot_ids = list(
        (await session.execute(select(Ballot.id).where(Ballot.person_id == person.id))).scalars()
    )
    if ballot_ids:
        await session.execute(
            update(Participation)
            .where(Participation.ballot_id.in_(ballot_ids))
            .values(ballot_id=None)
        )
        await session.execute(
            update(Ballot)
            .where(Ballot.id.in_(ballot_ids))
            .values(person_id=None, channel=None, cast_at=None)
        )
    for table in (Follow, Subscription, ConsentState):
        await session.execute(delete(table).where(table.person_id == person.id))
    await session.execute(delete(Delivery).where(Delivery.person_id == person.id))
    if pairs:
        await session.execute(
            delete(Delivery).where(tuple_(Delivery.channel, Delivery.address).in_(pairs))
        )
    web_addresses = [address for channel, address in pairs if channel == WEB]
    if web_addresses:
        await session.execute(delete(WebInboxItem).where(WebInboxItem.address.in_(web_addresses)))
    uploads: tuple[tuple[str, str], ...] = ()
    if web_sessions:
        uploads = tuple(
            (str(i), str(ct))
            for i, ct in await session.execute(
                select(WebUpload.id, WebUpload.content_type).where(
                    WebUpload.session_id.in_(web_sessions)
                )
            )
        )
        await session.execute(delete(WebSessionRow).where(WebSessionRow.id.in_(web_sessions)))
    await session.execute(delete(Identity).where(Identity.person_id == person.id))
    person.erased_at = now
    await session.flush()
    uow.emit(
        PersonErased(
            person_id=person.id,
            touched=touched,
            conversations=conversations,
            web_sessions=web_sessions,
            web_uploads=uploads,
        )
    )
    return True


def _next(status: ProposalStatus) -> frozenset[ProposalStatus]:
    from core.domain.model import allowed_next

    return allowed_next(status)
