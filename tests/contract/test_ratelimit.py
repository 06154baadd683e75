"""One contract for the sliding-window limits: memory, and Redis shared across processes."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest

from bots.telegram.bot import TelegramLimits
from core.ports import AddressRate, ChannelLimits
from core.ratelimit import Limit, MemoryRateLimiter, Pacer, RateLimiter, RedisRateLimiter, acquire


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


def busiest_window(stamps: Sequence[float], window: float) -> int:
    """The most sends in any half-open window ``(t - window, t]``, as the fake Bot API counts."""
    ordered = sorted(stamps)
    worst, first = 0, 0
    for last, stamp in enumerate(ordered):
        while ordered[first] <= stamp - window:
            first += 1
        worst = max(worst, last - first + 1)
    return worst


async def take(limiter: RateLimiter, limits: Sequence[Limit], *, urgent: bool = False) -> float:
    """Take places for a send that is answered at once: 0.0 when sent, else the wait."""
    grant = await limiter.try_take(limits, urgent=urgent)
    if grant.granted:
        await limiter.settle(grant)
    return grant.wait


async def test_a_full_window_waits_for_its_oldest_send(limiter: RateLimiter) -> None:
    limit = Limit(key="tg", count=3, window=0.3)
    assert [await take(limiter, [limit]) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = await take(limiter, [limit])
    assert 0.2 < wait <= 0.3 + 1e-6
    await asyncio.sleep(wait + 0.005)
    # The three left the window together: three places again, not one.
    assert [await take(limiter, [limit]) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await take(limiter, [limit]) > 0.2


async def test_a_stall_is_made_up_within_the_window(limiter: RateLimiter) -> None:
    """A sender that woke up late may send what it missed at once, but never more."""
    limit = Limit(key="tg", count=5, window=0.5)
    assert [await take(limiter, [limit]) for _ in range(2)] == [0.0, 0.0]
    await asyncio.sleep(0.1)  # the late wake-up
    assert [await take(limiter, [limit]) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = await take(limiter, [limit])
    assert 0.3 < wait <= 0.4 + 1e-6  # until the first two leave the window
    await asyncio.sleep(wait + 0.005)
    assert [await take(limiter, [limit]) for _ in range(2)] == [0.0, 0.0]
    assert await take(limiter, [limit]) > 0.0


async def test_a_send_in_flight_holds_its_place_until_answered(limiter: RateLimiter) -> None:
    """The platform counts a send when it arrives, which may be as late as its answer: the
    window of a place starts when the send is settled, not when it was taken."""
    limit = Limit(key="tg", count=1, window=0.2)
    grant = await limiter.try_take([limit])
    assert grant.granted
    blocked = await limiter.try_take([limit])
    assert blocked.wait == pytest.approx(0.2, abs=0.01)  # at least a window from now
    await asyncio.sleep(0.25)  # a slow answer: longer than the window
    assert not (await limiter.try_take([limit])).granted
    await limiter.settle(grant)
    wait = (await limiter.try_take([limit])).wait
    assert 0.15 < wait <= 0.2 + 1e-6  # a full window from the answer
    await asyncio.sleep(wait + 0.005)
    assert await take(limiter, [limit]) == 0.0


async def test_a_place_never_used_is_given_back(limiter: RateLimiter) -> None:
    limit = Limit(key="tg", count=1, window=1.0)
    unused = await limiter.try_take([limit])
    assert unused.granted and not (await limiter.try_take([limit])).granted
    await limiter.release(unused)  # its task was stopped before it sent
    assert await take(limiter, [limit]) == 0.0
    assert await take(limiter, [limit]) > 0.9


async def test_many_takes_in_one_step_keep_their_line(limiter: RateLimiter) -> None:
    overall = Limit(key="tg", count=3, window=0.3)
    chats = [Limit(key=f"tg:c:{n}", count=1, window=1.0) for n in range(6)]
    assert await take(limiter, [overall, chats[0]]) == 0.0  # chat 0 is spent for a second
    grants = await limiter.try_take_many([[overall, chat] for chat in chats], patience=0.5)
    # Chat 0 steps aside (its wait is longer than the line's patience); chats 1 and 2 take
    # the overall limit's last two places; chat 3 waits for the oldest, and 4 and 5 behind it.
    assert [g.granted for g in grants] == [False, True, True, False, False, False]
    assert grants[0].wait > 0.5
    assert 0.2 < grants[3].wait <= 0.3 + 1e-6
    assert grants[4].wait == grants[5].wait == grants[3].wait
    for grant in grants[1:3]:
        await limiter.settle(grant)
    assert await take(limiter, [overall, chats[4]]) > 0.2  # the window is full


async def test_all_limits_or_none(limiter: RateLimiter) -> None:
    chat = Limit(key="tg:c:1", count=1, window=1.0)
    other = Limit(key="tg:c:2", count=1, window=1.0)
    overall = Limit(key="tg", count=2, window=1.0)
    assert await take(limiter, [overall, chat]) == 0.0
    assert await take(limiter, [overall, chat]) > 0.5  # the chat is spent…
    # …and the refused take left the overall limit alone: one place is still there.
    assert await take(limiter, [overall, other]) == 0.0
    assert await take(limiter, [overall]) > 0.0


async def test_pause_stops_a_limit_for_everyone(limiter: RateLimiter) -> None:
    limit = Limit(key="tg", count=1000, window=1.0)
    await limiter.pause("tg", 0.3)
    wait = await take(limiter, [limit])
    assert 0.2 < wait <= 0.3 + 1e-6
    assert await take(limiter, [limit], urgent=True) > 0.2  # a 429 binds answers too
    assert await take(limiter, [Limit(key="other", count=1)]) == 0.0


async def test_urgent_hold_keeps_bulk_out(limiter: RateLimiter) -> None:
    limit = Limit(key="tg", count=1, window=0.2)
    assert await take(limiter, [limit]) == 0.0
    wait = await take(limiter, [limit], urgent=True)  # waits, and holds the next place
    assert wait > 0
    await asyncio.sleep(wait + 0.01)
    assert await take(limiter, [limit]) > 0  # bulk: still held for the answer
    assert await take(limiter, [limit], urgent=True) == 0.0


async def test_a_late_sender_keeps_the_rate_and_every_window(limiter: RateLimiter) -> None:
    """Wake-ups 0–15 ms late (a busy machine) cost no rate, and no window goes over."""
    limit = Limit(key="tg", count=20, window=0.2)  # 100/s
    rng = random.Random(7)
    stamps: list[float] = []

    async def oversleep(wait: float) -> None:
        await asyncio.sleep(wait + rng.uniform(0.0, 0.015))

    start = time.monotonic()
    while time.monotonic() - start < 0.8:
        grant = await acquire(limiter, [limit], sleep=oversleep)
        stamps.append(time.monotonic())  # the send: after the take, before the answer
        await limiter.settle(grant)
    # 0.8 s = four windows: 80 sends, plus the fifth window's first ones.
    assert len(stamps) >= 80
    assert busiest_window(stamps, 0.2) <= 20


async def test_memory_forgets_idle_logs() -> None:
    now = [0.0]
    limiter = MemoryRateLimiter(now=lambda: now[0])
    for chat in range(5000):
        await take(limiter, [Limit(key=f"c:{chat}", count=1)])
    now[0] += 5.0
    for chat in range(5000, 9000):
        await take(limiter, [Limit(key=f"c:{chat}", count=1)])
    assert len(limiter) < 9000


async def test_memory_a_dead_senders_places_come_back() -> None:
    """A take never settled (its process died mid-send) frees its place after ``flight``."""
    now = [0.0]
    limiter = MemoryRateLimiter(now=lambda: now[0], flight=5.0)
    limit = Limit(key="tg", count=1, window=1.0)
    assert (await limiter.try_take([limit])).granted  # …and never settled
    now[0] = 5.9
    assert (await limiter.try_take([limit])).wait == pytest.approx(0.1)
    now[0] = 6.0
    assert await take(limiter, [limit]) == 0.0


async def test_memory_late_wake_ups_and_jitter_keep_the_rate_and_every_window() -> None:
    """A minute at 30/s on a simulated clock: wake-ups a few ms late, a 50 ms stall every
    10 s, requests arriving anywhere between the take and the answer (0.5–40 ms later):
    ≥ 0.98 of the rate, and no one-second window as the platform counts it holds over 30."""
    now = [0.0]
    limiter = MemoryRateLimiter(now=lambda: now[0])
    pacer = Pacer(limiter, limits_of=lambda _c: ChannelLimits(per_second=30))
    rng = random.Random(3)
    arrivals: list[float] = []
    stall_at = 10.0
    while now[0] < 60.0:
        grant = await pacer.try_take("telegram", "1")
        if not grant.granted:
            now[0] += grant.wait + rng.expovariate(1 / 0.003)
            if now[0] >= stall_at:
                now[0] += 0.05
                stall_at += 10.0
            continue
        answer = rng.choice((0.0005, 0.001, 0.002, 0.004, 0.04))
        arrivals.append(now[0] + rng.uniform(0.0, answer))
        now[0] += answer
        await pacer.settle(grant)
    assert busiest_window(arrivals, 1.0) <= 30
    assert len(arrivals) / 60.0 >= 0.98 * 30


def test_pacer_turns_channel_limits_into_windows() -> None:
    limits = TelegramLimits(per_second=30, per_address_per_second=1, per_group_per_minute=20)
    pacer = Pacer(MemoryRateLimiter(), limits_of=lambda _c: limits)
    private = pacer.limits("telegram", "42")
    assert [(x.key, x.count, x.window) for x in private] == [
        ("telegram", 30, 1.0),
        ("telegram:c:42", 1, 1.0),
    ]
    group = pacer.limits("telegram", "-100")  # the Sender's rule: a group is a chat too
    assert [(x.key, x.count, x.window) for x in group] == [
        ("telegram", 30, 1.0),
        ("telegram:g:-100", 20, 60.0),
        ("telegram:c:-100", 1, 1.0),
    ]
    slow = pacer.limit("slack", 0.5)
    assert (slow.count, slow.window) == (1, 2.0)
    assert pacer.channel_interval("telegram") == pytest.approx(1 / 30)
    strict = Pacer(MemoryRateLimiter(), limits_of=lambda _c: limits, headroom=0.01)
    assert strict.limits("telegram", "42")[0].window == pytest.approx(1.01)


def test_core_knows_no_address_rule_of_its_own() -> None:
    """A negative address is nothing special to core: only the Sender's limits say so."""
    plain = Pacer(MemoryRateLimiter(), limits_of=lambda _c: ChannelLimits(
        per_second=10, per_address_per_second=1))
    assert [x.key for x in plain.limits("kakao", "-100")] == ["kakao", "kakao:c:-100"]

    class Tiered(ChannelLimits):
        def for_address(self, address: str) -> tuple[AddressRate, ...]:
            return (AddressRate(scope="vip", count=5),) if address == "a" else ()

    tiered = Pacer(MemoryRateLimiter(), limits_of=lambda _c: Tiered(per_second=10))
    assert [(x.key, x.count) for x in tiered.limits("x", "a")] == [("x", 10), ("x:vip:a", 5)]
    assert [x.key for x in tiered.limits("x", "b")] == ["x"]


