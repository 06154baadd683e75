"""``DeliveryWorker``: drains the deliveries outbox at the platforms' limits.

``run()`` is a pipeline: the work source (``core.outbox.DatabaseSource`` or the Redis Streams
source) fills a priority queue of leased rows; ``concurrency`` sender tasks pace each row
through its channel's limits (``pacing``) and send it; one writer records outcomes in group
commits right after the sends (``outcomes.GroupCommit``); ``core.outbox.keep_leases`` renews
the leases held. A worker killed with ``kill -9`` leaves leased rows behind; they are reclaimed
when their lease runs out, so nobody is lost and at most the messages that were in flight at
the kill (sent, outcome not yet written) go out twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from core.adapters.db import Database
from core.delivery.gate import PushGate, hold_until
from core.delivery.outbox import LEASE, Claimed, Outbox, Outcome
from core.delivery.outcomes import RETRYABLE, GroupCommit, classify
from core.delivery.pacing import PaceLine, pace
from core.outbox import (
    Backoff,
    DatabaseSource,
    WorkSource,
    keep_leases,
    settle,
    wait_for_event,
)
from core.ports import Clock, PermanentSendError, RetryLater, Sender, Unreachable
from core.ratelimit import Grant, Pacer

__all__ = ["BACKOFF", "DeliveryWorker", "UnreachableHook"]

log = logging.getLogger(__name__)

UnreachableHook = Callable[[str, str, str], Awaitable[Any]]
BACKOFF = Backoff(base=2.0, cap=300.0)  # 2 s, 4 s, 8 s … 5 min, jittered
SourceFactory = Callable[["DeliveryWorker"], WorkSource[Claimed]]


def pushable(senders: Mapping[str, Sender]) -> list[str]:
    """The channels workers drain: those whose Sender may message a person unasked. Rows for
    the others wait in the outbox for the person's next contact (``core.news``)."""
    return [name for name, sender in senders.items() if sender.capabilities.push]


