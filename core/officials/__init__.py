"""Officials in Slack, core side: triage cards queued with each change, audited actions, digests.

``install(core)`` registers the subscribers that keep the officials' board in step with every
proposal (whoever changed it: Slack, the forum, the CLI, a citizen) and the digest jobs; the
Slack mount attaches its board with ``core.officials.attach_board(board)``.
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from core import events as e
from core.deliberation.events import SupportThresholdReached
from core.kernel import Kernel
from core.officials.model import (
    Alert,
    Board,
    Digest,
    DiscussionAlert,
    DiscussionSummaries,
    Outcome,
    PostRef,
)
from core.officials.repository import OfficialsRepository
from core.officials.service import Officials
from core.unit_of_work import UnitOfWork

__all__ = [
    "Alert",
    "Board",
    "Digest",
    "DiscussionAlert",
    "DiscussionSummaries",
    "Officials",
    "Outcome",
    "PostRef",
    "install",
]


async def _on_submitted(officials: Officials, event: e.ProposalSubmitted, uow: UnitOfWork) -> None:
    channel = officials.triage_channel
    if channel is None:
        return
    repo = uow.repo(OfficialsRepository)
    await repo.ensure_post(event.proposal_id, channel, uow.now())
    await repo.enqueue(
        kind="post", dedupe_key=f"post:{event.proposal_id}",
        payload={"tracking": event.tracking, "channel": channel},
        proposal_id=event.proposal_id, now=uow.now(),
    )


async def _on_changed(officials: Officials, event: Any, uow: UnitOfWork) -> None:
    """Any change a card shows: queue one edit (a waiting edit already covers this one)."""
    if officials.triage_channel is None:
        return
    repo = uow.repo(OfficialsRepository)
    if await repo.post_of(event.proposal_id) is None or await repo.pending(
        "update", event.proposal_id
    ):
        return
    await repo.enqueue(
        kind="update", dedupe_key=f"update:{event.proposal_id}:{uuid.uuid4().hex}",
        payload={"tracking": event.tracking}, proposal_id=event.proposal_id, now=uow.now(),
    )


async def _on_feedback(officials: Officials, event: Any, uow: UnitOfWork) -> None:
    """New feedback (or an official's answer) joins the card's thread once it is open."""
    if officials.triage_channel is None:
        return
    repo = uow.repo(OfficialsRepository)
    if not await repo.thread_open(event.proposal_id):
        return
    await repo.enqueue(
        kind="reply", dedupe_key=f"reply:{event.proposal_id}:{event.feedback_id}",
        payload={"tracking": event.tracking, "feedback_id": event.feedback_id},
        proposal_id=event.proposal_id, now=uow.now(),
    )


async def _on_dead_letter(
    officials: Officials, event: e.SyncDeadLettered, uow: UnitOfWork
) -> None:
    channel = officials.triage_channel
    if channel is None:
        return
    await uow.repo(OfficialsRepository).enqueue(
        kind="alert",
        dedupe_key=f"alert:{event.kind}:{event.tracking}:{event.attempts}:{uuid.uuid4().hex[:8]}",
        payload={"channel": channel, "kind": event.kind, "tracking": event.tracking,
                 "attempts": event.attempts, "error": event.error[:500]},
        now=uow.now(),
    )


async def _on_threshold(
    officials: Officials, event: SupportThresholdReached, uow: UnitOfWork
) -> None:
    """The proposal moved to review on its supports: alert officials with its discussion (the
    summary is read when the row is sent, so it is as fresh as the alert)."""
    channel = officials.triage_channel
    if channel is None:
        return
    await uow.repo(OfficialsRepository).enqueue(
        kind="discussion", dedupe_key=f"threshold:{event.proposal_id}",
        payload={"channel": channel, "tracking": event.tracking,
                 "support_count": event.support_count, "threshold": event.threshold},
        now=uow.now(),
    )


_CARD_EVENTS: tuple[type[e.Event], ...] = (
    e.StatusChanged,
    e.ProposalAssigned,
    e.ProposalAnswered,
    e.ProposalSupported,
    e.ProposalWithdrawn,
    e.FeedbackAdded,
)


def install(core: Kernel, *, discussions: DiscussionSummaries | None = None) -> Officials:
    """Card, thread and alert subscribers, digest jobs; returns the service (``core.officials``).

    ``discussions`` (``core.discussions``) gives the threshold alert and the digests each
    discussion's summary."""
    officials = Officials(core, discussions=discussions)
    bus = core.bus
    bus.in_transaction(e.ProposalSubmitted, partial(_on_submitted, officials))
    for kind in _CARD_EVENTS:
        bus.in_transaction(kind, partial(_on_changed, officials))
    bus.in_transaction(e.FeedbackAdded, partial(_on_feedback, officials))
    bus.in_transaction(e.ProposalAnswered, partial(_on_feedback, officials))
    bus.in_transaction(e.SyncDeadLettered, partial(_on_dead_letter, officials))
    bus.in_transaction(SupportThresholdReached, partial(_on_threshold, officials))

    async def wake(_event: object) -> None:
        officials.wake()

    woken: tuple[type[e.Event], ...] = (
        e.ProposalSubmitted, *_CARD_EVENTS, e.SyncDeadLettered, SupportThresholdReached,
    )
    for kind in woken:
        bus.after_commit(kind, wake)
    if officials.digest_channel is not None:
        core.scheduler.cron(
            "officials:digest:daily", partial(officials.run_digest_job, "daily"),
            hour=9, minute=0,
        )
        core.scheduler.cron(
            "officials:digest:weekly", partial(officials.run_digest_job, "weekly"),
            day_of_week="mon", hour=9, minute=0,
        )
    core.on_start(officials.start)
    core.on_stop(officials.stop)
    return officials
