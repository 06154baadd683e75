"""Broadcast benchmark: a push to N recipients through `gongnon worker` against the fake Bot API.

Prints JSON. Scenarios (each on a fresh database, the fake enforcing Telegram's limits and
answering 429 beyond them):

- ``steady``: one worker, no kill: achieved rate / allowed rate, 429s, violations, peak RSS;
- ``kill``: one worker, ``kill -9`` half-way, restarted: losses and duplicates;
- ``redis``: two workers sharing Redis Streams and Redis token buckets, one killed half-way and
  restarted (needs ``--redis-url`` or ``GONGNON_TEST_REDIS_URL``);
- ``standard``: a minute at Telegram's standard 30 messages/s (1,800 recipients);
- ``ceiling``: the Telegram Sender alone against an unlimited fake: what this machine can send
  at all, to read the other numbers against.

    python bench/broadcast.py                 # 100,000 recipients at 1000/s (paid broadcasts)
    python bench/broadcast.py --quick         # a smoke run
    python bench/broadcast.py -n 20000 --rate 500 --scenarios steady,redis
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIRST_CHAT = 1_000_001
PUSH_ID = 1

_FAKE = """
import asyncio, bisect, gc, json, sys, time
from tests.fakes.telegram_api import FakeTelegram, TelegramLimits