class DeliveryWorker:
    """Drains the outbox. Several may run (in one or many processes) without double sends."""

    def __init__(
        self,
        *,
        db: Database,
        senders: Mapping[str, Sender],
        clock: Clock,
        max_attempts: int = 8,
        batch: int = 200,
        on_unreachable: UnreachableHook | None = None,
        name: str | None = None,
        pacer: Pacer | None = None,
        lease: timedelta = LEASE,
        concurrency: int = 32,
        source: WorkSource[Claimed] | SourceFactory | None = None,
        push_gate: PushGate | None = None,
        backoff: Backoff = BACKOFF,
    ) -> None:
        self.db = db
        self.senders = senders
        self.clock = clock
        self.max_attempts = max_attempts
        self.batch = batch
        self.on_unreachable = on_unreachable  # async (channel, address, reason) -> None
        self.name = name or f"worker-{uuid.uuid4().hex[:8]}"
        self.pacer = pacer
        self.lease = lease
        self.concurrency = concurrency
        self.push_gate = push_gate  # (item, now) -> hold until (quiet hours), or None
        self.backoff = backoff
        self.outbox = Outbox(db, owner=self.name, lease=lease)
        if source is None:
            source = DatabaseSource(self.claim)
        elif not hasattr(source, "fetch"):
            source = source(self)  # type: ignore[operator]  # a factory needing the worker
        self.source: WorkSource[Claimed] = source  # type: ignore[assignment]
        self.counts: dict[str, int] = {}
        self._stopping = False
        self._stop = asyncio.Event()
        self._queue: asyncio.PriorityQueue[tuple[int, int, Claimed]] = asyncio.PriorityQueue()
        self._hand: dict[int, Claimed] = {}
        self._room = asyncio.Event()
        self._lines: dict[str, PaceLine] = {}
        self._in_send: set[asyncio.Task[Any]] = set()
        self._write_lock = asyncio.Lock()
        self._commits = GroupCommit(self._record, on_written=self._written, name=self.name)

    # --- one row -------------------------------------------------------------------
    def wake(self) -> None:
        self.source.wake()

    async def claim(self, limit: int | None = None) -> list[Claimed]:
        """Lease up to ``limit`` (default ``batch``) due rows of this worker's channels."""
        limit = self.batch if limit is None else limit
        return await self.outbox.claim(pushable(self.senders), limit, self.clock.now())

    async def _attempt(self, item: Claimed) -> Outcome:
        """Pace and send one row; classify what happened (nothing is written here)."""
        now = self.clock.now
        hold = hold_until(item, now(), self.push_gate)
        if hold is not None:  # never push before its time
            return Outcome(
                item=item, status="pending", attempts=item.attempts - 1, next_attempt_at=hold
            )
        sender = self.senders[item.channel]
        grant: Grant | None = await pace(self._lines, self.pacer, item.channel, item.address)
        task = asyncio.current_task()
        if task is not None:
            self._in_send.add(task)
        try:
            try:
                ref = await sender.send(item.address, item.reply)
            finally:
                if grant is not None and self.pacer is not None:
                    await self.pacer.settle(grant)
        except RetryLater as exc:
            if self.pacer is not None:
                await self.pacer.back_off(
                    item.channel, item.address, exc.retry_after, scope=getattr(exc, "scope", None)
                )
            return self._failed(item, exc)
        except (Unreachable, PermanentSendError, *RETRYABLE) as exc:
            return self._failed(item, exc)
        finally:
            if task is not None:
                self._in_send.discard(task)
        stamp = now()
        return Outcome(
            item=item, status="sent", attempts=item.attempts, next_attempt_at=stamp,
            message_ref=ref, sent_at=stamp,
        )

    def _failed(self, item: Claimed, exc: BaseException) -> Outcome:
        return classify(
            item, exc, now=self.clock.now(), backoff=self.backoff, max_attempts=self.max_attempts
        )

    async def _record(self, outcomes: Sequence[Outcome]) -> None:
        # One write at a time per worker, rows in id order: a renewal and an outcome batch
        # touching the same rows would otherwise deadlock on PostgreSQL.
        async with self._write_lock:
            await self.outbox.record(sorted(outcomes, key=lambda o: o.item.id))
        await self.source.done([o.item for o in outcomes])
        for outcome in outcomes:
            self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
            if outcome.status == "unreachable" and self.on_unreachable is not None:
                item = outcome.item
                try:
                    await self.on_unreachable(item.channel, item.address, outcome.error or "")
                except Exception:
                    log.exception("delivery %s: marking a recipient unreachable failed", item.id)

    async def deliver(self, item: Claimed) -> str:
        """Send one claimed row and record the outcome; returns the new status."""
        outcome = await self._attempt(item)
        await self._record([outcome])
        return outcome.status

    async def run_once(self) -> int:
        """Claim one batch, send it, record it (tests and simple loops)."""
        items = await self.source.fetch(self.batch, wait=0)
        if items:
            outcomes = await asyncio.gather(*(self._attempt(item) for item in items))
            await self._record(outcomes)
        return len(items)

    # --- the pipeline ----------------------------------------------------------------
    @property
    def capacity(self) -> int:
        """How many leased rows to hold: about two seconds of sending, within bounds."""
        rate = max((s.limits.per_second for s in list(self.senders.values())), default=0.0)
        return int(min(2000, max(2 * self.concurrency, self.batch, rate * 2)))

    async def _fetch_loop(self, idle: float) -> None:
        while not self._stopping:
            room = self.capacity - len(self._hand)
            if room < self.capacity // 2:
                self._room.clear()
                await wait_for_event(self._room, idle)
                continue
            try:
                items = await self.source.fetch(min(self.batch, room), wait=idle)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery worker %s: fetching work failed", self.name)
                await asyncio.sleep(min(idle, 1.0))
                continue
            for item in items:
                self._hand[item.id] = item
                self._queue.put_nowait((item.priority, item.id, item))

    async def _send_loop(self) -> None:
        while not self._stopping:
            _priority, _id, item = await self._queue.get()
            if self._stopping:
                self._queue.put_nowait((_priority, _id, item))
                return
            try:
                outcome = await self._attempt(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a Sender bug: count it as transient, keep going
                log.exception("delivery %s: the %s sender failed", item.id, item.channel)
                outcome = self._failed(item, exc)
            await self._commits.add(outcome)

    def _written(self, batch: Sequence[Outcome]) -> None:
        for outcome in batch:
            self._hand.pop(outcome.item.id, None)
        if len(self._hand) < self.capacity // 2:
            self._room.set()

    async def _renew(self, ids: list[int]) -> None:
        async with self._write_lock:
            await self.outbox.renew(ids, self.clock.now())

    async def run(self, *, idle: float = 1.0) -> None:
        """Run until ``stop()`` (or cancellation), then hand back what was not sent."""
        self._stopping = False
        self._stop.clear()
        self.outbox.keep_connection = True
        await self.source.start()
        background = [
            asyncio.create_task(self._commits.run(), name=f"{self.name}-record"),
            asyncio.create_task(
                keep_leases(self._renew, lambda: self._hand, lease=self.lease,
                            name=f"delivery worker {self.name}"),
                name=f"{self.name}-renew",
            ),
        ]
        fetch = asyncio.create_task(self._fetch_loop(idle), name=f"{self.name}-fetch")
        senders = [
            asyncio.create_task(self._send_loop(), name=f"{self.name}-send-{n}")
            for n in range(self.concurrency)
        ]
        try:
            await self._stop.wait()
        finally:
            await self._shutdown(fetch, senders, background)

    async def _shutdown(
        self,
        fetch: asyncio.Task[None],
        senders: list[asyncio.Task[None]],
        background: list[asyncio.Task[None]],
    ) -> None:
        self._stopping = True
        fetch.cancel()
        # Tasks waiting for work or for a token stop now; a send under way may finish
        # (cancelling an HTTP call does not unsend it).
        busy = [task for task in senders if task in self._in_send]
        for task in senders:
            if task not in self._in_send:
                task.cancel()
        if busy:
            await asyncio.wait(busy, timeout=5.0)
        for task in senders:
            task.cancel()
        await settle([fetch, *senders])
        for line in self._lines.values():
            line.close()
        for task in background:
            task.cancel()
        await settle(background)
        try:
            await self._commits.flush()
            async with self._write_lock:
                await self.outbox.release(list(self._hand.values()))
            self._hand.clear()
        except Exception:
            log.exception("delivery worker %s: handing back leases failed", self.name)
        with contextlib.suppress(Exception):
            await self.outbox.close()
        await self.source.close()

    def stop(self) -> None:
        self._stopping = True
        self._stop.set()
        self.source.wake()
