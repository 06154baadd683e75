"""The delivery engine: a durable outbox and the workers that drain it at the platforms' limits.

Every message that is not an immediate answer goes through ``deliveries``: one row per
recipient, unique on a logical ``dedupe_key`` so a retried enqueue never sends twice.

States: ``pending`` (due at ``next_attempt_at``) → ``sending`` (leased by one worker until
``lease_until``) → ``sent`` | ``failed`` | ``unreachable`` | ``opted_out`` | ``cancelled``;
campaigns move unsent push rows to ``held``/``cancelled``/``opted_out`` and back. A ``pending``
row with a lease is sitting in a Redis stream (see ``core.adapters.redis_streams``).

A worker claims due rows in batches under a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite), keeps the leases alive while it holds them, paces each send
through the shared sliding-window limits (``core.ratelimit``) and writes outcomes in small group
commits right after the sends. A worker killed with ``kill -9`` leaves leased rows behind;
they are reclaimed when their lease runs out, so nobody is lost and at most the messages that
were in flight at the kill (sent, outcome not yet written) go out twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from core.adapters.db import Database, insert_for
from core.adapters.orm import UTCDateTime
from core.adapters.orm_delivery import Delivery
from core.messages import Reply, ReplyKind, reply_from_json, reply_to_json
from core.ports import (
    Clock,
    PermanentSendError,
    RetryLater,
    Sender,
    TransientSendError,
    Unreachable,
)
from core.ratelimit import Grant, Pacer

__all__ = [
    "FINAL_STATUSES",
    "LEASE",
    "PRIORITY",
    "Claimed",
    "DeliveryRepository",
    "DeliveryWorker",
    "Outbound",
    "Outbox",
    "Outcome",
    "Outgoing",
    "WorkSource",
    "push_report",
]

log = logging.getLogger(__name__)

PRIORITY = {ReplyKind.CONVERSATION: 0, ReplyKind.NOTIFICATION: 3, ReplyKind.PUSH: 7}
LEASE = timedelta(seconds=60)
FINAL_STATUSES = ("sent", "failed", "unreachable", "opted_out", "cancelled")
WAITING = ("pending", "held")  # not in any worker's hands
UnreachableHook = Callable[[str, str, str], Awaitable[Any]]


# --- the write side used by handlers (inside a unit of work) ---------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """One message to one recipient, for ``enqueue_many``."""

    dedupe_key: str
    channel: str
    address: str
    reply: Reply
    person_id: int | None = None
    push_id: int | None = None
    not_before: datetime | None = None


def _row(item: Outgoing, now: datetime) -> dict[str, Any]:
    return {
        "dedupe_key": item.dedupe_key,
        "channel": item.channel,
        "address": item.address,
        "person_id": item.person_id,
        "kind": item.reply.kind.value,
        "priority": PRIORITY[item.reply.kind],
        "payload": reply_to_json(item.reply),
        "push_id": item.push_id,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": item.not_before or now,
        "created_at": now,
    }


class DeliveryRepository:
    """Outbox rows, used inside a unit of work (``uow.repo(DeliveryRepository)``)."""

    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enqueue(
        self,
        *,
        dedupe_key: str,
        channel: str,
        address: str,
        reply: Reply,
        now: datetime,
        person_id: int | None = None,
        push_id: int | None = None,
        not_before: datetime | None = None,
    ) -> bool:
        """True when queued; False when a row with this key already exists.

        ``not_before``: nothing is sent before then (quiet hours, scheduled pushes).
        """
        item = Outgoing(
            dedupe_key=dedupe_key,
            channel=channel,
            address=address,
            reply=reply,
            person_id=person_id,
            push_id=push_id,
            not_before=not_before,
        )
        stmt = (
            insert_for(self.session, Delivery.__table__)
            .values(_row(item, now))
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(Delivery.__table__.c.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def enqueue_many(self, items: Sequence[Outgoing], *, now: datetime) -> int:
        """Queue many rows in few statements; returns how many were new (duplicates skipped)."""
        table = Delivery.__table__
        added = 0
        for start in range(0, len(items), 1000):
            rows = [_row(item, now) for item in items[start : start + 1000]]
            stmt = (
                insert_for(self.session, table)
                .on_conflict_do_nothing(index_elements=["dedupe_key"])
                .returning(table.c.id)
            )
            added += len((await self.session.execute(stmt, rows)).all())
        return added

    async def push_report(self, push_id: int) -> dict[str, int]:
        """How many deliveries of a push are in each status (``sent``, ``pending`` …)."""
        return await push_report(self.session, push_id)


async def push_report(session: AsyncSession, push_id: int) -> dict[str, int]:
    """``{status: count}`` for one push; every final status is present (0 when none)."""
    rows = await session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.push_id == push_id)
        .group_by(Delivery.status)
    )
    report = dict.fromkeys(FINAL_STATUSES, 0)
    for status, count in rows:
        report[str(status)] = int(count)
    return report


# --- what a worker holds -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row leased to this worker."""

    id: int
    channel: str
    address: str
    reply: Reply
    attempts: int
    priority: int = 5
    kind: str = ReplyKind.NOTIFICATION.value
    due_at: datetime | None = None
    push_id: int | None = None
    ticket: Any = field(default=None, compare=False)  # the work source's handle (stream id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What happened to one claimed row; written in batches."""

    item: Claimed
    status: str  # sent | failed | unreachable | pending (retry later)
    attempts: int
    next_attempt_at: datetime
    error: str | None = None
    message_ref: str | None = None
    sent_at: datetime | None = None


