"""kill -9 a ``gongnon worker`` mid-push (PostgreSQL, fake Bot API): nobody lost, nobody sent
twice except the messages in flight at the kill; and the same with two workers on Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core.adapters.db import Database, migrate
from core.adapters.orm_delivery import Delivery
from core.delivery import DeliveryRepository, Outgoing, push_report
from core.messages import Reply, ReplyKind
from tests.fakes.telegram_api import FakeTelegram, TelegramLimits
from tests.support import eventually, fresh_pg_database, pg_base_url

pytestmark = pytest.mark.slow

RECIPIENTS = 300
RATE = 200  # messages per second the fake allows (and the worker is told)
CONCURRENCY = 16  # sends a worker has under way at once
PUSH_ID = 1


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    base = pg_base_url()
    if base is None:
        pytest.skip("GONGNON_TEST_DATABASE_URL is not set (CI sets it)")
    async with fresh_pg_database(base) as url:
        yield url


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    limits = TelegramLimits(global_per_s=RATE, per_chat_per_s=1, per_group_per_min=20)
    async with FakeTelegram(limits=limits) as fake:
        yield fake


async def _enqueue(db: Database) -> None:
    from datetime import UTC, datetime

    reply = Reply(text="공론 설문에 참여해 주세요. 3분이면 됩니다.", kind=ReplyKind.PUSH)
    items = [
        Outgoing(
            dedupe_key=f"push:{PUSH_ID}:telegram:{chat}",
            channel="telegram",
            address=str(chat),
            reply=reply,
            push_id=PUSH_ID,
        )
        for chat in range(10_001, 10_001 + RECIPIENTS)
    ]
    async with db.write() as session:
        assert await DeliveryRepository(session).enqueue_many(items, now=datetime.now(UTC)) == len(
            items
        )


def _env(url: str, fake: FakeTelegram, tmp: Path, redis: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GONGNON_")}
    env.update(
        GONGNON_DATABASE_URL=url,
        GONGNON_DATA_DIR=str(tmp),
        GONGNON_TELEGRAM_TOKEN=fake.token,
        GONGNON_TELEGRAM_API_URL=fake.root,
        GONGNON_TELEGRAM_RATE_PER_SECOND=str(RATE),
        GONGNON_DELIVERY_LEASE_SECONDS="1.5",
        GONGNON_DELIVERY_CONCURRENCY=str(CONCURRENCY),
        GONGNON_QUIET_HOURS_START="00:00",  # start == end: no quiet hours
        GONGNON_QUIET_HOURS_END="00:00",
        GONGNON_LOG_LEVEL="WARNING",
    )
    if redis:
        env.update(
            GONGNON_REDIS_URL=redis,
            GONGNON_DELIVERY_REDIS_PREFIX=f"t:{uuid.uuid4().hex}",
            GONGNON_DELIVERY_STREAM_BLOCK_MS="200",
        )
    return env


async def _start(env: dict[str, str], name: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots.cli", "worker", "--name", name,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert b"ready" in line, line
    asyncio.get_running_loop().create_task(_drain(proc))  # keep its pipe from filling up
    return proc


async def _drain(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdout is not None
    while await proc.stdout.read(65536):
        pass


async def _in_flight(db: Database) -> set[str]:
    """Rows a dead worker held: sent or not, their outcome was never written."""
    async with db.read() as session:
        rows = await session.execute(select(Delivery.address).where(Delivery.status == "sending"))
        return {r.address for r in rows}


async def _scenario(url: str, fake: FakeTelegram, tmp: Path, redis: str | None) -> None:
    db = Database(url)
    try:
        await migrate(db)
        await _enqueue(db)
        env = _env(url, fake, tmp, redis)
        names = ["w1", "w2"] if redis else ["w1"]
        workers = [await _start(env, name) for name in names]

        await eventually(lambda: fake.sent >= RECIPIENTS // 3, within=30)
        victim = workers[0]
        victim.send_signal(signal.SIGKILL)
        await victim.wait()
        in_flight = await _in_flight(db)
        workers[0] = await _start(env, "w1-again")

        async def finished() -> bool:
            async with db.read() as session:
                report = await push_report(session, PUSH_ID)
            return report["sent"] == RECIPIENTS

        await eventually(finished, within=40)
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        await db.dispose()

    received = Counter(
        str(call.params["chat_id"])
        for call in fake.calls_to("sendMessage")
        if call.status == 200
    )
    expected = {str(chat) for chat in range(10_001, 10_001 + RECIPIENTS)}
    assert set(received) == expected  # 0 losses
    twice = {chat for chat, n in received.items() if n > 1}
    assert max(received.values()) <= 2
    # Duplicates only among the rows the killed worker held, at most the sends it had under way.
    assert twice <= in_flight, (twice, in_flight)
    assert len(twice) <= CONCURRENCY
    assert fake.violations == 0 and fake.rejected_429 == 0


async def test_kill_9_mid_push_loses_nobody(
    pg_url: str, telegram: FakeTelegram, tmp_path: Path
) -> None:
    await _scenario(pg_url, telegram, tmp_path, None)


async def test_two_workers_on_redis_survive_a_kill_9(
    pg_url: str, telegram: FakeTelegram, tmp_path: Path, redis_url: str
) -> None:
    await _scenario(pg_url, telegram, tmp_path, redis_url)
