"""Tell the people who care: status changes, answers and assignments become deliveries.

Runs inside the transaction that made the change, so a change and its notifications commit
together. Each delivery's key names the change and the recipient, so nothing is sent twice.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from core import events as e
from core.delivery import DeliveryRepository
from core.domain.model import ProposalStatus
from core.i18n import t
from core.messagebus import MessageBus
from core.messages import Choice, Reply, ReplyKind
from core.unit_of_work import UnitOfWork

__all__ = ["register"]


def _buttons(tracking: str, locale: str) -> tuple[Choice, ...]:
    return (
        Choice(id=f"p:{tracking}:show", label=t("notify.show", locale)),
        Choice(id=f"p:{tracking}:unfollow", label=t("notify.unfollow", locale)),
    )


async def _fan_out(
    uow: UnitOfWork, proposal_id: int, key: str, render, *, skip: set[int] | None = None  # type: ignore[no-untyped-def]
) -> int:
    audience = await uow.proposals.audience(proposal_id)
    if skip:
        audience -= skip
    deliveries = uow.repo(DeliveryRepository)
    count = 0
    for recipient in await uow.persons.recipients(audience):
        reply = render(recipient.locale)
        queued = await deliveries.enqueue(
            dedupe_key=f"{key}:{recipient.channel}:{recipient.address}",
            channel=recipient.channel,
            address=recipient.address,
            reply=reply,
            person_id=recipient.person_id,
            now=uow.now(),
        )
        count += int(queued)
    return count


async def on_status_changed(event: e.StatusChanged, uow: UnitOfWork) -> None:
    proposal = await uow.proposals.get_by_id(event.proposal_id)
    assert proposal is not None

    def render(locale: str) -> Reply:
        text = t(
            "notify.status_changed",
            locale,
            tracking=event.tracking,
            title=proposal.title,
            old=t(f"status.{event.from_status.value}", locale),
            new=t(f"status.{event.to_status.value}", locale),
            reason=event.reason,
        )
        if event.expected_date:
            text += "\n" + t("notify.expected_date", locale, date=event.expected_date.isoformat())
        return Reply(
            text=text,
            choices=_buttons(event.tracking, locale),
            kind=ReplyKind.NOTIFICATION,
            meta={"tracking": event.tracking, "event": "status_changed"},
        )

    await _fan_out(uow, event.proposal_id, f"status:{event.proposal_id}:{event.version}", render)


async def on_answered(event: e.ProposalAnswered, uow: UnitOfWork) -> None:
    proposal = await uow.proposals.get_by_id(event.proposal_id)
    assert proposal is not None
    from core.adapters.orm import Feedback

    feedback = await uow.session.get(Feedback, event.feedback_id)
    body = feedback.body if feedback is not None else ""

    def render(locale: str) -> Reply:
        return Reply(
            text=t("notify.answered", locale, tracking=event.tracking, title=proposal.title,
                   body=body),
            choices=_buttons(event.tracking, locale),
            kind=ReplyKind.NOTIFICATION,
            meta={"tracking": event.tracking, "event": "answered"},
        )

    await _fan_out(uow, event.proposal_id, f"answer:{event.feedback_id}", render)


async def on_assigned(event: e.ProposalAssigned, uow: UnitOfWork) -> None:
    proposal = await uow.proposals.get_by_id(event.proposal_id)
    assert proposal is not None
    # Only the author hears about an assignment; supporters wait for a decision.
    others = (await uow.proposals.audience(event.proposal_id)) - {proposal.author_id}

    def render(locale: str) -> Reply:
        return Reply(
            text=t("notify.assigned", locale, tracking=event.tracking, title=proposal.title,
                   assignee=event.assignee),
            choices=_buttons(event.tracking, locale),
            kind=ReplyKind.NOTIFICATION,
            meta={"tracking": event.tracking, "event": "assigned"},
        )

    key = f"assign:{event.proposal_id}:{event.assignee}"
    await _fan_out(uow, event.proposal_id, key, render, skip=others)


def register(bus: MessageBus, *, wake, confirm_first: bool = False) -> None:  # type: ignore[no-untyped-def]
    """``wake`` is called after commit so the delivery workers start at once.

    ``confirm_first`` (a forum is the system of record): a status change made here (Slack, the
    CLI, the support threshold) is told to citizens only once the forum has accepted it (the
    sync relay calls ``on_status_changed`` then), so nobody hears of a change the forum undoes.
    """

    async def status_changed(event: e.StatusChanged, uow: UnitOfWork) -> None:
        if confirm_first and event.source != "forum":
            return
        await on_status_changed(event, uow)

    bus.in_transaction(e.StatusChanged, status_changed)
    bus.in_transaction(e.ProposalAnswered, on_answered)
    bus.in_transaction(e.ProposalAssigned, on_assigned)

    async def _wake(_event: object) -> None:
        wake()

    for kind in (e.StatusChanged, e.ProposalAnswered, e.ProposalAssigned):
        bus.after_commit(kind, _wake)


async def confirm_status(uow: UnitOfWork, item: Any, *, forum_version: int) -> None:
    """The forum accepted a status change made here (a sync outbox row of kind ``status``):
    remember its version (so the forum's echo of it is recognised) and tell citizens now."""
    payload = item.payload
    proposal = await uow.proposals.get_by_id(item.proposal_id)
    if proposal is None:
        return
    if forum_version > proposal.status_version:
        proposal.status_version = forum_version
    if proposal.status != payload["status"]:  # moved on since: the later change tells its own
        return
    expected = payload.get("expected_date")
    await on_status_changed(
        e.StatusChanged(
            proposal_id=item.proposal_id,
            tracking=item.tracking,
            from_status=ProposalStatus(payload["from_status"]),  # every status row has one
            to_status=ProposalStatus(payload["status"]),
            reason=payload.get("reason") or "",
            expected_date=date.fromisoformat(expected) if expected else None,
            actor=str(payload.get("actor") or ""),
            source=str(payload.get("source") or ""),
            version=int(payload["version"]),
        ),
        uow,
    )