_RETURNING = (
    Delivery.id,
    Delivery.channel,
    Delivery.address,
    Delivery.payload,
    Delivery.attempts,
    Delivery.priority,
    Delivery.kind,
    Delivery.next_attempt_at,
    Delivery.push_id,
)


def _claimed(row: Any, ticket: Any = None) -> Claimed:
    return Claimed(
        row.id,
        row.channel,
        row.address,
        reply_from_json(row.payload),
        row.attempts,
        row.priority,
        row.kind,
        row.next_attempt_at,
        row.push_id,
        ticket,
    )


class Outbox:
    """The workers' side of the outbox table: leased claims and batched outcome writes."""

    def __init__(self, db: Database, *, owner: str, lease: timedelta = LEASE) -> None:
        self.db = db
        self.owner = owner
        self.lease = lease
        self.keep_connection = False  # a running worker keeps one for its outcome batches
        self._conn: AsyncConnection | None = None
        table = Delivery.__table__
        self._record_stmt = (
            table.update()  # type: ignore[attr-defined]
            .where(table.c.id == bindparam("b_id"), table.c.lease_owner == owner)
            .values(
                status=bindparam("b_status"),
                attempts=bindparam("b_attempts"),
                next_attempt_at=bindparam("b_next", type_=UTCDateTime()),
                last_error=bindparam("b_error"),
                message_ref=bindparam("b_ref"),
                sent_at=bindparam("b_sent", type_=UTCDateTime()),
                lease_until=None,
                lease_owner=None,
            )
        )

    def _lock(self, stmt: Any) -> Any:
        return stmt.with_for_update(skip_locked=True) if self.db.dialect == "postgresql" else stmt

    async def _due_ids(
        self, session: AsyncSession, channels: Sequence[str], limit: int, now: datetime
    ) -> list[int]:
        """Expired leases first (a dead worker's rows), then pending rows by priority."""
        expired = self._lock(
            select(Delivery.id)
            .where(
                Delivery.status == "sending",
                Delivery.lease_until < now,
                Delivery.channel.in_(channels),
            )
            .order_by(Delivery.id)
            .limit(limit)
        )
        ids = list((await session.execute(expired)).scalars())
        if len(ids) < limit:
            due = self._lock(
                select(Delivery.id)
                .where(
                    Delivery.status == "pending",
                    Delivery.next_attempt_at <= now,
                    Delivery.channel.in_(channels),
                    or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
                )
                .order_by(Delivery.priority, Delivery.next_attempt_at, Delivery.id)
                .limit(limit - len(ids))
            )
            ids += list((await session.execute(due)).scalars())
        return ids

    async def claim(self, channels: Sequence[str], limit: int, now: datetime) -> list[Claimed]:
        """Lease up to ``limit`` due rows of these channels to this worker."""
        if not channels or limit <= 0:
            return []
        async with self.db.write() as session:
            ids = await self._due_ids(session, channels, limit, now)
            if not ids:
                return []
            rows = (
                await session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(ids))
                    .values(
                        status="sending",
                        lease_until=now + self.lease,
                        lease_owner=self.owner,
                        attempts=Delivery.attempts + 1,
                    )
                    .returning(*_RETURNING)
                )
            ).all()
        return sorted((_claimed(r) for r in rows), key=lambda c: (c.priority, c.id))

    async def mark_queued(
        self,
        channels: Sequence[str],
        limit: int,
        now: datetime,
        *,
        hold: timedelta,
        publish: Callable[[list[tuple[int, str, int]]], Awaitable[Any]] | None = None,
    ) -> list[tuple[int, str, int]]:
        """For a stream feeder: lease due rows to the streams for ``hold`` (they stay
        ``pending``); returns (id, channel, priority).

        ``publish(rows)`` runs before the lease commits: a feeder killed after it has left
        entries for rows that any consumer may still take; one killed before it leaves the
        rows unleased, for the next feeder. Never rows leased to a stream that has no entry
        for them until the hold runs out.
        """
        if not channels or limit <= 0:
            return []
        async with self.db.write() as session:
            ids = await self._due_ids(session, channels, limit, now)
            if not ids:
                return []
            rows = (
                await session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(ids))
                    .values(
                        status="pending", lease_until=now + hold, lease_owner=f"feed:{self.owner}"
                    )
                    .returning(Delivery.id, Delivery.channel, Delivery.priority)
                )
            ).all()
            queued = sorted(
                ((r.id, r.channel, r.priority) for r in rows), key=lambda r: (r[2], r[0])
            )
            if publish is not None:
                await publish(queued)
        return queued

    async def take(self, tickets: Mapping[int, Any], now: datetime) -> list[Claimed]:
        """For a stream consumer: lease the rows behind these entries, if still ours to send.

        A row is taken only while ``pending`` and due (or from a dead worker's expired lease),
        so an entry that reached two consumers, or a stale one, is sent by at most one.
        """
        if not tickets:
            return []
        async with self.db.write() as session:
            rows = (
                await session.execute(
                    update(Delivery)
                    .where(
                        Delivery.id.in_(list(tickets)),
                        or_(
                            and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
                            and_(Delivery.status == "sending", Delivery.lease_until < now),
                        ),
                    )
                    .values(
                        status="sending",
                        lease_until=now + self.lease,
                        lease_owner=self.owner,
                        attempts=Delivery.attempts + 1,
                    )
                    .returning(*_RETURNING)
                )
            ).all()
        return sorted((_claimed(r, tickets[r.id]) for r in rows), key=lambda c: (c.priority, c.id))

    async def renew(self, ids: Sequence[int], now: datetime) -> None:
        if not ids:
            return
        async with self.db.write() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.id.in_(list(ids)), Delivery.lease_owner == self.owner)
                .values(lease_until=now + self.lease)
            )

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        """Write many outcomes in one transaction (only rows this worker still holds)."""
        if not outcomes:
            return
        params = [
            {
                "b_id": o.item.id,
                "b_status": o.status,
                "b_attempts": o.attempts,
                "b_next": o.next_attempt_at,
                "b_error": o.error,
                "b_ref": o.message_ref,
                "b_sent": o.sent_at,
            }
            for o in outcomes
        ]
        gone = {(o.item.channel, o.item.address) for o in outcomes if o.status == "unreachable"}
        async with self._outcome_writer() as session:
            await session.execute(self._record_stmt, params)
            for channel, address in gone:  # the rest of their queue is moot
                await session.execute(
                    update(Delivery)
                    .where(
                        Delivery.channel == channel,
                        Delivery.address == address,
                        Delivery.status.in_(WAITING),
                    )
                    .values(status="unreachable", last_error="recipient unreachable")
                )

    @contextlib.asynccontextmanager
    async def _outcome_writer(self) -> AsyncIterator[Any]:
        """Where outcome batches go: on PostgreSQL a connection kept for them (no pool
        checkout and ping for every batch of a few ms), elsewhere a write session."""
        if self.db.dialect != "postgresql" or not self.keep_connection:
            async with self.db.write() as session:
                yield session
            return
        if self._conn is None:
            self._conn = await self.db.engine.connect()
        try:
            async with self._conn.begin():
                yield self._conn
        except BaseException:
            conn, self._conn = self._conn, None  # a broken connection is not kept
            with contextlib.suppress(Exception):
                await conn.close()
            raise

    async def close(self) -> None:
        self.keep_connection = False
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def release(self, items: Sequence[Claimed]) -> None:
        """Give unsent rows back (graceful stop): due again at once, the attempt not counted."""
        if not items:
            return
        async with self.db.write() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.id.in_([i.id for i in items]), Delivery.lease_owner == self.owner)
                .values(
                    status="pending",
                    attempts=Delivery.attempts - 1,
                    lease_until=None,
                    lease_owner=None,
                )
            )


