"""kill -9 of ``gongnon sync run`` mid-sync, on PostgreSQL: nothing lost, nothing sent twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core import commands as c
from core.adapters.orm_delivery import Delivery
from core.adapters.orm_sync import SyncOutbox
from core.bootstrap import Core, bootstrap
from core.domain.model import ProposalStatus
from tests.conftest import make_settings
from tests.fakes.forum import FakeForum
from tests.support import PG_ENV, eventually, fresh_pg_database, pg_base_url

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "forum-token"


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    base = pg_base_url()
    if base is None:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} must be set in CI: the kill -9 test needs PostgreSQL")
        pytest.skip(f"{PG_ENV} is not set (CI sets it)")
    async with fresh_pg_database(base) as url:
        yield url


def relay_process(url: str, forum: FakeForum, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GONGNON_")}
    env.update(
        GONGNON_DATA_DIR=str(tmp_path),
        GONGNON_DATABASE_URL=url,
        GONGNON_FORUM_BACKEND="http",
        GONGNON_FORUM_URL=forum.url,
        GONGNON_FORUM_TOKEN=TOKEN,
        GONGNON_FORUM_TIMEOUT_SECONDS="1",
        GONGNON_SYNC_LEASE_SECONDS="2",
        GONGNON_SYNC_BACKOFF_BASE_SECONDS="0.1",
        GONGNON_LOG_LEVEL="WARNING",
    )
    log = (tmp_path / "relay.log").open("wb")
    return subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "bots.cli", "sync", "run", "--idle", "0.1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )


async def person(core: Core, name: str) -> int:
    return int(await core.execute(
        c.EnsureIdentity(channel="telegram", external_id=name, address=f"chat-{name}")
    ))


async def test_kill_9_of_the_relay_mid_sync_loses_and_duplicates_nothing(
    pg_url: str, tmp_path: Path
) -> None:
    forum = FakeForum(token=TOKEN)
    await forum.start()
    settings = make_settings(
        tmp_path, database_url=pg_url, forum_backend="http", forum_url=forum.url,
        forum_token=TOKEN, forum_timeout_seconds=1, sync_lease_seconds=2,
        sync_backoff_base_seconds=0.1,
    )
    core = await bootstrap(settings)  # the system clock: the relay process shares it
    proc: subprocess.Popen[bytes] | None = None
    try:
        people = [await person(core, name) for name in ("a", "b", "c", "d")]
        trackings = []
        for index, pid in enumerate(people[:3]):
            trackings.append(await core.execute(c.SubmitProposal(
                person_id=pid, title=f"제안 번호 {index} 입니다", category="welfare",
                body="동네 복지관 운영 시간을 저녁까지 늘려 주세요.",
            )))
        for tracking in trackings:
            await core.execute(c.SupportProposal(person_id=people[3], tracking=tracking))
            await core.execute(c.AddFeedback(person_id=people[3], tracking=tracking, body="찬성"))
        forum.fail_next("ok", "ok", "ok", "stall")  # the 4th write is taken, then hangs

        proc = relay_process(pg_url, forum, tmp_path)
        await asyncio.wait_for(forum.stalled.wait(), 30)
        os.kill(proc.pid, signal.SIGKILL)  # mid-sync: a row is leased and its answer unseen
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        forum.release.set()

        async with core.db.read() as s:
            sending = (await s.execute(
                select(SyncOutbox).where(SyncOutbox.status == "sending")
            )).scalars().all()
        assert sending, "the killed relay left a leased row behind"
        # Citizens go on meanwhile; the chat does not wait for any relay.
        await core.execute(c.AddFeedback(person_id=people[0], tracking=trackings[0], body="추가"))

        proc = relay_process(pg_url, forum, tmp_path)  # a new relay takes over after the lease

        async def drained() -> bool:
            return (await core.sync.status())["outbox_depth"] == 0

        await eventually(drained, within=30, every=0.05)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)

        by_ref: dict[str, list[str]] = {}
        for op, ref, _ in forum.writes:
            by_ref.setdefault(ref, []).append(op)
        assert by_ref[trackings[0]] == ["create", "support", "feedback", "feedback"]
        assert by_ref[trackings[1]] == ["create", "support", "feedback"]
        assert by_ref[trackings[2]] == ["create", "support", "feedback"]
        assert len(forum.proposals) == 3
        keys = [key for method, _, key in forum.requests if method == "POST"]
        assert len(keys) > len(set(keys))  # the stalled write was sent again, answered once

        # A status change made on the forum reaches the author's chat (reconciliation).
        record = next(r for r in forum.proposals.values() if r.external_ref == trackings[1])
        forum.change_status(record.id, "accepted", "예산에 반영합니다")
        await core.sync.reconcile()
        view = await core.views.proposal(trackings[1])
        assert view is not None and view.status is ProposalStatus.ACCEPTED
        async with core.db.read() as s:
            to_author = (await s.execute(
                select(Delivery).where(Delivery.address == "chat-b")
            )).scalars().all()
        assert len(to_author) == 1 and "채택" in to_author[0].payload["text"]
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        await core.stop()
        await forum.stop()
