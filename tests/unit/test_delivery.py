"""The delivery engine on SQLite and PostgreSQL: outcomes, priorities, 429s, retries, leases."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select

from core import commands as c
from core.adapters.orm import Identity
from core.adapters.orm_delivery import Delivery
from core.bootstrap import Core
from core.delivery import DeliveryRepository, DeliveryWorker, Outgoing, push_report
from core.messages import Reply, ReplyKind
from core.ports import (
    ChannelCapabilities,
    ChannelLimits,
    PermanentSendError,
    RetryLater,
    TransientSendError,
    Unreachable,
)
from core.ratelimit import MemoryRateLimiter, Pacer
from tests.support import ManualClock, eventually


class ScriptedSender:
    """A Sender whose answers tests script per address; records what it sent, in order."""

    channel = "telegram"
    capabilities = ChannelCapabilities()

    def __init__(self, *, limits: ChannelLimits | None = None, delay: float = 0.0) -> None:
        self.limits = limits or ChannelLimits(per_second=1000.0)
        self.delay = delay
        self.sent: list[tuple[str, str]] = []
        self.stamps: list[float] = []
        self.errors: dict[str, list[Exception]] = {}

    def fail(self, address: str, *errors: Exception) -> None:
        self.errors.setdefault(address, []).extend(errors)

    async def send(self, address: str, reply: Reply, *, edit_ref: str | None = None) -> str | None:
        if self.delay:
            await asyncio.sleep(self.delay)
        queue = self.errors.get(address)
        if queue:
            raise queue.pop(0)
        self.sent.append((address, reply.text))
        self.stamps.append(time.monotonic())
        return f"m{len(self.sent)}"


def push(text: str = "설문에 참여해 주세요") -> Reply:
    return Reply(text=text, kind=ReplyKind.PUSH)


def note(text: str = "제안 상태가 바뀌었습니다") -> Reply:
    return Reply(text=text, kind=ReplyKind.NOTIFICATION)


async def enqueue(core: Core, items: Sequence[Outgoing]) -> int:
    async with core.db.write() as session:
        return await DeliveryRepository(session).enqueue_many(items, now=core.clock.now())


def outgoing(n: int, *, push_id: int = 1, reply: Reply | None = None, start: int = 1,
             **kw: object) -> list[Outgoing]:
    return [
        Outgoing(
            dedupe_key=f"push:{push_id}:telegram:{i}",
            channel="telegram",
            address=str(i),
            reply=reply or push(),
            push_id=push_id,
            **kw,  # type: ignore[arg-type]
        )
        for i in range(start, start + n)
    ]


async def statuses(core: Core) -> dict[str, str]:
    async with core.db.read() as session:
        rows = await session.execute(select(Delivery.address, Delivery.status))
        return {r.address: r.status for r in rows}


async def row(core: Core, address: str) -> Delivery:
    async with core.db.read() as session:
        found = (
            await session.execute(select(Delivery).where(Delivery.address == address))
        ).scalar_one()
        return found


def worker(core: Core, sender: ScriptedSender, **kw: object) -> DeliveryWorker:
    core.register_sender(sender)
    return DeliveryWorker(
        db=core.db,
        senders=core.senders,
        clock=core.clock,
        on_unreachable=core.mark_unreachable,
        **kw,  # type: ignore[arg-type]
    )


async def report(core: Core, push_id: int) -> dict[str, int]:
    async with core.db.read() as session:
        return await push_report(session, push_id)


# --- enqueue and outcomes ------------------------------------------------------------


async def test_enqueue_is_unique_per_key_and_reports_per_push(core: Core) -> None:
    assert await enqueue(core, outgoing(5)) == 5
    assert await enqueue(core, outgoing(7)) == 2  # five were there already
    async with core.db.write() as session:
        again = await DeliveryRepository(session).enqueue(
            dedupe_key="push:1:telegram:1", channel="telegram", address="1", reply=push(),
            now=core.clock.now(), push_id=1,
        )
    assert again is False
    rep = await report(core, 1)
    assert rep["pending"] == 7 and rep["sent"] == 0 and rep["opted_out"] == 0


async def test_every_outcome_is_recorded(core: Core) -> None:
    sender = ScriptedSender()
    await enqueue(core, outgoing(5))
    sender.fail("2", Unreachable("bot was blocked by the user"))
    sender.fail("3", PermanentSendError("chat not found"))
    sender.fail("4", TransientSendError("502"))
    w = worker(core, sender)
    assert await w.run_once() == 5
    assert await statuses(core) == {
        "1": "sent", "2": "unreachable", "3": "failed", "4": "pending", "5": "sent",
    }
    first = await row(core, "1")
    assert first.message_ref == "m1" and first.sent_at == core.clock.now()
    assert first.lease_owner is None and first.attempts == 1
    rep = await report(core, 1)
    assert (rep["sent"], rep["unreachable"], rep["failed"], rep["pending"]) == (2, 1, 1, 1)


async def test_unreachable_marks_the_identity_and_drops_its_queue(core: Core) -> None:
    await core.execute(c.EnsureIdentity(channel="telegram", external_id="42", address="42"))
    await enqueue(core, outgoing(1, start=42))
    await enqueue(core, outgoing(1, start=42, push_id=2))
    sender = ScriptedSender()
    sender.fail("42", Unreachable("Forbidden: bot was blocked by the user"))
    w = worker(core, sender, batch=1)
    assert await w.run_once() == 1
    async with core.db.read() as session:
        identity = (await session.execute(select(Identity))).scalar_one()
    assert identity.reachable is False
    assert (await report(core, 1))["unreachable"] == 1
    assert (await report(core, 2))["unreachable"] == 1  # never attempted: nobody to send to
    assert sender.sent == []


async def test_transient_errors_retry_with_backoff_then_fail(core: Core) -> None:
    clock: ManualClock = core.clock  # type: ignore[assignment]
    await enqueue(core, outgoing(1))
    sender = ScriptedSender()
    sender.fail("1", *[TransientSendError("timeout")] * 3)
    w = worker(core, sender, max_attempts=3)
    waits = []
    for attempt in (1, 2):
        before = clock.now()
        assert await w.run_once() == 1
        due = (await row(core, "1")).next_attempt_at - before
        # 2^attempt seconds with jitter between half and all of it
        assert timedelta(seconds=2**attempt / 2) <= due <= timedelta(seconds=2**attempt)
        assert await w.run_once() == 0  # not due yet
        waits.append(due)
        clock.advance(seconds=due.total_seconds() + 0.001)
    assert await w.run_once() == 1
    final = await row(core, "1")
    assert final.status == "failed" and final.attempts == 3 and "timeout" in final.last_error


async def test_transient_retry_then_success(core: Core) -> None:
    clock: ManualClock = core.clock  # type: ignore[assignment]
    await enqueue(core, outgoing(1))
    sender = ScriptedSender()
    sender.fail("1", TransientSendError("502 Bad Gateway"))
    w = worker(core, sender)
    await w.run_once()
    clock.advance(seconds=3)
    await w.run_once()
    assert (await row(core, "1")).status == "sent" and sender.sent == [("1", push().text)]


# --- 429 ---------------------------------------------------------------------------


async def test_retry_after_pauses_the_chat_and_is_not_a_failure(core: Core) -> None:
    clock: ManualClock = core.clock  # type: ignore[assignment]
    await enqueue(core, outgoing(2))
    sender = ScriptedSender(limits=ChannelLimits(per_second=1000, per_address_per_second=1))
    sender.fail("1", RetryLater(3))
    pacer = Pacer(MemoryRateLimiter(), limits_of=lambda _c: sender.limits)
    w = worker(core, sender, pacer=pacer)
    await w.run_once()
    first = await row(core, "1")
    assert first.status == "pending" and first.attempts == 0
    assert first.next_attempt_at == clock.now() + timedelta(seconds=3)
    assert (await pacer.try_take("telegram", "1")).wait > 2.5  # that chat is paused…
    assert (await row(core, "2")).status == "sent"  # …the others are not


async def test_429s_on_two_chats_pause_the_whole_bot(core: Core) -> None:
    await enqueue(core, outgoing(4))
    sender = ScriptedSender()
    sender.fail("1", RetryLater(2))
    sender.fail("2", RetryLater(2))
    pacer = Pacer(MemoryRateLimiter(), limits_of=lambda _c: sender.limits)
    w = worker(core, sender, pacer=pacer, batch=2)
    await w.run_once()
    assert (await pacer.try_take("telegram", "99")).wait > 1.5
    assert sender.sent == []


async def test_outbound_waits_out_a_429_then_sends(core: Core) -> None:
    sender = ScriptedSender()
    core.register_sender(sender)
    pacer = Pacer(MemoryRateLimiter(), limits_of=lambda _c: sender.limits)
    core.outbound.pacer = pacer
    sender.fail("7", RetryLater(0.2))
    start = time.monotonic()
    refs = await core.outbound.send_now("telegram", "7", [Reply(text="접수되었습니다")])
    assert refs == ["m1"] and time.monotonic() - start >= 0.19


# --- priorities ------------------------------------------------------------------------


async def test_notifications_are_claimed_before_pushes(core: Core) -> None:
    await enqueue(core, outgoing(5))
    await enqueue(core, outgoing(2, push_id=9, reply=note(), start=100))
    sender = ScriptedSender()
    w = worker(core, sender, batch=3)
    items = await w.claim()
    assert [i.address for i in items] == ["100", "101", "1"]


async def test_an_answer_overtakes_a_push_in_progress(core: Core) -> None:
    """At 20/s a push holds the bucket; send_now gets the very next token."""
    limits = ChannelLimits(per_second=20, per_address_per_second=1)
    sender = ScriptedSender(limits=limits)
    pacer = Pacer(MemoryRateLimiter(), limits_of=lambda _c: limits, headroom=0.0)
    core.outbound.pacer = pacer
    await enqueue(core, outgoing(60))
    w = worker(core, sender, pacer=pacer, concurrency=8)
    task = asyncio.create_task(w.run(idle=0.05))
    try:
        await eventually(lambda: len(sender.sent) >= 10)
        overtaken = []
        for n in range(3):
            before = len(sender.sent)
            await core.outbound.send_now("telegram", f"person{n}", [Reply(text="네, 접수했습니다")])
            answer_at = next(
                i for i, (addr, _t) in enumerate(sender.sent) if addr == f"person{n}"
            )
            overtaken.append(answer_at - before)
            await asyncio.sleep(0.12)
        # the answer takes the very next token: at most the one push send already granted
        # a token goes out between the call and the answer (counted, not timed)
        assert max(overtaken) <= 1, overtaken
    finally:
        w.stop()
        await task
    answers = [i for i, (addr, _t) in enumerate(sender.sent) if addr.startswith("person")]
    assert len(answers) == 3
    # answers took their turn: no one-second window holds more than the limit (+1 at its edge)
    stamps = sender.stamps
    busiest = max(
        sum(1 for t in stamps[i:] if t - start < 1.0) for i, start in enumerate(stamps)
    )
    assert busiest <= 21, busiest


# --- not_before ------------------------------------------------------------------------


async def test_a_push_is_never_sent_before_its_time(core: Core) -> None:
    clock: ManualClock = core.clock  # type: ignore[assignment]
    later = clock.now() + timedelta(hours=11)
    await enqueue(core, outgoing(3, not_before=later))
    sender = ScriptedSender()
    held: list[int] = []

    def gate(item, now):  # type: ignore[no-untyped-def]
        held.append(item.id)
        return now + timedelta(minutes=5) if item.address == "2" else None

    w = worker(core, sender, push_gate=gate)
    assert await w.run_once() == 0
    clock.advance(hours=11)
    assert await w.run_once() == 3
    assert sorted(a for a, _ in sender.sent) == ["1", "3"]
    second = await row(core, "2")
    assert second.status == "pending" and second.attempts == 0
    assert second.next_attempt_at == clock.now() + timedelta(minutes=5)


# --- leases --------------------------------------------------------------------------


async def test_a_dead_workers_rows_are_reclaimed_after_the_lease(core: Core) -> None:
    clock: ManualClock = core.clock  # type: ignore[assignment]
    await enqueue(core, outgoing(4))
    sender = ScriptedSender()
    dead = worker(core, sender, name="dead", lease=timedelta(seconds=30), batch=3)
    alive = worker(core, sender, name="alive", lease=timedelta(seconds=30))
    taken = await dead.claim()  # …and then the process is killed
    assert len(taken) == 3
    assert await alive.run_once() == 1  # only the free row
    clock.advance(seconds=29)
    assert await alive.run_once() == 0
    clock.advance(seconds=2)
    assert await alive.run_once() == 3
    assert sorted(a for a, _ in sender.sent) == ["1", "2", "3", "4"]
    # The dead worker, were it only stalled, cannot overwrite the new owner's record.
    recorded = (await row(core, taken[0].address)).message_ref
    await dead.deliver(taken[0])
    assert (await row(core, taken[0].address)).message_ref == recorded
    rep = await report(core, 1)
    assert rep["sent"] == 4


async def test_leases_are_renewed_while_held(core: Core) -> None:
    clock: ManualClock = core.clock  # type: ignore[assignment]
    await enqueue(core, outgoing(2))
    w = worker(core, ScriptedSender(), lease=timedelta(seconds=10))
    items = await w.claim()
    clock.advance(seconds=8)
    await w.outbox.renew([i.id for i in items], clock.now())
    clock.advance(seconds=8)
    other = worker(core, ScriptedSender(), name="other")
    assert await other.claim() == []


# --- the running pipeline ------------------------------------------------------------


async def test_run_sends_everyone_once_and_stops_cleanly(core: Core) -> None:
    await enqueue(core, outgoing(300))
    sender = ScriptedSender(delay=0.001)
    pacer = Pacer(MemoryRateLimiter(), limits_of=lambda _c: sender.limits)
    w = worker(core, sender, pacer=pacer, concurrency=16, batch=50)
    task = asyncio.create_task(w.run(idle=0.05))
    async def all_sent() -> bool:
        return (await report(core, 1))["sent"] == 300

    await eventually(all_sent)
    w.stop()
    await task
    assert sorted(int(a) for a, _ in sender.sent) == list(range(1, 301))
    assert (await report(core, 1))["sent"] == 300


async def test_a_push_at_the_limit_never_overfills_a_window(core: Core) -> None:
    """At 40/s with sends that take a while to answer, the worker sends a window's worth and
    then exactly as the places come free: no one-second window ever holds more than 40 (each
    stamp is taken inside the send, between its take and its settle), and stopping mid-push
    leaves no place taken for a send that never happened."""
    limits = ChannelLimits(per_second=40)
    sender = ScriptedSender(limits=limits, delay=0.004)
    limiter = MemoryRateLimiter()
    pacer = Pacer(limiter, limits_of=lambda _c: limits)
    await enqueue(core, outgoing(100))
    w = worker(core, sender, pacer=pacer, concurrency=16)
    task = asyncio.create_task(w.run(idle=0.05))
    await eventually(lambda: len(sender.sent) >= 60)
    w.stop()
    await task
    stamps = sorted(sender.stamps)
    busiest = max(
        sum(1 for t in stamps[i:] if t - start < 1.0) for i, start in enumerate(stamps)
    )
    assert busiest <= 40
    assert stamps[40] - stamps[0] >= 1.0  # the 41st waited for the first one's window
    # Once the last send's window has closed, all 40 places are free again: the sends that
    # were waiting in line at the stop gave back whatever they had been granted.
    await asyncio.sleep(max(0.0, stamps[-1] + 1.05 - time.monotonic()))
    grants = await pacer.try_take_many("telegram", [f"p{n}" for n in range(41)])
    assert [g.granted for g in grants] == [True] * 40 + [False]
    rep = await report(core, 1)
    assert rep["sent"] == len(sender.sent) and rep["sent"] + rep["pending"] == 100


class UnreachableLimiterOnSettle(MemoryRateLimiter):
    """Takes work; settling fails (Redis gone between the take and the answer)."""

    async def settle(self, grant):  # type: ignore[no-untyped-def]
        raise ConnectionError("redis: connection refused")


async def test_a_failed_settle_never_turns_a_sent_message_into_a_retry(core: Core) -> None:
    await enqueue(core, outgoing(3))
    sender = ScriptedSender()
    pacer = Pacer(UnreachableLimiterOnSettle(), limits_of=lambda _c: sender.limits)
    w = worker(core, sender, pacer=pacer)
    assert await w.run_once() == 3
    assert (await report(core, 1))["sent"] == 3 and len(sender.sent) == 3


async def test_stop_hands_back_what_was_not_sent(core: Core) -> None:
    await enqueue(core, outgoing(50))
    sender = ScriptedSender(limits=ChannelLimits(per_second=20))
    pacer = Pacer(MemoryRateLimiter(), limits_of=lambda _c: sender.limits)
    w = worker(core, sender, pacer=pacer, concurrency=4)
    task = asyncio.create_task(w.run(idle=0.05))
    await eventually(lambda: len(sender.sent) >= 5)
    w.stop()
    await task
    rep = await report(core, 1)
    assert rep["sent"] == len(sender.sent)
    assert rep["sent"] + rep["pending"] == 50 and rep.get("sending", 0) == 0
    async with core.db.read() as session:
        attempts = (await session.execute(
            select(Delivery.attempts).where(Delivery.status == "pending")
        )).scalars().all()
    assert set(attempts) == {0}
