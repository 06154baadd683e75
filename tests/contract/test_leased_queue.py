"""One contract for every source of leased outbox rows: the database (SQLite, PostgreSQL) and
Redis Streams in front of it (on both databases).

Each test uses only the ``WorkSource`` protocol (``fetch``/``done``) and the outbox a worker
writes outcomes with, so the same suite holds any source to the same promises: a row is held
by one consumer at a time, a dead consumer's rows come back when its lease runs out, a failed
row waits out its backoff, finishing twice changes nothing, the queue's order is kept, and a row
is dead-lettered after its last attempt. The last tests hold ``core.outbox.LeasedQueue`` itself
to a queue-specific ordering (the head-of-line rule the forum outbox uses).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import aliased

from core.adapters.db import Database, migrate
from core.adapters.orm_delivery import Delivery
from core.adapters.redis_streams import StreamSource, redis_client
from core.delivery import Claimed, DeliveryRepository, Outbox, Outcome, Outgoing
from core.delivery.outcomes import classify
from core.messages import Reply, ReplyKind
from core.outbox import Backoff, DatabaseSource, LeasedQueue, WorkSource
from core.ports import TransientSendError
from tests.support import ManualClock

LEASE = timedelta(seconds=30)
CHANNELS = ["telegram"]


@dataclass
class Consumer:
    source: WorkSource[Claimed]
    outbox: Outbox


@dataclass
class Rig:
    """A database with the outbox, and a way to start consumers of one kind of source."""

    kind: str
    db: Database
    clock: ManualClock
    start: Callable[[str], Awaitable[Consumer]]
    consumers: list[Consumer] = field(default_factory=list)

    async def consumer(self, name: str | None = None) -> Consumer:
        made = await self.start(name or f"c-{uuid.uuid4().hex[:6]}")
        self.consumers.append(made)
        return made

    async def let_leases_run_out(self) -> None:
        self.clock.advance(seconds=LEASE.total_seconds() + 1)
        if self.kind == "redis":  # XAUTOCLAIM goes by Redis' own idle time
            await asyncio.sleep(0.15)

    async def kill(self, consumer: Consumer) -> None:
        """Gone without a word: nothing handed back, nothing acknowledged."""
        self.consumers.remove(consumer)
        if isinstance(consumer.source, StreamSource):
            feeder = consumer.source._feeder
            if feeder is not None:
                feeder.cancel()
                await asyncio.gather(feeder, return_exceptions=True)
            await consumer.source.redis.aclose()


@pytest.fixture(params=["database", "redis"])
async def rig(
    request: pytest.FixtureRequest, database_url: str, clock: ManualClock
) -> AsyncIterator[Rig]:
    db = Database(database_url)
    await migrate(db)
    prefix = f"gongnon-test:{uuid.uuid4().hex}"
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None

    async def start(name: str) -> Consumer:
        outbox = Outbox(db, owner=name, lease=LEASE)
        source: WorkSource[Claimed]
        if redis_url is None:
            source = DatabaseSource(
                lambda limit: outbox.claim(CHANNELS, limit, clock.now())
            )
        else:
            source = StreamSource(
                redis_client(redis_url, block_ms=50),
                outbox,
                channels=lambda: CHANNELS,
                clock=clock,
                consumer=name,
                prefix=prefix,
                block_ms=50,
                claim_idle=timedelta(milliseconds=100),
                backlog=lambda _channel: 1000,
                hold=timedelta(minutes=5),
            )
        await source.start()
        return Consumer(source, outbox)

    made = Rig(request.param, db, clock, start)
    try:
        yield made
    finally:
        for consumer in made.consumers:
            await consumer.source.close()
        if redis_url is not None:
            redis = redis_client(redis_url, block_ms=50)
            keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()
        await db.dispose()


async def enqueue(
    db: Database,
    clock: ManualClock,
    count: int,
    *,
    kind: ReplyKind = ReplyKind.PUSH,
    start: int = 1,
    address: Callable[[int], str] = str,
) -> None:
    items = [
        Outgoing(
            dedupe_key=f"{kind.value}:{n}",
            channel="telegram",
            address=address(n),
            reply=Reply(text=f"알림 {n}", kind=kind),
        )
        for n in range(start, start + count)
    ]
    async with db.write() as session:
        await DeliveryRepository(session).enqueue_many(items, now=clock.now())


async def fetch_until(
    consumer: Consumer, count: int, *, within: float = 5.0, limit: int = 100
) -> list[Claimed]:
    """What a consumer gets within ``within`` seconds, stopping once it has ``count``."""
    got: list[Claimed] = []
    deadline = time.monotonic() + within
    while len(got) < count and time.monotonic() < deadline:
        got += await consumer.source.fetch(limit, wait=0.05)
    return got


async def rows(rig: Rig) -> dict[str, Delivery]:
    async with rig.db.read() as session:
        found = (await session.execute(select(Delivery))).scalars().all()
    return {r.address: r for r in found}


def sent(item: Claimed, rig: Rig) -> Outcome:
    now = rig.clock.now()
    return Outcome(item=item, status="sent", attempts=item.attempts, next_attempt_at=now,
                   message_ref="m", sent_at=now)


async def finish(consumer: Consumer, outcomes: list[Outcome]) -> None:
    await consumer.outbox.record(outcomes)
    await consumer.source.done([o.item for o in outcomes])


# --- the contract ------------------------------------------------------------------------


async def test_concurrent_consumers_never_hold_the_same_row(rig: Rig) -> None:
    await enqueue(rig.db, rig.clock, 60)
    consumers = [await rig.consumer() for _ in range(4)]
    taken: list[list[int]] = [[] for _ in consumers]

    async def drain(n: int) -> None:
        deadline = time.monotonic() + 10
        while sum(map(len, taken)) < 60 and time.monotonic() < deadline:
            items = await consumers[n].source.fetch(7, wait=0.05)
            taken[n] += [i.id for i in items]
            await finish(consumers[n], [sent(i, rig) for i in items])

    await asyncio.gather(*(drain(n) for n in range(len(consumers))))
    everything = [row_id for ids in taken for row_id in ids]
    assert sorted(everything) == sorted(set(everything))  # nobody held a row twice
    assert len(everything) == 60
    assert {r.status for r in (await rows(rig)).values()} == {"sent"}


async def test_a_dead_consumers_rows_come_back_after_the_lease(rig: Rig) -> None:
    await enqueue(rig.db, rig.clock, 5)
    dead = await rig.consumer("dead")
    held = await fetch_until(dead, 5)
    assert len(held) == 5 and {i.attempts for i in held} == {1}
    await rig.kill(dead)
    alive = await rig.consumer("alive")
    assert await fetch_until(alive, 1, within=0.4) == []  # still leased
    await rig.let_leases_run_out()
    again = await fetch_until(alive, 5)
    assert sorted(i.id for i in again) == sorted(i.id for i in held)
    assert {i.attempts for i in again} == {2}  # the lost attempt counts
    await finish(alive, [sent(i, rig) for i in again])
    # The dead one, were it only stalled, can no longer write over the new owner's outcome.
    await dead.outbox.record([Outcome(item=held[0], status="failed", attempts=1,
                                      next_attempt_at=rig.clock.now(), error="late")])
    assert {r.status for r in (await rows(rig)).values()} == {"sent"}


async def test_renewed_leases_are_not_taken_over(rig: Rig) -> None:
    await enqueue(rig.db, rig.clock, 2)
    first = await rig.consumer("first")
    held = await fetch_until(first, 2)
    for _ in range(3):  # well past one lease in all, renewed before each runs out
        rig.clock.advance(seconds=LEASE.total_seconds() * 2 / 3)
        await first.outbox.renew([i.id for i in held], rig.clock.now())
    if rig.kind == "redis":
        await asyncio.sleep(0.15)  # its entries are idle long enough to be autoclaimed
    second = await rig.consumer("second")
    assert await fetch_until(second, 1, within=0.4) == []


async def test_a_failed_row_waits_out_its_backoff(rig: Rig) -> None:
    backoff = Backoff(base=2.0, cap=300.0, rng=random.Random(3))
    await enqueue(rig.db, rig.clock, 1)
    consumer = await rig.consumer()
    for attempt in (1, 2, 3):
        [item] = await fetch_until(consumer, 1)
        assert item.attempts == attempt
        before = rig.clock.now()
        outcome = classify(item, TransientSendError("502"), now=before, backoff=backoff,
                           max_attempts=10)
        await finish(consumer, [outcome])
        wait = (await rows(rig))["1"].next_attempt_at - before
        step = 2.0 * 2 ** (attempt - 1)
        assert timedelta(seconds=step / 2) <= wait <= timedelta(seconds=step)
        rig.clock.advance(seconds=wait.total_seconds() - 0.5)
        consumer.source.wake()
        assert await fetch_until(consumer, 1, within=0.3) == []  # not due yet
        rig.clock.advance(seconds=0.6)
        consumer.source.wake()


def test_backoff_is_one_capped_jittered_doubling() -> None:
    backoff = Backoff(base=2.0, cap=60.0, rng=random.Random(1))
    assert [backoff.step(n) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    for n in range(1, 40):
        seconds = backoff.delay(n).total_seconds()
        assert backoff.step(n) / 2 <= seconds < backoff.step(n)
    assert Backoff(base=2.0, cap=300.0).step(10_000) == 300  # no overflow, ever
    with pytest.raises(ValueError):
        Backoff(base=0, cap=1)


async def test_finishing_twice_changes_nothing(rig: Rig) -> None:
    await enqueue(rig.db, rig.clock, 1)
    consumer = await rig.consumer()
    [item] = await fetch_until(consumer, 1)
    await finish(consumer, [sent(item, rig)])
    first = (await rows(rig))["1"]
    rig.clock.advance(seconds=5)
    await finish(consumer, [Outcome(item=item, status="failed", attempts=9,
                                    next_attempt_at=rig.clock.now(), error="again")])
    second = (await rows(rig))["1"]
    assert (second.status, second.attempts, second.sent_at, second.last_error) == (
        "sent", 1, first.sent_at, None
    )
    assert second.lease_owner is None and second.lease_until is None
    rig.clock.advance(seconds=LEASE.total_seconds() * 2)
    assert await fetch_until(consumer, 1, within=0.3) == []  # finished rows never come back


async def test_the_queue_order_is_kept(rig: Rig) -> None:
    """Deliveries' ordering key: conversation replies, then notifications, then pushes."""
    await enqueue(rig.db, rig.clock, 3, kind=ReplyKind.PUSH, start=1)
    await enqueue(rig.db, rig.clock, 2, kind=ReplyKind.NOTIFICATION, start=10)
    await enqueue(rig.db, rig.clock, 1, kind=ReplyKind.CONVERSATION, start=20)
    consumer = await rig.consumer()
    got = await fetch_until(consumer, 6, limit=6)
    assert [i.kind for i in got] == ["conversation"] + ["notification"] * 2 + ["push"] * 3
    assert [i.address for i in got] == ["20", "10", "11", "1", "2", "3"]


