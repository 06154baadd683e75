"""One contract for the token buckets, run against memory and Redis (shared across processes)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from core.ports import ChannelLimits
from core.ratelimit import Bucket, MemoryRateLimiter, Pacer, RateLimiter, RedisRateLimiter, acquire


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    url = request.getfixturevalue("redis_url")
    instance = RedisRateLimiter.from_url(url, prefix=f"t:{uuid.uuid4().hex}")
    try:
        yield instance
    finally:
        await _drop(instance)
        await instance.close()


async def _drop(instance: RedisRateLimiter) -> None:
    keys = [k async for k in instance.redis.scan_iter(match=f"{instance.prefix}:*")]
    if keys:
        await instance.redis.delete(*keys)


async def test_burst_then_wait_one_interval(limiter: RateLimiter) -> None:
    bucket = Bucket(key="tg", rate=10.0, burst=3.0)
    assert [await limiter.try_take([bucket]) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = await limiter.try_take([bucket])
    assert 0.05 < wait <= 0.1 + 1e-6


async def test_all_buckets_or_none(limiter: RateLimiter) -> None:
    overall = Bucket(key="tg", rate=100.0, burst=2.0)
    chat = Bucket(key="tg:c:1", rate=1.0, burst=1.0)
    other = Bucket(key="tg:c:2", rate=1.0, burst=1.0)
    assert await limiter.try_take([overall, chat]) == 0.0
    assert await limiter.try_take([overall, chat]) > 0.5  # the chat is spent…
    # …and the refused take left the overall bucket alone: one token is still there.
    assert await limiter.try_take([overall, other]) == 0.0
    assert await limiter.try_take([overall]) > 0.0


async def test_pause_stops_a_bucket_for_everyone(limiter: RateLimiter) -> None:
    bucket = Bucket(key="tg", rate=1000.0, burst=5.0)
    await limiter.pause("tg", 0.3)
    wait = await limiter.try_take([bucket])
    assert 0.2 < wait <= 0.3 + 1e-6
    assert await limiter.try_take([bucket], urgent=True) > 0.2  # a 429 binds answers too
    assert await limiter.try_take([Bucket(key="other", rate=1.0)]) == 0.0


async def test_urgent_hold_keeps_bulk_out(limiter: RateLimiter) -> None:
    bucket = Bucket(key="tg", rate=5.0, burst=1.0)
    assert await limiter.try_take([bucket]) == 0.0
    wait = await limiter.try_take([bucket], urgent=True)  # waits, and holds the next token
    assert wait > 0
    await asyncio.sleep(wait + 0.01)
    assert await limiter.try_take([bucket]) > 0  # bulk: still held for the answer
    assert await limiter.try_take([bucket], urgent=True) == 0.0


async def test_rate_over_a_second_is_respected(limiter: RateLimiter) -> None:
    bucket = Bucket(key="tg", rate=50.0, burst=1.0)
    start = time.monotonic()
    granted = 0
    while time.monotonic() - start < 0.5:
        await acquire(limiter, [bucket])
        granted += 1
    assert 20 <= granted <= 27  # 25 in half a second, plus the one burst token


async def test_memory_forgets_idle_buckets() -> None:
    now = [0.0]
    limiter = MemoryRateLimiter(now=lambda: now[0])
    for chat in range(5000):
        await limiter.try_take([Bucket(key=f"c:{chat}", rate=1.0)])
    now[0] += 5.0
    for chat in range(5000, 9000):
        await limiter.try_take([Bucket(key=f"c:{chat}", rate=1.0)])
    assert len(limiter) < 9000


async def test_pacer_escalates_to_the_whole_bot() -> None:
    limiter = MemoryRateLimiter()
    limits = ChannelLimits(per_second=1000, per_address_per_second=1, per_group_per_minute=20)
    pacer = Pacer(limiter, limits_of=lambda _c: limits)
    assert await pacer.back_off("telegram", "1", 0.5) == "chat"
    assert await pacer.try_take("telegram", "1") > 0.3
    assert await pacer.try_take("telegram", "2") == 0.0
    assert await pacer.back_off("telegram", "3", 0.5) == "global"
    assert await pacer.try_take("telegram", "4") > 0.3
    keys = [b.key for b in pacer.buckets("telegram", "-100")]
    assert keys == ["telegram", "telegram:g:-100"]


_HAMMER = """
import asyncio, sys, time
from core.ratelimit import Bucket, RedisRateLimiter, acquire

async def main():
    limiter = RedisRateLimiter.from_url(sys.argv[1], prefix=sys.argv[2])
    bucket = Bucket(key="shared", rate=float(sys.argv[3]), burst=1.0)
    end = time.time() + float(sys.argv[4])
    while True:
        await acquire(limiter, [bucket])
        if time.time() > end:
            break
        print(repr(time.time()), flush=True)
    await limiter.close()

asyncio.run(main())
"""


async def test_processes_sharing_one_redis_bucket_never_exceed_it(redis_url: str) -> None:
    """Two processes and two in-process clients hammer one bucket: together they keep its rate."""
    prefix = f"t:{uuid.uuid4().hex}"
    rate, seconds = 40.0, 1.5
    env = dict(os.environ)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _HAMMER, redis_url, prefix, str(rate), str(seconds),
            stdout=subprocess.PIPE, env=env,
        )
        for _ in range(2)
    ]
    local = [RedisRateLimiter.from_url(redis_url, prefix=prefix) for _ in range(2)]
    bucket = Bucket(key="shared", rate=rate, burst=1.0)
    stamps: list[float] = []

    async def hammer(instance: RedisRateLimiter) -> None:
        end = time.time() + seconds
        while True:
            await acquire(instance, [bucket])
            if time.time() > end:
                return
            stamps.append(time.time())

    try:
        await asyncio.gather(*(hammer(i) for i in local))
        for proc in procs:
            out, _ = await proc.communicate()
            assert proc.returncode == 0
            stamps.extend(float(line) for line in out.decode().split())
    finally:
        await _drop(local[0])
        for instance in local:
            await instance.close()
    stamps.sort()
    assert len(stamps) >= rate * seconds * 0.5  # the processes did take part
    # No one-second window holds more than rate + the burst token (+1 for clock skew).
    worst = max(
        sum(1 for s in stamps[i:] if s - first < 1.0) for i, first in enumerate(stamps)
    )
    assert worst <= rate + 2
