"""Drains the officials' queue to the board: triage cards, their updates, thread replies,
alerts and digests. Several workers (in one or many processes) never double a row: the board
outbox plugs into ``core.outbox`` (leased claims, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
one ``Backoff``, the shared polling loop) with its ordering, due time then id, and its
dispatch by row kind, one row at a time (Slack paces posts per channel)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import update

from core import charts
from core.adapters.db import Database
from core.adapters.orm_officials import OfficialOutbox
from core.config import Settings
from core.i18n import t
from core.officials.digest import build_digest, utc_bounds
from core.officials.model import Alert, Board, Digest, DiscussionAlert, DiscussionSummaries, PostRef
from core.officials.repository import OfficialsRepository
from core.outbox import Backoff, LeasedQueue, PollingLoop
from core.ports import Clock, PermanentSendError, RetryLater, TransientSendError
from core.views import Views

__all__ = ["BACKOFF", "QUEUE", "BoardWorker", "Claimed"]

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=120)
WAIT_FOR_CARD = timedelta(seconds=2)
DIGEST_DISCUSSIONS = 5  # the busiest discussions a digest summarises
BACKOFF = Backoff(base=2.0, cap=600.0)  # 2 s, 4 s … 10 min, jittered

QUEUE = LeasedQueue(
    OfficialOutbox,
    order_by=lambda: (OfficialOutbox.next_attempt_at, OfficialOutbox.id),
    returning=lambda: (
        OfficialOutbox.id,
        OfficialOutbox.kind,
        OfficialOutbox.proposal_id,
        OfficialOutbox.payload,
        OfficialOutbox.attempts,
    ),
)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    kind: str
    proposal_id: int | None
    payload: dict[str, Any]
    attempts: int
    ticket: Any = None  # no work source hands board rows over a stream


class _Defer(Exception):
    """Not yet: try again soon without counting an attempt (the card is not posted yet)."""


class BoardWorker:
    def __init__(
        self,
        *,
        db: Database,
        views: Views,
        clock: Clock,
        settings: Settings,
        board: Board,
        max_attempts: int = 10,
        batch: int = 20,
        backoff: Backoff = BACKOFF,
        discussions: DiscussionSummaries | None = None,
    ) -> None:
        self.db = db
        self.discussions = discussions
        self.views = views
        self.clock = clock
        self.settings = settings
        self.board = board
        self.max_attempts = max_attempts
        self.batch = batch
        self.backoff = backoff
        self.name = f"board-{uuid.uuid4().hex[:8]}"
        self.loop = PollingLoop(
            name=f"board worker {self.name}", one_pass=self.run_once, renew=self._renew,
            lease=LEASE,
        )

    # --- loop --------------------------------------------------------------------
    def wake(self) -> None:
        self.loop.wake()

    def stop(self) -> None:
        self.loop.stop()

    async def run(self, *, idle: float = 1.0) -> None:
        await self.loop.run(idle=idle)

    async def run_once(self) -> int:
        items = await self.claim()
        for item in items:  # one at a time: Slack paces posts per channel
            self.loop.held.add(item.id)
        try:
            for item in items:
                await self.process(item)
                self.loop.held.discard(item.id)
        finally:
            self.loop.held.clear()
        return len(items)

    async def run_until_idle(self, *, rounds: int = 50) -> int:
        """Process everything due now (CLI and tests); returns how many rows were handled."""
        total = 0
        for _ in range(rounds):
            count = await self.run_once()
            total += count
            if count == 0:
                break
        return total

    # --- claiming ----------------------------------------------------------------
    async def claim(self) -> list[Claimed]:
        async with self.db.write() as session:
            rows = await QUEUE.claim(
                session, owner=self.name, now=self.clock.now(), lease=LEASE, limit=self.batch
            )
        rows.sort(key=lambda r: r.id)
        return [Claimed(r.id, r.kind, r.proposal_id, dict(r.payload), r.attempts) for r in rows]

    async def _renew(self, ids: list[int]) -> None:
        async with self.db.write() as session:
            await QUEUE.renew(session, ids, owner=self.name, until=self.clock.now() + LEASE)

    async def _finish(self, item: Claimed, **values: Any) -> None:
        async with self.db.write() as session:
            await QUEUE.finish(session, item.id, owner=self.name, **values)

    # --- one row -----------------------------------------------------------------
    async def process(self, item: Claimed) -> str:
        now = self.clock.now
        try:
            await self._dispatch(item)
        except _Defer:
            await self._finish(
                item, status="pending", attempts=item.attempts - 1,
                next_attempt_at=now() + WAIT_FOR_CARD,
            )
            return "pending"
        except RetryLater as exc:
            await self._finish(
                item,
                status="pending",
                attempts=item.attempts - 1,  # the platform's pacing is not a failure
                next_attempt_at=now() + timedelta(seconds=max(exc.retry_after, 0.05)),
                last_error=str(exc)[:500],
            )
            return "pending"
        except PermanentSendError as exc:
            log.warning("board row %s (%s) failed for good: %s", item.id, item.kind, exc)
            await self._finish(item, status="failed", last_error=str(exc)[:500])
            return "failed"
        except (TransientSendError, OSError, TimeoutError) as exc:
            return await self._retry(item, exc)
        except Exception as exc:  # a bug or an unexpected answer: keep the row, say so
            log.exception("board row %s (%s) raised", item.id, item.kind)
            return await self._retry(item, exc)
        await self._finish(item, status="done", done_at=now(), last_error=None)
        return "done"

    async def _retry(self, item: Claimed, exc: BaseException) -> str:
        error = f"{type(exc).__name__}: {exc}"[:500]
        if item.attempts >= self.max_attempts:
            log.warning("board row %s (%s) gave up after %s attempts", item.id, item.kind,
                        item.attempts)
            await self._finish(item, status="failed", last_error=error)
            return "failed"
        await self._finish(
            item,
            status="pending",
            next_attempt_at=self.clock.now() + self.backoff.delay(item.attempts),
            last_error=error,
        )
        return "pending"

    async def _dispatch(self, item: Claimed) -> None:
        handler = {
            "post": self._post,
            "update": self._update,
            "reply": self._reply,
            "alert": self._alert,
            "discussion": self._discussion,
            "digest": self._digest,
        }.get(item.kind)
        if handler is None:
            raise PermanentSendError(f"unknown board row kind {item.kind!r}")
        await handler(item)

    async def _proposal(self, item: Claimed):  # type: ignore[no-untyped-def]
        view = await self.views.proposal(str(item.payload["tracking"]))
        if view is None:
            raise PermanentSendError("proposal is gone")
        return view

    async def _ref(self, item: Claimed) -> PostRef | None:
        """Where the card is; defers while its first post is still queued."""
        assert item.proposal_id is not None
        async with self.db.read() as session:
            repo = OfficialsRepository(session)
            post = await repo.post_of(item.proposal_id)
            if post is not None and post.ts:
                return PostRef(channel=post.channel, ts=post.ts)
            if await repo.pending("post", item.proposal_id):
                raise _Defer
        return None

    async def _post(self, item: Claimed) -> None:
        assert item.proposal_id is not None
        async with self.db.read() as session:
            post = await OfficialsRepository(session).post_of(item.proposal_id)
        if post is not None and post.ts:
            return  # already on the board (a retried row)
        channel = str(item.payload["channel"])
        ref = await self.board.post_card(channel, await self._proposal(item))
        async with self.db.write() as session:
            await OfficialsRepository(session).posted(
                item.proposal_id, ref.channel, ref.ts, self.clock.now()
            )

    async def _update(self, item: Claimed) -> None:
        ref = await self._ref(item)
        if ref is not None:  # no card at all (posting failed for good): nothing to edit
            await self.board.update_card(ref, await self._proposal(item))

    async def _reply(self, item: Claimed) -> None:
        ref = await self._ref(item)
        if ref is None:
            return
        view = await self._proposal(item)
        feedback_id = int(item.payload["feedback_id"])
        feedback = next((f for f in view.feedback if f.id == feedback_id), None)
        if feedback is not None:
            await self.board.post_reply(ref, view, feedback)

    async def _alert(self, item: Claimed) -> None:
        p = item.payload
        alert = Alert(
            kind=str(p["kind"]),
            tracking=p.get("tracking"),
            attempts=int(p.get("attempts", 0)),
            error=str(p.get("error", "")),
        )
        await self.board.post_alert(str(p["channel"]), alert)

    async def _discussion(self, item: Claimed) -> None:
        p = item.payload
        if self.discussions is None:
            raise PermanentSendError("no discussion reader wired")
        summary = await self.discussions.summary(str(p["tracking"]))
        if summary is None:
            raise PermanentSendError("proposal is gone")
        alert = DiscussionAlert(summary=summary, support_count=int(p["support_count"]),
                                threshold=int(p["threshold"]))
        await self.board.post_discussion_alert(str(p["channel"]), alert)

    async def _with_discussions(self, digest: Digest) -> Digest:
        """The main digest names the period's busiest discussions with their summaries."""
        if self.discussions is None or digest.category is not None:
            return digest
        since, until = utc_bounds(digest.start, digest.end, self.settings.tz)
        summaries = []
        for tracking in await self.discussions.active_discussions(
            since, until=until, limit=DIGEST_DISCUSSIONS
        ):
            summary = await self.discussions.summary(tracking, top=1)
            if summary is not None:
                summaries.append(summary)
        return replace(digest, discussions=tuple(summaries))

    async def _digest(self, item: Claimed) -> None:
        p = item.payload
        digest = await build_digest(
            self.db,
            period=str(p["period"]),
            start=date.fromisoformat(str(p["start"])),
            end=date.fromisoformat(str(p["end"])),
            tz=self.settings.tz,
            overdue_days=self.settings.overdue_days,
            category=p.get("category"),
        )
        digest = await self._with_discussions(digest)
        if digest.category is not None and digest.empty:
            return  # a routed category with nothing to tell: no message
        chart = None
        if digest.by_category and digest.category is None:
            chart = await asyncio.to_thread(self._chart, digest)

        async def on_part(done: int) -> None:
            async with self.db.write() as session:
                await session.execute(
                    update(OfficialOutbox)
                    .where(OfficialOutbox.id == item.id)
                    .values(payload={**p, "done_parts": done})
                )

        await self.board.post_digest(
            str(p["channel"]),
            digest,
            chart=chart,
            done_parts=int(p.get("done_parts", 0)),
            on_part=on_part,
        )

    def _chart(self, digest: Digest) -> bytes:
        locale = self.settings.default_locale
        labels = [t(f"category.{key}", locale) for key, _ in digest.by_category]
        values = [count for _, count in digest.by_category]
        title = t(
            "slack.digest.chart_title", locale,
            start=digest.start.isoformat(), end=(digest.end - timedelta(days=1)).isoformat(),
        )
        return charts.bar_chart(title, labels, values, horizontal=True)