async def test_a_row_is_dead_lettered_after_its_last_attempt(rig: Rig) -> None:
    backoff = Backoff(base=1.0, cap=1.0)
    await enqueue(rig.db, rig.clock, 1)
    consumer = await rig.consumer()
    for attempt in (1, 2, 3):
        [item] = await fetch_until(consumer, 1)
        assert item.attempts == attempt
        outcome = classify(item, TransientSendError("timeout"), now=rig.clock.now(),
                           backoff=backoff, max_attempts=3)
        assert outcome.status == ("failed" if attempt == 3 else "pending")
        await finish(consumer, [outcome])
        rig.clock.advance(seconds=2)
        consumer.source.wake()
    final = (await rows(rig))["1"]
    assert (final.status, final.attempts, final.last_error) == ("failed", 3, "timeout")
    rig.clock.advance(seconds=LEASE.total_seconds() * 2)
    assert await fetch_until(consumer, 1, within=0.3) == []


# --- a queue's own ordering plugged into LeasedQueue ------------------------------------------


def _heads_per_address() -> list[Any]:
    earlier = aliased(Delivery)
    return [
        ~select(earlier.id)
        .where(
            earlier.address == Delivery.address,
            earlier.id < Delivery.id,
            earlier.status.in_(("pending", "sending")),
        )
        .exists()
    ]