# --- where a worker's work comes from -------------------------------------------------


class WorkSource(Protocol):
    """Hands a worker leased rows: straight from the database, or through Redis Streams."""

    async def start(self) -> None: ...

    async def fetch(self, limit: int, *, wait: float) -> list[Claimed]:
        """Up to ``limit`` leased rows, waiting at most ``wait`` seconds when there are none."""
        ...

    async def done(self, items: Sequence[Claimed]) -> None:
        """Their outcomes are written (a stream acknowledges its entries)."""
        ...

    def wake(self) -> None: ...

    async def close(self) -> None: ...


class DatabaseSource:
    """Claims due rows straight from the outbox (the embedded mode, or PostgreSQL alone)."""

    def __init__(self, outbox: Outbox, *, channels: Callable[[], Sequence[str]], clock: Clock):
        self.outbox = outbox
        self.channels = channels
        self.clock = clock
        self._wake = asyncio.Event()

    async def start(self) -> None:
        return None

    async def fetch(self, limit: int, *, wait: float) -> list[Claimed]:
        items = await self.outbox.claim(list(self.channels()), limit, self.clock.now())
        if items or wait <= 0:
            return items
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), wait)
        return []

    async def done(self, items: Sequence[Claimed]) -> None:
        return None

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        return None


# --- the worker ----------------------------------------------------------------------


