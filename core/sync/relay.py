"""The relay: outbox rows to the forum in order per proposal, leased, backed off, dead-lettered.

The forum outbox plugs into ``core.outbox`` (leased claims with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL and one writer on SQLite, leases renewed while held, one ``Backoff``, the shared
polling loop) with its ordering and its dispatch. Two relays never send the same row at once;
a relay that dies leaves its lease to run out and another one sends the row again with the
same ``Idempotency-Key`` (the forum answers it once).
Only the oldest unfinished row of a proposal is ever claimable, so a support or a comment waits
behind its proposal's creation, and everything behind a dead row waits for ``gongnon sync retry``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from core.adapters.db import Database
from core.notifications import confirm_status
from core.outbox import Backoff, PollingLoop
from core.ports import (
    Clock,
    ForumBackend,
    ForumConflict,
    ForumError,
    ForumProposal,
    ForumUnavailable,
    VoteRefused,
)
from core.sync.repository import Claimed, SyncRepository
from core.unit_of_work import UnitOfWork

__all__ = ["Relay"]

log = logging.getLogger(__name__)

DeadLetter = Callable[[Claimed, str, str], Awaitable[None]]  # (row, owner, error)


class _NotOnForum(ForumError):
    """The proposal never reached the forum (it predates sync): nothing to attach this to."""


class Relay:
    def __init__(
        self,
        *,
        db: Database,
        backend: ForumBackend,
        clock: Clock,
        dead_letter: DeadLetter,
        max_attempts: int,
        backoff: Backoff,
        lease_seconds: float = 60.0,
        batch: int = 20,
        name: str | None = None,
        on_conflict: Callable[[str, str, int], Awaitable[None]] | None = None,
    ) -> None:
        self.on_conflict = on_conflict  # (tracking, forum status, forum version): apply it here
        self.db = db
        self.backend = backend
        self.clock = clock
        self.dead_letter = dead_letter
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.lease = timedelta(seconds=lease_seconds)
        self.batch = batch
        self.name = name or f"relay-{uuid.uuid4().hex[:10]}"
        self.loop = PollingLoop(
            name=f"sync relay {self.name}", one_pass=self.run_once, idle_for=self._idle_for,
            renew=self._renew, lease=self.lease,
        )

    # --- one pass ------------------------------------------------------------------
    async def claim(self) -> list[Claimed]:
        async with self.db.write() as session:
            return await SyncRepository(session).claim(
                owner=self.name,
                now=self.clock.now(),
                lease=self.lease,
                batch=self.batch,
            )

    async def _renew(self, ids: list[int]) -> None:
        async with self.db.write() as session:
            await SyncRepository(session).renew(
                ids, owner=self.name, until=self.clock.now() + self.lease
            )

    async def _send(self, item: Claimed) -> str | None:
        """Call the forum for one row; returns the forum's id of what was created, if any."""
        payload = item.payload
        key = item.idempotency_key
        if item.kind == "create":
            proposal = ForumProposal(
                tracking=item.tracking,
                title=payload["title"],
                body=payload["body"],
                category=payload["category"],
                region=payload.get("region"),
                author_ref=payload["author_ref"],
                created_at=datetime.fromisoformat(payload["created_at"]).astimezone(UTC),
            )
            return await self.backend.create_proposal(proposal, idempotency_key=key)
        async with self.db.read() as session:
            forum_id = await SyncRepository(session).forum_id_of(item.proposal_id)
        if forum_id is None:
            raise _NotOnForum(f"{item.tracking} has no forum id (created before sync?)")
        if item.kind == "support":
            return await self._support(item, forum_id)
        if item.kind == "feedback":
            return await self.backend.add_feedback(
                forum_id, body=payload["body"], author_ref=payload["author_ref"],
                idempotency_key=key,
            )
        if item.kind == "withdraw":
            await self.backend.withdraw(
                forum_id, author_ref=payload["author_ref"], idempotency_key=key
            )
            return None
        if item.kind == "anonymise":
            await self.backend.anonymise(
                forum_id, author_ref=payload["author_ref"], idempotency_key=key
            )
            return None
        if item.kind == "status":
            version = await self.backend.change_status(
                forum_id,
                status=payload["status"],
                from_status=payload.get("from_status") or "",
                reason=payload.get("reason") or "",
                expected_date=payload.get("expected_date"),
                idempotency_key=key,
            )
            return str(version)
        raise ForumError(f"unknown outbox kind {item.kind!r}")

    async def _support(self, item: Claimed, forum_id: str) -> str | None:
        """A support. Where the forum votes as one user for everyone (Decidim), the first one
        is the vote and the rest are ``counted_once``. A refusal on a retry means our earlier
        attempt landed (its answer was lost): ``voted``; on a first attempt it is a refusal."""
        if getattr(self.backend, "supports_once", False):
            async with self.db.read() as session:
                if await SyncRepository(session).support_sent(item.proposal_id):
                    return "counted_once"
        try:
            note = await self.backend.add_support(
                forum_id, author_ref=item.payload["author_ref"],
                idempotency_key=item.idempotency_key,
            )
        except VoteRefused:
            if item.attempts > 1 and getattr(self.backend, "supports_once", False):
                return "voted"
            raise
        return note

    async def _record_refused(self, item: Claimed, error: str) -> str:
        """A support the forum refused for good: kept as done with the reason, so the
        proposal's later rows are not held behind it (``gongnon sync status`` counts them)."""
        async with self.db.write() as session:
            done = await SyncRepository(session).finish(
                item.id, owner=self.name, status="sent", sent_at=self.clock.now(),
                last_error=error[:500], forum_ref="refused",
            )
        return "sent" if done else "lost"

    async def _record_sent(self, item: Claimed, forum_ref: str | None) -> bool:
        uow = UnitOfWork(self.db, self.clock)
        async with uow:
            done = await uow.repo(SyncRepository).finish(
                item.id, owner=self.name, status="sent", sent_at=uow.now(), last_error=None,
                forum_ref=forum_ref,
            )
            if done and forum_ref is not None and item.kind == "create":
                await uow.proposals.set_forum_id(item.proposal_id, forum_ref)
            if done and forum_ref is not None and item.kind == "feedback" and item.ref_id:
                if not await uow.proposals.set_feedback_forum_id(item.ref_id, forum_ref):
                    log.warning("outbox %s: forum comment id already stored elsewhere", item.id)
            if done and item.kind == "status":
                await confirm_status(uow, item, forum_version=int(forum_ref or 0))
        return done

    async def _retry_later(self, item: Claimed, error: str) -> str:
        if item.attempts >= self.max_attempts:
            await self.dead_letter(item, self.name, error)
            return "dead"
        async with self.db.write() as session:
            await SyncRepository(session).finish(
                item.id,
                owner=self.name,
                status="pending",
                next_attempt_at=self.clock.now() + self.backoff.delay(item.attempts),
                last_error=error[:500],
            )
        return "pending"

    async def deliver(self, item: Claimed) -> str:
        """Send one claimed row and record the outcome; returns the row's new status."""
        try:
            forum_ref = await self._send(item)
        except ForumConflict as exc:
            return await self._conflict(item, exc)
        except VoteRefused as exc:
            log.info("outbox %s: the forum refused the support: %s", item.id, exc)
            return await self._record_refused(item, str(exc))
        except ForumUnavailable as exc:
            log.info("outbox %s (%s) attempt %s: forum unavailable: %s",
                     item.id, item.kind, item.attempts, exc)
            return await self._retry_later(item, str(exc))
        except ForumError as exc:
            log.warning("outbox %s (%s): forum refused: %s", item.id, item.kind, exc)
            await self.dead_letter(item, self.name, str(exc)[:500])
            return "dead"
        except (KeyError, TypeError, ValueError) as exc:  # a malformed row: never retried
            await self.dead_letter(item, self.name, f"malformed outbox row: {exc!r}"[:500])
            return "dead"
        if not await self._record_sent(item, forum_ref):
            log.warning("outbox %s: lease lost before recording; another relay resends", item.id)
            return "lost"
        return "sent"

    async def _conflict(self, item: Claimed, conflict: ForumConflict) -> str:
        """Both sides moved: the forum (system of record) wins. Our change is recorded as
        overtaken, the forum's status is applied here, and citizens hear only that one."""
        payload = item.payload
        uow = UnitOfWork(self.db, self.clock)
        async with uow:
            done = await uow.repo(SyncRepository).finish(
                item.id, owner=self.name, status="sent", sent_at=uow.now(),
                last_error=f"conflict: the forum has {conflict.status} v{conflict.version}",
                forum_ref=None,
            )
            if done and conflict.status == payload["status"]:  # the forum agrees already
                await confirm_status(uow, item, forum_version=conflict.version)
        if not done:
            return "lost"
        if conflict.status != payload["status"] and self.on_conflict is not None:
            log.info("outbox %s: %s on the forum overtook %s", item.id, conflict.status,
                     payload["status"])
            await self.on_conflict(item.tracking, conflict.status, conflict.version)
        return "sent"

    async def run_once(self) -> int:
        items = await self.claim()
        if items:  # one row per proposal at most: different proposals go in parallel
            self.loop.held.update(item.id for item in items)
            try:
                await asyncio.gather(*(self.deliver(item) for item in items))
            finally:
                self.loop.held.difference_update(item.id for item in items)
        return len(items)

    async def drain(self, *, max_rounds: int = 1000) -> int:
        """Run passes until nothing is due now (tests and ``gongnon sync run --once``)."""
        total = 0
        for _ in range(max_rounds):
            count = await self.run_once()
            if count == 0:
                break
            total += count
        return total

    # --- the loop --------------------------------------------------------------------
    async def _idle_for(self, idle: float) -> float:
        async with self.db.read() as session:
            due = await SyncRepository(session).next_due()
        if due is None:
            return idle
        wait = (due - self.clock.now()).total_seconds()
        return min(idle, max(wait, 0.01))

    async def run(self, *, idle: float = 1.0) -> None:
        log.info("sync relay %s started", self.name)
        await self.loop.run(idle=idle)
        log.info("sync relay %s stopped", self.name)

    def wake(self) -> None:
        self.loop.wake()

    def stop(self) -> None:
        self.loop.stop()