HEADS = LeasedQueue(Delivery, order_by=lambda: (Delivery.id,), eligible=_heads_per_address)


async def test_an_eligibility_rule_keeps_strict_order_per_key(
    database_url: str, clock: ManualClock
) -> None:
    """The forum outbox's rule (only the oldest unfinished row of each key may go) on any
    table: per key strictly in order, different keys in parallel, across claimers."""
    db = Database(database_url)
    await migrate(db)
    try:
        await enqueue(db, clock, 6, address=lambda n: "a" if n % 2 else "b")  # a: 1,3,5  b: 2,4,6
        order: list[int] = []
        for _ in range(3):
            async with db.write() as session:
                one = await HEADS.claim(session, owner="x", now=clock.now(), lease=LEASE, limit=10)
            async with db.write() as session:
                two = await HEADS.claim(session, owner="y", now=clock.now(), lease=LEASE, limit=10)
            assert two == []  # the heads are held: nothing behind them may go
            assert len(one) == 2
            for row in one:
                order.append(row.id)
                async with db.write() as session:
                    assert await HEADS.finish(session, row.id, owner="x", status="sent")
                    assert not await HEADS.finish(session, row.id, owner="x", status="sent")
        assert order == [1, 2, 3, 4, 5, 6]
    finally:
        await db.dispose()


async def test_closing_right_after_a_wake_leaves_no_task_behind(rig: Rig) -> None:
    """A worker's ``stop()`` wakes its source and then closes it: the source's own tasks (a
    stream feeder) must end, not swallow the cancel and run on (Python 3.11's ``wait_for``)."""
    consumer = await rig.consumer()
    assert await fetch_until(consumer, 1, within=0.2) == []
    mine = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
    rig.consumers.remove(consumer)
    consumer.source.wake()
    await consumer.source.close()
    await asyncio.sleep(0)
    assert [t.get_name() for t in mine if t.get_name().endswith("-feed") and not t.done()] == []