async def _settle(tasks: Sequence[asyncio.Task[Any]], seconds: float = 5.0) -> None:
    """Wait for cancelled tasks to end, but never forever (a library may swallow a cancel)."""
    if not tasks:
        return
    _done, stuck = await asyncio.wait(tasks, timeout=seconds)
    for task in stuck:
        log.error("delivery: task %s did not stop", task.get_name())


def _error_text(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:500]


LINE_BATCH = 64  # sends a pacing line takes places for in one step


class _PaceLine:
    """A worker's line for one channel's limits: one task takes places for the waiting sends,
    oldest first, as many in a row as the limits have room for.

    Sends waiting their turn cost no hand-over between tasks per place (at 1000/s that alone
    left places unused while the busy event loop came round); after a late wake-up every place
    that came free meanwhile is handed out at once. A send whose wait is long (its chat's 1/s,
    a 429 pause) gets it back to sleep outside the line.
    """

    def __init__(self, pacer: Pacer, channel: str) -> None:
        self.pacer = pacer
        self.channel = channel
        self.short = 2.0 * pacer.channel_interval(channel) + 0.005
        self._waiting: deque[tuple[str, asyncio.Future[Grant]]] = deque()
        self._runner: asyncio.Task[None] | None = None

    async def take(self, address: str) -> Grant:
        """A grant for a send to ``address``, or a long ``wait`` to sleep outside the line."""
        future: asyncio.Future[Grant] = asyncio.get_running_loop().create_future()
        self._waiting.append((address, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name=f"pace-{self.channel}")
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                # Granted just as we were cancelled: the place was never used.
                await asyncio.shield(self.pacer.release(future.result()))
            raise

    async def _run(self) -> None:
        waiting = self._waiting
        while waiting:
            batch = [entry for entry in list(waiting)[:LINE_BATCH] if not entry[1].done()]
            if not batch:
                self._drop_done()
                continue
            try:
                grants = await self.pacer.try_take_many(
                    self.channel, [address for address, _ in batch], patience=self.short
                )
            except Exception as exc:  # the limiter failed (Redis): these sends fail, not the line
                for _address, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                self._drop_done()
                continue
            shortest = None
            for (_address, future), grant in zip(batch, grants, strict=True):
                if future.done():  # its task was cancelled meanwhile
                    if grant.granted:
                        await self.pacer.release(grant)
                elif grant.granted or grant.wait > self.short:
                    future.set_result(grant)
                elif shortest is None:
                    shortest = grant.wait
            self._drop_done()
            if shortest is not None:
                await asyncio.sleep(shortest)

    def _drop_done(self) -> None:
        """Keep the sends still waiting, in their order."""
        for _ in range(len(self._waiting)):
            entry = self._waiting.popleft()
            if not entry[1].done():
                self._waiting.append(entry)

    def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
        for _address, future in self._waiting:
            future.cancel()
        self._waiting.clear()


class DeliveryWorker:
    """Drains the outbox. Several may run (in one or many processes) without double sends.

    ``run()`` is a pipeline: the source fills a priority queue of leased rows; ``concurrency``
    sender tasks pace each row through the channel's limits and send it; one recorder writes
    outcomes in group commits right after the sends; a renewer keeps the held leases alive.
    """

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
        source: WorkSource | Callable[[DeliveryWorker], WorkSource] | None = None,
        push_gate: Callable[[Claimed, datetime], datetime | None] | None = None,
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
        self.outbox = Outbox(db, owner=self.name, lease=lease)
        if source is None:
            source = DatabaseSource(self.outbox, channels=lambda: list(self.senders), clock=clock)
        elif not hasattr(source, "fetch"):
            source = source(self)  # a factory that needs the worker (its outbox, its name)
        self.source: WorkSource = source  # type: ignore[assignment]
        self.counts: dict[str, int] = {}
        self._stopping = False
        self._stop = asyncio.Event()
        self._queue: asyncio.PriorityQueue[tuple[int, int, Claimed]] = asyncio.PriorityQueue()
        self._hand: dict[int, Claimed] = {}
        self._outcomes: list[Outcome] = []
        self._outcome_ready = asyncio.Event()
        self._room = asyncio.Event()
        self._lines: dict[str, _PaceLine] = {}
        self._in_send: set[asyncio.Task[Any]] = set()
        self._write_lock = asyncio.Lock()
        self._written: dict[int, asyncio.Future[None]] = {}

    # --- one row -------------------------------------------------------------------
    def wake(self) -> None:
        self.source.wake()

    async def claim(self) -> list[Claimed]:
        return await self.outbox.claim(list(self.senders), self.batch, self.clock.now())

    def _backoff(self, attempts: int) -> timedelta:
        base = min(300.0, 2.0 ** min(attempts, 8))
        return timedelta(seconds=base * (0.5 + random.random() / 2))  # noqa: S311

    async def _pace(self, item: Claimed) -> Grant | None:
        """Wait for a place in the channel's limits: in this worker's line for the channel
        while the wait is short (its overall rate), outside it while long (a chat's 1/s, a
        429 pause)."""
        if self.pacer is None:
            return None
        line = self._lines.get(item.channel)
        if line is None:
            line = self._lines[item.channel] = _PaceLine(self.pacer, item.channel)
        while True:
            grant = await line.take(item.address)
            if grant.granted:
                return grant
            await asyncio.sleep(grant.wait)

    async def _attempt(self, item: Claimed) -> Outcome:
        """Pace and send one row; classify what happened (nothing is written here)."""
        now = self.clock.now
        if item.kind == ReplyKind.PUSH.value:
            hold = item.due_at if item.due_at is not None and item.due_at > now() else None
            if hold is None and self.push_gate is not None:
                hold = self.push_gate(item, now())
            if hold is not None:  # never push before its time
                return Outcome(
                    item=item, status="pending", attempts=item.attempts - 1, next_attempt_at=hold
                )
        sender = self.senders[item.channel]
        grant = await self._pace(item)
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
            return Outcome(
                item=item,
                status="pending",
                attempts=item.attempts - 1,  # the platform's pacing is not a failure
                next_attempt_at=now() + timedelta(seconds=max(exc.retry_after, 0.05)),
                error=_error_text(exc),
            )
        except Unreachable as exc:
            return Outcome(
                item=item,
                status="unreachable",
                attempts=item.attempts,
                next_attempt_at=now(),
                error=_error_text(exc),
            )
        except PermanentSendError as exc:
            return Outcome(
                item=item,
                status="failed",
                attempts=item.attempts,
                next_attempt_at=now(),
                error=_error_text(exc),
            )
        except (TimeoutError, TransientSendError, OSError) as exc:
            final = item.attempts >= self.max_attempts
            return Outcome(
                item=item,
                status="failed" if final else "pending",
                attempts=item.attempts,
                next_attempt_at=now() if final else now() + self._backoff(item.attempts),
                error=_error_text(exc),
            )
        finally:
            if task is not None:
                self._in_send.discard(task)
        return Outcome(
            item=item,
            status="sent",
            attempts=item.attempts,
            next_attempt_at=now(),
            message_ref=ref,
            sent_at=now(),
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
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), idle)
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
                outcome = Outcome(
                    item=item,
                    status="pending" if item.attempts < self.max_attempts else "failed",
                    attempts=item.attempts,
                    next_attempt_at=self.clock.now() + self._backoff(item.attempts),
                    error=_error_text(exc),
                )
            # Wait for the group commit that records it: a task has at most one message
            # sent and not yet recorded, so a kill -9 re-sends at most ``concurrency``.
            written = asyncio.get_running_loop().create_future()
            self._written[outcome.item.id] = written
            self._outcomes.append(outcome)
            self._outcome_ready.set()
            await written

    async def _flush(self) -> None:
        batch, self._outcomes = self._outcomes, []
        if not batch:
            return
        try:
            await self._record(batch)
        except BaseException:
            self._outcomes[:0] = batch  # keep them (their leases are still renewed)
            raise
        for outcome in batch:
            self._hand.pop(outcome.item.id, None)
            written = self._written.pop(outcome.item.id, None)
            if written is not None and not written.done():
                written.set_result(None)
        if len(self._hand) < self.capacity // 2:
            self._room.set()

    async def _record_loop(self) -> None:
        while True:
            await self._outcome_ready.wait()
            self._outcome_ready.clear()
            try:
                await self._flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery worker %s: writing outcomes failed", self.name)
                await asyncio.sleep(0.5)
                self._outcome_ready.set()

    async def _renew_loop(self) -> None:
        period = max(self.lease.total_seconds() / 3, 0.05)
        while True:
            await asyncio.sleep(period)
            try:
                async with self._write_lock:
                    await self.outbox.renew(sorted(self._hand), self.clock.now())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery worker %s: renewing leases failed", self.name)

    async def run(self, *, idle: float = 1.0) -> None:
        """Run until ``stop()`` (or cancellation), then hand back what was not sent."""
        self._stopping = False
        self._stop.clear()
        self.outbox.keep_connection = True
        await self.source.start()
        background = [
            asyncio.create_task(self._record_loop(), name=f"{self.name}-record"),
            asyncio.create_task(self._renew_loop(), name=f"{self.name}-renew"),
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
        await _settle([fetch, *senders])
        for line in self._lines.values():
            line.close()
        for task in background:
            task.cancel()
        await _settle(background)
        try:
            await self._flush()
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


# --- immediate answers ---------------------------------------------------------------


class Outbound:
    """Immediate answers to what a person just did, sent ahead of bulk work.

    Channels call ``send_now`` for conversation replies. Each send takes its tokens from the
    same limits as the workers, as *urgent*: a push in progress yields the next place to it.
    It honours ``RetryLater`` a few times and reports an unreachable person.
    """

    def __init__(
        self,
        senders: Mapping[str, Sender],
        *,
        on_unreachable: UnreachableHook | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.senders = senders
        self.on_unreachable = on_unreachable
        self.pacer = pacer

    async def _send(self, channel: str, address: str, reply: Reply, ref: str | None) -> str | None:
        if self.pacer is None:
            return await self.senders[channel].send(address, reply, edit_ref=ref)
        grant = await self.pacer.acquire(channel, address, urgent=True)
        try:
            return await self.senders[channel].send(address, reply, edit_ref=ref)
        finally:
            await self.pacer.settle(grant)

    async def send_now(
        self, channel: str, address: str, replies: Sequence[Reply], *, edit_ref: str | None = None
    ) -> list[str | None]:
        refs: list[str | None] = []
        for index, reply in enumerate(replies):
            ref = edit_ref if (index == 0 and reply.edit) else None
            for attempt in range(5):
                try:
                    refs.append(await self._send(channel, address, reply, ref))
                    break
                except RetryLater as exc:
                    if self.pacer is not None:
                        await self.pacer.back_off(
                            channel, address, exc.retry_after, scope=getattr(exc, "scope", None)
                        )
                    else:
                        await asyncio.sleep(min(exc.retry_after, 30.0))
                    if attempt == 4:
                        raise
                except TransientSendError:
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.2 * 2**attempt)
                except Unreachable as exc:
                    if self.on_unreachable is not None:
                        await self.on_unreachable(channel, address, str(exc)[:200])
                    return refs
        return refs


# --- wiring --------------------------------------------------------------------------


class DeliveryEngine:
    """The shared parts of one process: the rate limits (memory or Redis) and the pacer.

    ``worker(...)`` builds a ``DeliveryWorker`` that reads from the database, or, with a
    Redis URL, from the Redis Streams shared by every worker process.
    """

    def __init__(self, *, settings: Any, db: Database, clock: Clock, senders: Mapping[str, Sender]):
        from core.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter

        self.settings = settings
        self.db = db
        self.clock = clock
        self.senders = senders
        limiter: RateLimiter
        if settings.redis_url:
            limiter = RedisRateLimiter.from_url(
                settings.redis_url, prefix=f"{settings.delivery_redis_prefix}:rl"
            )
        else:
            limiter = MemoryRateLimiter()
        self.limiter = limiter
        self.pacer = Pacer(
            limiter,
            limits_of=self._limits_of,
            is_group=self._is_group,
            headroom=settings.delivery_rate_headroom,
        )
        # Every worker of this process is built with these (features may add to them,
        # e.g. the campaigns' quiet-hours ``push_gate``).
        self.options: dict[str, Any] = self.worker_options()

    def _limits_of(self, channel: str) -> Any:
        sender = self.senders.get(channel)
        return None if sender is None else sender.limits

    def _is_group(self, channel: str, address: str) -> bool:
        probe = getattr(self.senders.get(channel), "is_group", None)
        return bool(probe(address)) if callable(probe) else address.startswith("-")

    def _backlog(self, channel: str) -> int:
        sender = self.senders.get(channel)
        rate = sender.limits.per_second if sender is not None else 10.0
        return int(min(5000, max(100, rate * 3)))

    def source_for(self, worker: DeliveryWorker) -> WorkSource:
        if not self.settings.redis_url:
            return DatabaseSource(
                worker.outbox, channels=lambda: list(self.senders), clock=self.clock
            )
        from core.adapters.redis_streams import StreamSource, redis_client

        block_ms = self.settings.delivery_stream_block_ms
        lease = timedelta(seconds=self.settings.delivery_lease_seconds)
        return StreamSource(
            redis_client(self.settings.redis_url, block_ms=block_ms),
            worker.outbox,
            channels=lambda: list(self.senders),
            clock=self.clock,
            consumer=worker.name,
            prefix=self.settings.delivery_redis_prefix,
            block_ms=block_ms,
            claim_idle=lease,
            backlog=self._backlog,
            hold=max(timedelta(minutes=2), lease * 4),
        )

    def worker_options(self) -> dict[str, Any]:
        return {
            "pacer": self.pacer,
            "lease": timedelta(seconds=self.settings.delivery_lease_seconds),
            "concurrency": self.settings.delivery_concurrency,
            "source": self.source_for,
        }

    def worker(self, *, on_unreachable: UnreachableHook | None = None, name: str | None = None,
               **overrides: Any) -> DeliveryWorker:
        options = self.options | overrides
        return DeliveryWorker(
            db=self.db,
            senders=self.senders,
            clock=self.clock,
            max_attempts=self.settings.delivery_max_attempts,
            on_unreachable=on_unreachable,
            name=name,
            **options,
        )

    async def close(self) -> None:
        await self.limiter.close()


def install(core: Any) -> None:
    """Share one set of rate limits between ``core.outbound`` and the core's workers."""
    engine = DeliveryEngine(
        settings=core.settings, db=core.db, clock=core.clock, senders=core.senders
    )
    core.extras["delivery"] = engine
    engine.options.update(core.extras.get("delivery_worker_options", {}))
    core.extras["delivery_worker_options"] = engine.options
    core.outbound.pacer = engine.pacer
    core.on_stop(engine.close)
