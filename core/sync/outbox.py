"""The outbox writers: in-transaction subscribers that queue each citizen action for the forum."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from core import events as e
from core.adapters.orm import Feedback
from core.messagebus import MessageBus
from core.privacy.events import PersonErased
from core.sync.repository import SyncRepository
from core.unit_of_work import UnitOfWork

__all__ = ["AuthorRefs", "register"]

AUTHOR_PREFIX = "gongnon:"


class AuthorRefs:
    """Pseudonymous, stable author references: never a name, a chat id or a person id."""

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        self._key = key.encode("utf-8")

    def __call__(self, person_id: int | None) -> str:
        if person_id is None:
            return AUTHOR_PREFIX + "anonymous"
        digest = hmac.new(self._key, f"person:{person_id}".encode(), hashlib.sha256)
        return AUTHOR_PREFIX + digest.hexdigest()[:24]


def _key(kind: str, *parts: object) -> str:
    return "gongnon:" + ":".join([kind, *(str(p) for p in parts)])


def register(bus: MessageBus, *, author_ref: Callable[[int | None], str]) -> None:
    """Queue an outbox row in the same transaction as each action the forum must hear of."""

    async def on_submitted(event: e.ProposalSubmitted, uow: UnitOfWork) -> None:
        proposal = await uow.proposals.get_by_id(event.proposal_id)
        assert proposal is not None
        await uow.repo(SyncRepository).enqueue(
            kind="create",
            proposal_id=event.proposal_id,
            tracking=event.tracking,
            idempotency_key=_key("create", event.tracking),
            payload={
                "title": proposal.title,
                "body": proposal.body,
                "category": proposal.category,
                "region": proposal.region,
                "author_ref": author_ref(event.person_id),
                "created_at": proposal.created_at.isoformat(),
            },
            now=uow.now(),
        )

    async def on_supported(event: e.ProposalSupported, uow: UnitOfWork) -> None:
        await uow.repo(SyncRepository).enqueue(
            kind="support",
            proposal_id=event.proposal_id,
            tracking=event.tracking,
            idempotency_key=_key("support", event.tracking, author_ref(event.person_id)[8:]),
            payload={"author_ref": author_ref(event.person_id)},
            now=uow.now(),
            ref_id=event.person_id,
        )

    async def on_feedback(event: e.FeedbackAdded, uow: UnitOfWork) -> None:
        if event.from_forum:  # it came from the forum: nothing to send back
            return
        feedback = await uow.session.get(Feedback, event.feedback_id)
        assert feedback is not None
        await uow.repo(SyncRepository).enqueue(
            kind="feedback",
            proposal_id=event.proposal_id,
            tracking=event.tracking,
            idempotency_key=_key("feedback", event.feedback_id),
            payload={"body": feedback.body, "author_ref": author_ref(event.person_id)},
            now=uow.now(),
            ref_id=event.feedback_id,
        )

    async def on_withdrawn(event: e.ProposalWithdrawn, uow: UnitOfWork) -> None:
        await uow.repo(SyncRepository).enqueue(
            kind="withdraw",
            proposal_id=event.proposal_id,
            tracking=event.tracking,
            idempotency_key=_key("withdraw", event.tracking),
            payload={"author_ref": author_ref(event.person_id)},
            now=uow.now(),
        )

    async def on_status_changed(event: e.StatusChanged, uow: UnitOfWork) -> None:
        if event.source == "forum":  # the forum's own change: nothing to send back
            return
        await uow.repo(SyncRepository).enqueue(
            kind="status",
            proposal_id=event.proposal_id,
            tracking=event.tracking,
            idempotency_key=_key("status", event.tracking, event.version),
            payload={
                "status": event.to_status.value,
                "from_status": event.from_status.value if event.from_status else None,
                "reason": event.reason,
                "expected_date": event.expected_date.isoformat() if event.expected_date else None,
                "version": event.version,
                "actor": event.actor,
                "source": event.source,
            },
            now=uow.now(),
        )

    bus.in_transaction(e.StatusChanged, on_status_changed)
    async def on_erased(event: PersonErased, uow: UnitOfWork) -> None:
        # One row per proposal the person wrote, commented on or supported; the key makes a
        # second erasure (or a retried transaction) queue nothing more.
        ref = author_ref(event.person_id)
        for proposal_id, tracking in event.touched:
            await uow.repo(SyncRepository).enqueue(
                kind="anonymise",
                proposal_id=proposal_id,
                tracking=tracking,
                idempotency_key=_key("anonymise", tracking, ref[len(AUTHOR_PREFIX):]),
                payload={"author_ref": ref},
                now=uow.now(),
            )

    bus.in_transaction(e.ProposalSubmitted, on_submitted)
    bus.in_transaction(PersonErased, on_erased)
    bus.in_transaction(e.ProposalSupported, on_supported)
    bus.in_transaction(e.FeedbackAdded, on_feedback)
    bus.in_transaction(e.ProposalWithdrawn, on_withdrawn)