async def test_pacer_escalates_to_the_whole_bot() -> None:
    limiter = MemoryRateLimiter()
    limits = TelegramLimits(per_second=1000, per_address_per_second=1, per_group_per_minute=20)
    pacer = Pacer(limiter, limits_of=lambda _c: limits)
    assert await pacer.back_off("telegram", "1", 0.5) == "chat"
    assert (await pacer.try_take("telegram", "1")).wait > 0.3
    assert (await pacer.try_take("telegram", "2")).granted
    assert await pacer.back_off("telegram", "3", 0.5) == "global"
    assert (await pacer.try_take("telegram", "4")).wait > 0.3


_HAMMER = """
import asyncio, sys, time
from core.ratelimit import Limit, RedisRateLimiter, acquire

async def main():
    limiter = RedisRateLimiter.from_url(sys.argv[1], prefix=sys.argv[2])
    limit = Limit(key="shared", count=int(sys.argv[3]), window=1.0)
    end = time.time() + float(sys.argv[4])
    while True:
        grant = await acquire(limiter, [limit])
        if time.time() > end:
            break
        print(repr(time.time()), flush=True)
        await limiter.settle(grant)
    await limiter.close()

asyncio.run(main())
"""


async def test_processes_sharing_one_redis_limit_never_exceed_it(redis_url: str) -> None:
    """Two processes and two in-process clients hammer one limit: together they keep it."""
    prefix = f"t:{uuid.uuid4().hex}"
    count, seconds = 40, 1.5
    env = dict(os.environ)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _HAMMER, redis_url, prefix, str(count), str(seconds),
            stdout=subprocess.PIPE, env=env,
        )
        for _ in range(2)
    ]
    local = [RedisRateLimiter.from_url(redis_url, prefix=prefix) for _ in range(2)]
    limit = Limit(key="shared", count=count, window=1.0)
    stamps: list[float] = []

    async def hammer(instance: RedisRateLimiter) -> None:
        end = time.time() + seconds
        while True:
            grant = await acquire(instance, [limit])
            if time.time() > end:
                return
            stamps.append(time.time())  # "the send": between the take and the settle
            await instance.settle(grant)

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
    assert len(stamps) >= count  # the processes did take part
    # Every send happened between its take and its settle, so no one-second window (on any
    # clock) holds more than the limit, however late the processes printed or settled.
    assert busiest_window(stamps, 1.0) <= count
