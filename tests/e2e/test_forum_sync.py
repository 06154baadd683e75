"""Forum sync end to end against the fake forum (http adapter), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import select

from bots.forum.routes import ForumMount
from bots.server import CORE
from core import commands as c
from core.adapters.orm import Feedback
from core.adapters.orm_delivery import Delivery
from core.adapters.orm_sync import SyncOutbox
from core.bootstrap import Core, bootstrap
from core.domain.model import ProposalStatus
from core.events import SyncDeadLettered
from tests.conftest import make_settings
from tests.fakes.forum import FakeForum
from tests.support import ManualClock, eventually

SECRET = "whsec-test-0123456789"
TOKEN = "forum-token"


@pytest.fixture
async def forum() -> AsyncIterator[FakeForum]:
    fake = FakeForum(token=TOKEN, webhook_secret=SECRET)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def make_core(
    database_url: str, tmp_path: Path, clock: ManualClock, forum: FakeForum, **extra: object
) -> Core:
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        forum_backend="http",
        forum_url=forum.url,
        forum_token=TOKEN,
        forum_webhook_secret=SECRET,
        forum_timeout_seconds=0.5,
        sync_backoff_base_seconds=1.0,
        sync_backoff_max_seconds=30.0,
        **extra,
    )
    return await bootstrap(settings, clock=clock)


@pytest.fixture
async def sync_core(
    database_url: str, tmp_path: Path, clock: ManualClock, forum: FakeForum
) -> AsyncIterator[Core]:
    core = await make_core(database_url, tmp_path, clock, forum)
    try:
        yield core
    finally:
        await core.stop()


@pytest.fixture
async def webhook(sync_core: Core, forum: FakeForum) -> AsyncIterator[str]:
    """The real ForumMount on an aiohttp server on port 0; the fake forum posts to it."""
    mount = ForumMount(sync_core.settings)
    app = web.Application()
    app[CORE] = sync_core
    mount.routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    forum.webhook_url = f"http://127.0.0.1:{port}/forum/webhook"
    try:
        yield forum.webhook_url
    finally:
        await runner.cleanup()


async def person(core: Core, name: str, channel: str = "web") -> int:
    return int(await core.execute(
        c.EnsureIdentity(channel=channel, external_id=name, address=f"addr-{name}", locale="ko")
    ))


async def submit(core: Core, pid: int, title: str = "버스 정류장 그늘막 설치") -> str:
    return str(await core.execute(
        c.SubmitProposal(
            person_id=pid,
            title=title,
            body="여름에 버스를 기다리는 시민들이 햇볕에 너무 오래 노출됩니다.",
            category="transport",
            region="seoul",
        )
    ))


async def catch_up(core: Core, clock: ManualClock, rounds: int = 12) -> None:
    """Let the relay drain, moving the manual clock past every backoff."""
    relay = core.sync.relay
    for _ in range(rounds):
        await relay.drain()
        status = await core.sync.status()
        if status["outbox_depth"] == 0:
            return
        clock.advance(seconds=60)


def per_proposal(forum: FakeForum) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for op, ref, detail in forum.writes:
        out.setdefault(ref, []).append((op, detail))
    return out


async def test_outage_then_recovery_delivers_everything_once_in_order(
    sync_core: Core, forum: FakeForum, clock: ManualClock
) -> None:
    alice, bob, carol = [await person(sync_core, n) for n in ("alice", "bob", "carol")]
    await forum.go_down()
    first = await submit(sync_core, alice)
    second = await submit(sync_core, bob, "자전거 도로 확충")
    await sync_core.execute(c.SupportProposal(person_id=bob, tracking=first))
    await sync_core.execute(c.SupportProposal(person_id=carol, tracking=first))
    await sync_core.execute(c.AddFeedback(person_id=carol, tracking=first, body="좋은 생각입니다"))
    await sync_core.execute(c.SupportProposal(person_id=alice, tracking=second))
    await sync_core.execute(c.AddFeedback(person_id=alice, tracking=second, body="찬성합니다"))
    sync = sync_core.sync
    assert await sync.relay.drain() == 2  # only each proposal's head is tried, and fails
    status = await sync.status()
    assert status["outbox_depth"] == 7 and status["dead"] == 0 and forum.writes == []
    assert (await sync.health())["status"] == "ok"

    await forum.come_up()
    forum.fail_next("500", "timeout")  # one refusal, one answer lost after the forum committed
    await catch_up(sync_core, clock)

    writes = per_proposal(forum)
    assert [op for op, _ in writes[first]] == ["create", "support", "support", "feedback"]
    assert [op for op, _ in writes[second]] == ["create", "support", "feedback"]
    assert len(forum.writes) == 7  # nothing twice, though keys were retried
    assert Counter(key for _, _, key in forum.requests if key).most_common(1)[0][1] >= 2
    record = next(r for r in forum.proposals.values() if r.external_ref == first)
    assert len(record.supports) == 2 and record.comments[0]["body"] == "좋은 생각입니다"
    assert not any("alice" in ref or "bob" in ref for ref in record.supports)  # pseudonymous
    view = await sync_core.views.proposal(first)
    assert view is not None and view.forum_id == record.id
    async with sync_core.db.read() as s:
        stored = (await s.execute(select(Feedback.forum_id).order_by(Feedback.id))).scalars().all()
    assert all(stored) and len(set(stored)) == 2
    status = await sync.status()
    assert status["outbox_depth"] == 0 and status["sent"] == 7


async def test_support_waits_behind_its_proposal_creation(
    sync_core: Core, forum: FakeForum, clock: ManualClock
) -> None:
    alice, bob = await person(sync_core, "alice"), await person(sync_core, "bob")
    tracking = await submit(sync_core, alice)
    await sync_core.execute(c.SupportProposal(person_id=bob, tracking=tracking))
    forum.fail_next("500")
    relay = sync_core.sync.relay
    assert await relay.run_once() == 1  # the create fails; the support is not even claimed
    assert forum.writes == []
    async with sync_core.db.read() as s:
        rows = (await s.execute(select(SyncOutbox).order_by(SyncOutbox.id))).scalars().all()
    assert [(r.kind, r.status, r.attempts) for r in rows] == [
        ("create", "pending", 1), ("support", "pending", 0)
    ]
    assert rows[0].next_attempt_at > clock.now()  # backed off
    await catch_up(sync_core, clock)
    assert [op for op, _, _ in forum.writes] == ["create", "support"]


async def test_two_relays_never_send_the_same_row(
    database_url: str, tmp_path: Path, clock: ManualClock, forum: FakeForum
) -> None:
    core_a = await make_core(database_url, tmp_path, clock, forum)
    core_b = await bootstrap(core_a.settings, clock=clock, run_migrations=False)
    try:
        people = [await person(core_a, f"p{i}") for i in range(6)]
        for pid in people:
            await submit(core_a, pid)
        forum.delay = 0.05
        relays = [core_a.sync.relay, core_b.sync.relay]
        for _ in range(4):
            await asyncio.gather(*(relay.run_once() for relay in relays))
        creates = [key for method, _, key in forum.requests if method == "POST"]
        assert len(creates) == 6 and len(set(creates)) == 6  # each row sent by one relay, once
        assert len(forum.proposals) == 6
    finally:
        await core_b.stop()
        await core_a.stop()


async def test_dead_letter_alerts_and_retry_revives(
    database_url: str, tmp_path: Path, clock: ManualClock, forum: FakeForum
) -> None:
    core = await make_core(database_url, tmp_path, clock, forum, sync_max_attempts=2)
    alerts: list[SyncDeadLettered] = []

    async def on_dead(event: SyncDeadLettered) -> None:
        alerts.append(event)

    core.bus.after_commit(SyncDeadLettered, on_dead)
    try:
        alice, bob = await person(core, "alice"), await person(core, "bob")
        tracking = await submit(core, alice)
        await core.execute(c.SupportProposal(person_id=bob, tracking=tracking))
        await forum.go_down()
        sync = core.sync
        await catch_up(core, clock, rounds=3)
        await core.bus.drain()
        status = await sync.status()
        assert status["dead"] == 1 and status["pending"] == 1  # the support waits behind it
        assert status["dead_letters"][0]["kind"] == "create"
        assert [(a.kind, a.tracking, a.attempts) for a in alerts] == [("create", tracking, 2)]
        health = await sync.health()
        assert health["status"] == "degraded" and health["dead"] == 1

        await forum.come_up()
        assert await sync.retry() == 1
        await catch_up(core, clock)
        assert [op for op, _, _ in forum.writes] == ["create", "support"]
        assert (await sync.health())["status"] == "ok"
    finally:
        await core.stop()


async def test_forum_refusal_is_dead_at_once(
    sync_core: Core, forum: FakeForum, clock: ManualClock
) -> None:
    forum.token = "rotated"  # our token is refused: 401 will not get better by retrying
    await submit(sync_core, await person(sync_core, "alice"))
    await sync_core.sync.relay.drain()
    status = await sync_core.sync.status()
    assert status["dead"] == 1 and "401" in status["dead_letters"][0]["error"]


async def test_old_pending_row_degrades_health(
    sync_core: Core, forum: FakeForum, clock: ManualClock
) -> None:
    await forum.go_down()
    await submit(sync_core, await person(sync_core, "alice"))
    sync = sync_core.sync
    assert (await sync.health())["status"] == "ok"
    clock.advance(seconds=sync_core.settings.sync_degraded_after_seconds + 1)
    health = await sync.health()
    assert health["status"] == "degraded" and health["outbox_depth"] == 1


async def test_forum_status_change_by_webhook_reaches_the_author(
    sync_core: Core, forum: FakeForum, clock: ManualClock, webhook: str
) -> None:
    clock.current = clock.current.fromtimestamp(time.time(), tz=clock.current.tzinfo)
    alice = await person(sync_core, "alice", channel="telegram")
    tracking = await submit(sync_core, alice)
    await catch_up(sync_core, clock)
    forum_id = next(iter(forum.proposals))
    event = forum.change_status(forum_id, "under_review", "담당 부서에서 검토합니다")
    assert await forum.deliver(event, times=2) == [200, 409]  # the repeat is refused
    view = await sync_core.views.proposal(tracking)
    assert view is not None and view.status is ProposalStatus.UNDER_REVIEW
    assert view.history[-1].source == "forum"
    async with sync_core.db.read() as s:
        rows = (await s.execute(select(Delivery))).scalars().all()
    assert [(r.channel, r.address) for r in rows] == [("telegram", "addr-alice")]
    assert "검토 중" in rows[0].payload["text"]

    newer = forum.change_status(forum_id, "accepted", "채택되었습니다")
    older = dict(event, id="evt_late_copy")  # a late event with an older version
    assert await forum.deliver(newer) == [200]
    assert await forum.deliver(older) == [200]
    view = await sync_core.views.proposal(tracking)
    assert view is not None and view.status is ProposalStatus.ACCEPTED

    answer = forum.answer(forum_id, "예산을 반영하겠습니다.")
    comment = forum.comment(forum_id, "저도 찬성합니다")
    assert await forum.deliver(answer) == [200] and await forum.deliver(comment) == [200]
    view = await sync_core.views.proposal(tracking)
    assert view is not None
    assert [f.body for f in view.feedback] == ["예산을 반영하겠습니다.", "저도 찬성합니다"]


async def test_webhook_refuses_bad_signatures_stale_and_unsigned(
    sync_core: Core, forum: FakeForum, clock: ManualClock, webhook: str
) -> None:
    clock.current = clock.current.fromtimestamp(time.time(), tz=clock.current.tzinfo)
    tracking = await submit(sync_core, await person(sync_core, "alice"))
    await catch_up(sync_core, clock)
    event = forum.change_status(next(iter(forum.proposals)), "under_review", "검토")
    import json

    body = json.dumps(event).encode()
    good = forum.sign(body)
    forged = dict(good, **{"X-Gongnon-Signature": "v1=" + "0" * 64})
    stale = forum.sign(body, timestamp=int(time.time()) - 301)
    unsigned = {"Content-Type": "application/json"}
    assert await forum.deliver(event, headers=forged) == [401]
    assert await forum.deliver(event, headers=stale) == [401]
    assert await forum.deliver(event, headers=unsigned) == [401]
    view = await sync_core.views.proposal(tracking)
    assert view is not None and view.status is ProposalStatus.RECEIVED
    assert await forum.deliver(event, headers=good) == [200]
    view = await sync_core.views.proposal(tracking)
    assert view is not None and view.status is ProposalStatus.UNDER_REVIEW


async def test_lost_webhook_is_caught_up_by_reconciliation(
    sync_core: Core, forum: FakeForum, clock: ManualClock
) -> None:
    alice, bob = await person(sync_core, "alice"), await person(sync_core, "bob", "telegram")
    tracking = await submit(sync_core, alice)
    await sync_core.execute(c.FollowProposal(person_id=bob, tracking=tracking))
    await sync_core.execute(c.AddFeedback(person_id=alice, tracking=tracking, body="추가 의견"))
    await catch_up(sync_core, clock)
    forum_id = next(iter(forum.proposals))
    forum.change_status(forum_id, "forwarded", "교통부로 이송했습니다", expected_date="2026-12-31")
    sync = sync_core.sync
    read = await sync.reconcile()
    assert read == 2  # our own comment's echo (skipped) and the status change
    view = await sync_core.views.proposal(tracking)
    assert view is not None and view.status is ProposalStatus.FORWARDED
    assert len(view.feedback) == 1  # the echo of alice's comment was not added again
    async with sync_core.db.read() as s:
        rows = (await s.execute(select(Delivery).order_by(Delivery.id))).scalars().all()
    assert sorted(r.address for r in rows) == ["addr-alice", "addr-bob"]
    status = await sync.status()
    assert status["cursor"] == "2"
    assert await sync.reconcile() == 0  # caught up: nothing again, nothing notified twice
    async with sync_core.db.read() as s:
        assert len((await s.execute(select(Delivery))).scalars().all()) == 2


async def test_the_chat_never_waits_on_the_forum(
    database_url: str, tmp_path: Path, clock: ManualClock, forum: FakeForum
) -> None:
    core = await make_core(database_url, tmp_path, clock, forum, run_workers=True)
    await core.start()
    try:
        alice = await person(core, "alice")
        forum.fail_next("stall")  # the forum takes the first write and then hangs
        first = await asyncio.wait_for(submit(core, alice), 5)
        await asyncio.wait_for(forum.stalled.wait(), 5)
        second = await asyncio.wait_for(submit(core, alice, "자전거 도로 확충"), 2)
        await asyncio.wait_for(
            core.execute(c.AddFeedback(person_id=alice, tracking=first, body="덧붙입니다")), 2
        )
        assert first != second
        forum.release.set()
        await eventually(lambda: len(forum.writes) == 3, within=5, every=0.05)
        assert sorted(op for op, _, _ in forum.writes) == ["create", "create", "feedback"]
    finally:
        await core.stop()


async def _status_texts(core: Core) -> list[str]:
    async with core.db.read() as s:
        rows = (await s.execute(select(Delivery).order_by(Delivery.id))).scalars().all()
    return [r.payload["text"] for r in rows if "상태" in r.payload["text"]
            or "status" in r.payload["text"].lower()]


async def test_an_officials_status_change_reaches_the_forum_once_then_citizens(
    sync_core: Core, forum: FakeForum, clock: ManualClock, webhook: str
) -> None:
    clock.current = clock.current.fromtimestamp(time.time(), tz=clock.current.tzinfo)
    alice = await person(sync_core, "alice", channel="telegram")
    tracking = await submit(sync_core, alice)
    await catch_up(sync_core, clock)
    forum_id = next(iter(forum.proposals))
    await sync_core.execute(c.ChangeStatus(
        tracking=tracking, status=ProposalStatus.UNDER_REVIEW, reason="검토를 시작합니다",
        actor="slack:U1", source="slack"))
    # not told yet: the forum (the system of record) has not accepted it
    assert await _status_texts(sync_core) == []
    await catch_up(sync_core, clock)
    assert forum.proposals[forum_id].status == "under_review"
    assert [w for w in forum.writes if w[0] == "status"] == [
        ("status", tracking, "under_review")]
    # the forum's webhook echoes the change: recognised by its version, not told twice
    echo = forum.events[-1]
    assert await forum.deliver(echo) == [200]
    texts = await _status_texts(sync_core)
    assert len(texts) == 1 and "검토 중" in texts[0]
    view = await sync_core.views.proposal(tracking)
    assert view is not None and view.status is ProposalStatus.UNDER_REVIEW
    assert len(view.history) == 2


async def test_a_conflict_resolves_to_the_forum_and_citizens_never_hear_the_undone(
    sync_core: Core, forum: FakeForum, clock: ManualClock, webhook: str
) -> None:
    clock.current = clock.current.fromtimestamp(time.time(), tz=clock.current.tzinfo)
    alice = await person(sync_core, "alice", channel="telegram")
    tracking = await submit(sync_core, alice)
    await catch_up(sync_core, clock)
    forum_id = next(iter(forum.proposals))
    # the forum moves first (its webhook is lost), then an official moves the other way here
    forum.change_status(forum_id, "forwarded", "국토교통부로 넘겼습니다")
    await sync_core.execute(c.ChangeStatus(
        tracking=tracking, status=ProposalStatus.NOT_ACCEPTED, reason="예산이 없습니다",
        actor="slack:U1", source="slack"))
    await catch_up(sync_core, clock)
    # the rule: the forum is the system of record; its status stands here too
    assert forum.proposals[forum_id].status == "forwarded"
    view = await sync_core.views.proposal(tracking)
    assert view is not None and view.status is ProposalStatus.FORWARDED
    texts = await _status_texts(sync_core)
    assert len(texts) == 1
    assert "불수용" not in texts[0] and "수용하지" not in texts[0]  # never told what was undone
    async with sync_core.db.read() as s:
        row = (await s.execute(select(SyncOutbox).where(SyncOutbox.kind == "status"))).scalar_one()
    assert row.status == "sent" and (row.last_error or "").startswith("conflict")