async def main():
    rate = float(sys.argv[1])
    fake = FakeTelegram(limits=TelegramLimits(global_per_s=rate, per_chat_per_s=1,
                                              per_group_per_min=20), record=False)
    await fake.start()
    stamps, chats, twice = [], set(), []
    original = fake._m_sendmessage
    async def timed(p, f):  # counted as they come: a poll costs the fake's loop nothing
        result = await original(p, f)
        stamps.append(time.monotonic())
        chat = p.get("chat_id")
        if chat in chats:
            twice.append(chat)
        chats.add(chat)
        fake.messages.clear()  # no bodies kept: 100,000 of them made the fake's GC stall
        return result
    fake._m_sendmessage = timed
    gc.collect()
    gc.freeze()
    print(json.dumps({"root": fake.root, "token": fake.token}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if not line or line == "quit":
            break
        whole = int(stamps[-1] - stamps[0]) if stamps else 0
        print(json.dumps({
            "sent": fake.sent, "rejected_429": fake.rejected_429, "violations": fake.violations,
            "first": stamps[0] if stamps else None, "last": stamps[-1] if stamps else None,
            "per_second": [bisect.bisect_left(stamps, stamps[0] + k + 1)
                           - bisect.bisect_left(stamps, stamps[0] + k) for k in range(whole)],
            "chats": len(chats), "extra": len(twice), "twice": twice[:1000],
        }), flush=True)
    await fake.close()

asyncio.run(main())
"""


class Fake:
    """The fake Bot API in its own process (so its CPU and memory are not the worker's)."""

    def __init__(self, proc: asyncio.subprocess.Process, root: str, token: str) -> None:
        self.proc, self.root, self.token = proc, root, token

    @classmethod
    async def start(cls, rate: float) -> Fake:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _FAKE, str(rate), cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        info = json.loads(await proc.stdout.readline())
        return cls(proc, info["root"], info["token"])

    async def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"stats\n")
        await self.proc.stdin.drain()
        return json.loads(await self.proc.stdout.readline())  # type: ignore[no-any-return]

    async def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"quit\n")
        await self.proc.stdin.drain()
        await self.proc.wait()


def load_average() -> float:
    """The machine's one-minute load (the bench itself adds about 1.5 at 1000/s)."""
    with open("/proc/loadavg") as loadavg:
        return float(loadavg.read().split()[0])


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


@contextlib.asynccontextmanager
async def database(args: argparse.Namespace) -> AsyncIterator[str]:
    if args.sqlite or not args.database_url:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite+aiosqlite:///{tmp}/bench.db"
        return
    from tests.support import fresh_pg_database

    url = args.database_url
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    async with fresh_pg_database(url) as fresh:
        yield fresh


async def enqueue(url: str, n: int) -> float:
    from core.adapters.db import Database, migrate
    from core.delivery import DeliveryRepository, Outgoing
    from core.messages import Reply, ReplyKind

    db = Database(url)
    started = time.monotonic()
    try:
        await migrate(db)
        reply = Reply(text="공론 설문에 참여해 주세요. 3분이면 끝납니다.", kind=ReplyKind.PUSH)
        for start in range(0, n, 10_000):
            items = [
                Outgoing(
                    dedupe_key=f"push:{PUSH_ID}:telegram:{chat}",
                    channel="telegram",
                    address=str(chat),
                    reply=reply,
                    push_id=PUSH_ID,
                )
                for chat in range(FIRST_CHAT + start, FIRST_CHAT + min(n, start + 10_000))
            ]
            async with db.write() as session:
                await DeliveryRepository(session).enqueue_many(items, now=datetime.now(UTC))
    finally:
        await db.dispose()
    return time.monotonic() - started


async def report(url: str) -> dict[str, int]:
    from core.adapters.db import Database
    from core.delivery import push_report

    db = Database(url)
    try:
        async with db.read() as session:
            return await push_report(session, PUSH_ID)
    finally:
        await db.dispose()


async def held(url: str) -> int:
    from sqlalchemy import func, select

    from core.adapters.db import Database
    from core.adapters.orm_delivery import Delivery

    db = Database(url)
    try:
        async with db.read() as session:
            stmt = select(func.count()).where(Delivery.status == "sending")
            return int((await session.execute(stmt)).scalar_one())
    finally:
        await db.dispose()


class Workers:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.peak: dict[str, float] = {}

    async def start(self, name: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bots.cli", "worker", "--name", name, env=self.env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if b"ready" not in line:
            raise RuntimeError(f"worker {name} did not start: {line!r}")
        asyncio.get_running_loop().create_task(self._drain(proc))
        self.procs[name] = proc

    @staticmethod
    async def _drain(proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            sys.stderr.write(chunk.decode(errors="replace"))

    def sample(self) -> None:
        for name, proc in self.procs.items():
            if proc.returncode is None:
                with contextlib.suppress(OSError):
                    self.peak[name] = max(self.peak.get(name, 0.0), peak_rss_mb(proc.pid))

    async def kill(self, name: str) -> None:
        self.sample()
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async def stop(self) -> None:
        self.sample()
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                print(f"worker {name} did not stop in 30 s; killing it", file=sys.stderr)
                proc.kill()
                await proc.wait()
        self.procs.clear()


def worker_env(
    args: argparse.Namespace, url: str, fake: Fake, rate: float, redis: bool
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GONGNON_")}
    env.update(
        GONGNON_DATABASE_URL=url,
        GONGNON_DATA_DIR=tempfile.mkdtemp(prefix="gongnon-bench-"),
        GONGNON_TELEGRAM_TOKEN=fake.token,
        GONGNON_TELEGRAM_API_URL=fake.root,
        GONGNON_TELEGRAM_RATE_PER_SECOND=str(rate),
        GONGNON_DELIVERY_CONCURRENCY=str(args.concurrency),
        GONGNON_DELIVERY_LEASE_SECONDS=str(args.lease),
        GONGNON_QUIET_HOURS_START="00:00",  # start == end: quiet hours off for the bench
        GONGNON_QUIET_HOURS_END="00:00",
        GONGNON_LOG_LEVEL="WARNING",
    )
    if redis:
        env.update(
            GONGNON_REDIS_URL=args.redis_url,
            GONGNON_DELIVERY_REDIS_PREFIX=f"bench:{uuid.uuid4().hex[:12]}",
            GONGNON_DELIVERY_STREAM_BLOCK_MS="500",
        )
    return env


async def scenario(args: argparse.Namespace, name: str, n: int, rate: float) -> dict[str, Any]:
    redis = name == "redis"
    kill = name in ("kill", "redis")
    out: dict[str, Any] = {"scenario": name, "recipients": n, "allowed_rate": rate}
    async with database(args) as url:
        out["database"] = url.split(":", 1)[0]
        out["enqueue_seconds"] = round(await enqueue(url, n), 2)
        fake = await Fake.start(rate)
        workers = Workers(worker_env(args, url, fake, rate, redis))
        try:
            names = ["w1", "w2"] if redis else ["w1"]
            for worker in names:
                await workers.start(worker)
            killed_at = None
            deadline = time.monotonic() + n / rate * 3 + 120
            loads: list[float] = []
            while time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                workers.sample()
                loads.append(load_average())
                stats = await fake.stats()
                if kill and killed_at is None and stats["sent"] >= n // 2:
                    await workers.kill("w1")
                    killed_at = stats["sent"]
                    out["held_by_killed_worker"] = await held(url)
                    await workers.start("w1-again")
                if stats["chats"] >= n:
                    break
            rep = await report(url)
            await workers.stop()
            stats = await fake.stats()
        finally:
            await workers.stop()
            await fake.close()
    # From the first send until the last one's window closes: no pattern of sends that keeps
    # the limit (an even spread, or a window's worth at once) can score over 1.0 on this.
    span = (stats["last"] - stats["first"] + 1.0) if stats["first"] is not None else 0.0
    achieved = stats["sent"] / span if span else 0.0
    out.update(
        achieved_rate=round(achieved, 1),
        sends_per_second=_spread(stats["per_second"]),
        rate_ratio=round(achieved / rate, 4),
        median_second_ratio=round(_spread(stats["per_second"]).get("median", 0) / rate, 4),
        received_429=stats["rejected_429"],
        limit_violations=stats["violations"],
        losses=n - stats["chats"],
        duplicates=stats["extra"],
        duplicates_allowed=args.concurrency * (2 if redis else 1) if kill else 0,
        killed_after=killed_at,
        report=rep,
        peak_rss_mb={k: round(v, 1) for k, v in workers.peak.items()},
        load_average={"max": max(loads, default=0.0), "last": loads[-1] if loads else 0.0},
    )
    return out


def _spread(counts: list[int]) -> dict[str, float]:
    """The fewest, median and most sends in one whole second of the push."""
    if not counts:
        return {}
    ordered = sorted(counts)
    return {"min": ordered[0], "median": ordered[len(ordered) // 2], "max": ordered[-1]}


async def ceiling(args: argparse.Namespace, n: int) -> dict[str, Any]:
    """The machine's own limit: the Telegram Sender straight at an unlimited fake, no engine."""
    from telegram import Bot

    from bots.telegram.request import AiohttpRequest
    from bots.telegram.sender import TelegramSender
    from core.adapters.state_memory import MemoryStateStore
    from core.messages import Reply
    from core.ports import ChannelLimits

    fake = await Fake.start(1e9)
    bot = Bot(fake.token, base_url=f"{fake.root}/bot", request=AiohttpRequest())
    await bot.initialize()
    sender = TelegramSender(bot=bot, state=MemoryStateStore(), limits=ChannelLimits(per_second=1e9))
    chats = list(range(FIRST_CHAT, FIRST_CHAT + n))

    async def pump() -> None:
        while chats:
            await sender.send(str(chats.pop()), Reply(text="공론 설문에 참여해 주세요."))

    started = time.monotonic()
    await asyncio.gather(*(pump() for _ in range(args.concurrency)))
    elapsed = time.monotonic() - started
    await bot.shutdown()
    await fake.close()
    return {"scenario": "ceiling", "recipients": n, "raw_sends_per_second": round(n / elapsed, 1)}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=100_000, help="recipients (default 100000)")
    parser.add_argument("--rate", type=float, default=1000.0, help="allowed messages/s")
    parser.add_argument("--standard-n", type=int, default=1800, help="recipients at 30/s")
    parser.add_argument("--quick", action="store_true", help="2,000 recipients at 500/s")
    parser.add_argument("--scenarios", default="ceiling,steady,kill,redis,standard")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--lease", type=float, default=5.0)
    parser.add_argument("--sqlite", action="store_true", help="use SQLite even if PG is set")
    parser.add_argument("--database-url", default=os.environ.get("GONGNON_TEST_DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("GONGNON_TEST_REDIS_URL"))
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.rate, args.standard_n = 2000, 500.0, 150
    return args


async def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    results = []
    for name in [s.strip() for s in args.scenarios.split(",") if s.strip()]:
        if name == "redis" and not args.redis_url:
            results.append({"scenario": name, "skipped": "no --redis-url"})
            continue
        if name == "ceiling":
            results.append(await ceiling(args, min(args.n, 5000)))
        elif name == "standard":
            results.append(await scenario(args, name, args.standard_n, 30.0))
        else:
            results.append(await scenario(args, name, args.n, args.rate))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"benchmark": "broadcast", "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
