"""Conversation engine throughput: many citizens completing an intake at once; prints JSON.

    .venv/bin/python bench/conversation_turns.py --users 200 --concurrency 50 [--redis URL]
      [--database-url URL]

Each user sends /start, picks "제안하기", types a title and a body, picks a category, skips the
region and confirms: 7 turns, one SubmitProposal. Measures turns/s and per-turn latency through
the whole engine (lock, state store, identity, validation, database write).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bots.server import conversation_engine  # noqa: E402
from conversations.engine import Engine  # noqa: E402
from conversations.incoming import Command, Inbound, Incoming, Picked, Text  # noqa: E402
from core.bootstrap import bootstrap  # noqa: E402
from core.config import Settings  # noqa: E402

BODY = "여름마다 버스를 기다리는 시민들이 햇볕에 너무 오래 노출됩니다. 그늘막이 필요합니다."


def _script(n: int) -> list[Incoming]:
    return [
        Command("start"),
        Picked("menu:submit"),
        Picked("notice:agree"),  # a new citizen agrees to the personal-data notice once
        Text(f"정류장 그늘막 설치 제안 {n}"),
        Text(BODY),
        Picked("cat:transport"),
        Picked("ext:done"),
        Picked("rev:confirm"),
    ]


async def _user(engine: Engine, n: int, latencies: list[float], gate: asyncio.Semaphore) -> bool:
    async with gate:
        replies = []
        for payload in _script(n):
            started = time.perf_counter()
            replies = await engine.handle(
                Inbound(channel="web", user_id=f"bench-{n}", address=f"bench-{n}", payload=payload)
            )
            latencies.append(time.perf_counter() - started)
        return any("P-" in r.text for r in replies)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def main(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=args.database_url,
            redis_url=None,
            run_workers=False,
            _env_file=None,  # type: ignore[call-arg]
        )
        state = None
        if args.redis:
            from core.adapters.state_redis import RedisStateStore

            prefix = f"gongnon-bench:{uuid.uuid4().hex}:"
            state = RedisStateStore.from_url(args.redis, prefix=prefix)
        core = await bootstrap(settings, state=state)
        try:
            engine = conversation_engine(core)
            latencies: list[float] = []
            gate = asyncio.Semaphore(args.concurrency)
            started = time.perf_counter()
            done = await asyncio.gather(
                *(_user(engine, n, latencies, gate) for n in range(args.users))
            )
            elapsed = time.perf_counter() - started
            submitted = (await core.views.stats())["total"]
        finally:
            await core.stop()
    return {
        "bench": "conversation_turns",
        "store": "redis" if args.redis else "memory",
        "database": "postgresql" if args.database_url else "sqlite",
        "users": args.users,
        "concurrency": args.concurrency,
        "turns": len(latencies),
        "seconds": round(elapsed, 3),
        "turns_per_second": round(len(latencies) / elapsed, 1),
        "turn_p50_ms": round(_pct(latencies, 0.50) * 1000, 2),
        "turn_p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
        "confirmed": sum(done),
        "proposals_in_db": submitted,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--redis", default=None, help="use RedisStateStore at this URL")
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    print(json.dumps(asyncio.run(main(parser.parse_args())), ensure_ascii=False))
