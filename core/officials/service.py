"""The officials' service: authorization, audited actions, the board queue and digests."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from sqlalchemy import func, select

from core import commands as c
from core.adapters.orm_officials import OfficialOutbox
from core.adapters.repository import claim_once
from core.domain.errors import DomainError, InvalidField, NotFound
from core.domain.model import CATEGORIES, ProposalStatus
from core.kernel import Kernel
from core.officials.digest import PERIODS, window
from core.officials.model import Board, DiscussionSummaries, Outcome
from core.officials.repository import OfficialsRepository
from core.officials.worker import BoardWorker

__all__ = ["Officials"]

log = logging.getLogger(__name__)


def _error_outcome(exc: DomainError) -> Outcome:
    name = exc.key.rsplit(".", 1)[-1]
    params = {k: v for k, v in exc.params.items() if isinstance(v, str | int)}
    if isinstance(exc, InvalidField):
        return Outcome(ok=False, key=f"slack.error.field.{exc.field}.{exc.code}", params=params)
    return Outcome(ok=False, key=f"slack.error.{name}", params=params)


class Officials:
    """Everything officials can do, whatever the board; reached as ``core.officials``."""

    def __init__(self, core: Kernel, *, discussions: DiscussionSummaries | None = None) -> None:
        self.core = core
        self.discussions = discussions
        self.worker: BoardWorker | None = None
        self._task: asyncio.Task[None] | None = None

    # --- configuration -------------------------------------------------------------
    @property
    def triage_channel(self) -> str | None:
        s = self.core.settings
        return s.slack_triage_channel if s.slack_enabled else None

    @property
    def digest_channel(self) -> str | None:
        s = self.core.settings
        return s.slack_digest_channel if s.slack_enabled else None

    def is_official(self, user_id: str) -> bool:
        return bool(user_id) and user_id in self.core.settings.slack_officials

    # --- the board -----------------------------------------------------------------
    def attach_board(self, board: Board) -> BoardWorker:
        s = self.core.settings
        self.worker = BoardWorker(
            db=self.core.db, views=self.core.views, clock=self.core.clock, settings=s,
            board=board, max_attempts=max(s.delivery_max_attempts, 10),
            discussions=self.discussions,
        )
        return self.worker

    def wake(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    async def start(self) -> None:
        """Run the board worker with the core's workers (``serve``), not in CLI one-shots."""
        if self.worker is not None and self.core.workers and self._task is None:
            self._task = asyncio.create_task(self.worker.run(), name="board-worker")

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    # --- audit ---------------------------------------------------------------------
    async def audit(
        self, *, user: str, action: str, tracking: str | None, outcome: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        async with self.core.db.write() as session:
            await OfficialsRepository(session).record(
                actor=f"slack:{user}", action=action, tracking=tracking, outcome=outcome,
                detail=detail or {}, now=self.core.clock.now(),
            )

    async def refuse(self, *, user: str, action: str, tracking: str | None) -> Outcome:
        await self.audit(user=user, action=action, tracking=tracking, outcome="refused")
        return Outcome(ok=False, key="slack.refused")

    async def _act(
        self,
        *,
        user: str,
        action: str,
        tracking: str | None,
        detail: dict[str, Any],
        request_key: str | None,
        run: Callable[[], Awaitable[Any]],
        ok_key: str,
        ok_params: dict[str, Any],
    ) -> Outcome:
        if not self.is_official(user):
            return await self.refuse(user=user, action=action, tracking=tracking)
        if request_key is not None and not await self.core.once(f"slack:req:{request_key}"):
            await self.audit(user=user, action=action, tracking=tracking, outcome="duplicate",
                             detail=detail)
            return Outcome(ok=False, key="slack.duplicate")
        try:
            value = await run()
        except DomainError as exc:
            outcome = _error_outcome(exc)
            await self.audit(user=user, action=action, tracking=tracking, outcome="error",
                             detail={**detail, "error": outcome.key})
            return outcome
        await self.audit(user=user, action=action, tracking=tracking, outcome="ok", detail=detail)
        return Outcome(ok=True, key=ok_key, params=ok_params, value=value)

    # --- actions -------------------------------------------------------------------
    async def change_status(
        self,
        *,
        user: str,
        tracking: str,
        status: str,
        reason: str,
        expected_date: date | None = None,
        request_key: str | None = None,
    ) -> Outcome:
        async def run() -> bool:
            try:
                target = ProposalStatus(status)
            except ValueError:
                raise InvalidField("status", "unknown") from None
            return bool(
                await self.core.execute(
                    c.ChangeStatus(
                        tracking=tracking, status=target, reason=reason, actor=f"slack:{user}",
                        source="slack", expected_date=expected_date,
                    )
                )
            )

        detail: dict[str, Any] = {"status": status, "reason": reason[:300]}
        if expected_date:
            detail["expected_date"] = expected_date.isoformat()
        return await self._act(
            user=user, action="change_status", tracking=tracking, detail=detail,
            request_key=request_key, run=run, ok_key="slack.done.status",
            ok_params={"tracking": tracking, "status": status},
        )

    async def assign(
        self, *, user: str, tracking: str, assignee: str, request_key: str | None = None
    ) -> Outcome:
        async def run() -> None:
            await self.core.execute(
                c.AssignProposal(tracking=tracking, assignee=assignee, actor=f"slack:{user}")
            )

        return await self._act(
            user=user, action="assign", tracking=tracking, detail={"assignee": assignee[:200]},
            request_key=request_key, run=run, ok_key="slack.done.assign",
            ok_params={"tracking": tracking, "assignee": assignee},
        )

    async def answer(
        self, *, user: str, tracking: str, body: str, request_key: str | None = None
    ) -> Outcome:
        async def run() -> int | None:
            return await self.core.execute(  # type: ignore[no-any-return]
                c.AnswerProposal(tracking=tracking, body=body, actor=f"slack:{user}")
            )

        return await self._act(
            user=user, action="answer", tracking=tracking, detail={"length": len(body)},
            request_key=request_key, run=run, ok_key="slack.done.answer",
            ok_params={"tracking": tracking},
        )

    async def open_thread(self, *, user: str, tracking: str) -> Outcome:
        """Post the proposal's feedback under its card; later feedback follows there."""

        async def run() -> int:
            view = await self.core.views.proposal(tracking)
            if view is None:
                raise NotFound(tracking, tracking=tracking)
            now = self.core.clock.now()
            async with self.core.db.write() as session:
                repo = OfficialsRepository(session)
                if await repo.post_of(view.id) is None:
                    raise NotFound(tracking, tracking=view.tracking)
                await repo.open_thread(view.id, now)
                queued = 0
                for item in view.feedback:
                    queued += await repo.enqueue(
                        kind="reply", dedupe_key=f"reply:{view.id}:{item.id}",
                        payload={"tracking": view.tracking, "feedback_id": item.id},
                        proposal_id=view.id, now=now,
                    )
            self.wake()
            return queued

        return await self._act(
            user=user, action="open_thread", tracking=tracking, detail={}, request_key=None,
            run=run, ok_key="slack.done.thread", ok_params={"tracking": tracking},
        )

    # --- digests -------------------------------------------------------------------
    async def digests_waiting(self) -> dict[str, int]:
        """Digest posts not yet done on the board queue, by status (what ``gongnon slack
        digest`` reports after draining)."""
        async with self.core.db.read() as session:
            rows = await session.execute(
                select(OfficialOutbox.status, func.count())
                .where(OfficialOutbox.kind == "digest", OfficialOutbox.status != "done")
                .group_by(OfficialOutbox.status)
            )
            return {str(status): int(n) for status, n in rows}

    async def enqueue_digest(self, period: str, *, force: bool = False) -> bool:
        """Queue the last complete period's digest; False when it was already queued (by this
        or any other process). ``force`` queues it again (an operator asked)."""
        if period not in PERIODS:
            raise ValueError(f"unknown digest period {period!r}")
        channel = self.digest_channel
        if channel is None:
            return False
        now = self.core.clock.now()
        start, end = window(period, now, self.core.settings.tz)
        key = f"digest:{period}:{start.isoformat()}"
        if force:
            key += f":manual:{uuid.uuid4().hex[:12]}"
        base = {"period": period, "start": start.isoformat(), "end": end.isoformat(),
                "done_parts": 0}
        async with self.core.db.write() as session:
            if not await claim_once(session, key, now):
                return False
            repo = OfficialsRepository(session)
            await repo.enqueue(
                kind="digest", dedupe_key=f"{key}:main",
                payload={**base, "channel": channel, "category": None}, now=now,
            )
            for category, target in sorted(self.core.settings.slack_digest_routes.items()):
                if category not in CATEGORIES:
                    log.warning("digest route for unknown category %r ignored", category)
                    continue
                await repo.enqueue(
                    kind="digest", dedupe_key=f"{key}:cat:{category}",
                    payload={**base, "channel": target, "category": category}, now=now,
                )
        self.wake()
        return True

    async def run_digest_job(self, period: str) -> None:
        """What the scheduler fires (in every process; only the first one queues it)."""
        await self.enqueue_digest(period)
