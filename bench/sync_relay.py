"""Forum sync benchmark: what the outbox adds to a citizen's action, and how fast the relay drains.

Prints JSON. Against the fake forum (tests/fakes/forum.py) on this machine, on SQLite by default
or on PostgreSQL with ``--database-url`` (give it a fresh, empty database):

- ``submit_ms``: p50/p95 of ``core.execute(SubmitProposal)`` with the outbox insert
  (the chat's cost);
- ``drain``: rows, seconds and rows/s for one relay sending N proposals × (create, 2 supports,
  1 comment) in order per proposal.

    python bench/sync_relay.py            # 500 proposals (2,000 rows)
    python bench/sync_relay.py -n 50      # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import commands as c  # noqa: E402
from core.bootstrap import bootstrap  # noqa: E402
from core.config import Settings  # noqa: E402
from tests.fakes.forum import FakeForum  # noqa: E402


async def run(n: int, database_url: str | None) -> dict[str, object]:
    forum = FakeForum(token="bench")
    await forum.start()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, data_dir=Path(tmp), database_url=database_url, run_workers=False,
            forum_backend="http", forum_url=forum.url, forum_token="bench",
        )
        core = await bootstrap(settings)
        try:
            people = [
                await core.execute(c.EnsureIdentity(channel="web", external_id=f"u{i}",
                                                    address=f"a{i}"))
                for i in range(3)
            ]
            submit_ms: list[float] = []
            for i in range(n):
                started = time.perf_counter()
                tracking = await core.execute(c.SubmitProposal(
                    person_id=people[0], title=f"벤치마크 제안 {i}", category="other",
                    body="동기화 벤치마크를 위한 제안 본문입니다.",
                ))
                submit_ms.append((time.perf_counter() - started) * 1000)
                for pid in people[1:]:
                    await core.execute(c.SupportProposal(person_id=pid, tracking=tracking))
                await core.execute(c.AddFeedback(person_id=people[1], tracking=tracking,
                                                 body="좋습니다"))
            relay = core.sync.relay
            started = time.perf_counter()
            rows = await relay.drain(max_rounds=100_000)
            seconds = time.perf_counter() - started
            status = await core.sync.status()
        finally:
            await core.stop()
            await forum.stop()
    quantiles = statistics.quantiles(submit_ms, n=20)
    return {
        "database": "postgresql" if database_url else "sqlite",
        "proposals": n,
        "submit_ms": {"p50": round(statistics.median(submit_ms), 2),
                      "p95": round(quantiles[18], 2)},
        "drain": {"rows": rows, "seconds": round(seconds, 2),
                  "rows_per_second": round(rows / seconds, 1),
                  "forum_writes": len(forum.writes), "left": status["outbox_depth"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.n, args.database_url)), ensure_ascii=False))


if __name__ == "__main__":
    main()
