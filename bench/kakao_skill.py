"""KakaoTalk skill-server latency under concurrent users (loopback only); JSON.

    .venv/bin/python bench/kakao_skill.py [--users 200] [--turns 5] [--database-url URL]
        [--redis URL]

Gongnon's whole server (``bots.server.create_app``, SQLite by default) runs on 127.0.0.1 with
the Kakao mount on; a fake Open Builder (``tests/fakes/kakao.py``) in the same process plays
Kakao: ``--users`` people at once, each sending ``--turns`` SkillPayloads one after another
(a first contact that creates the person, the menu, "my proposals", a typed number, …).
Every SkillResponse is validated by the fake.

- **skill**: the time from sending the payload to the SkillResponse (Kakao waits 5 s):
  p50 / p90 / p99 / max, turns per second, and how many turns needed a callback;
- **callback**: the same load with ``reply_budget_seconds`` near zero, so every turn answers
  ``useCallback: true`` at once and posts its real answer to the callback URL: the immediate
  answer's p50/p99 and the time until the callback arrived (p50/p99).

The load generator shares the process (and the 2 cores) with the server: the numbers are an
upper bound on what Gongnon itself adds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web  # noqa: E402

SECRET = "bench-kakao-secret-0123456789"  # noqa: S105 - the benchmark's own


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_pct(values, 0.50) * 1000, 1),
        "p90_ms": round(_pct(values, 0.90) * 1000, 1),
        "p99_ms": round(_pct(values, 0.99) * 1000, 1),
        "max_ms": round(max(values, default=0.0) * 1000, 1),
    }


SCRIPT = ("안녕하세요", "메뉴", "/mine", "메뉴", "4", "P-2026-000001", "메뉴", "/following")


async def _scenario(args: argparse.Namespace, *, budget: float, callbacks: bool) -> dict[str, Any]:
    from bots.server import create_app
    from core.config import Settings
    from tests.fakes.kakao import FakeOpenBuilder, KakaoUser

    os.environ["GONGNON_KAKAO_SKILL_SECRET"] = SECRET
    os.environ["GONGNON_KAKAO_BOT_ID"] = "bot-bench"
    os.environ["GONGNON_KAKAO_REPLY_BUDGET_SECONDS"] = str(budget)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            data_dir=Path(tmp), database_url=args.database_url, redis_url=args.redis,
            run_workers=False, web_enabled=False, quiet_hours_start=None, quiet_hours_end=None,
            log_level="WARNING",
        )
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}/kakao/skill/{SECRET}"
        latencies: list[float] = []
        callback_delays: list[float] = []
        try:
            async with FakeOpenBuilder(bot_id="bot-bench") as kakao, ClientSession(
                connector=TCPConnector(limit=0), timeout=ClientTimeout(total=60)
            ) as http:
                users = [KakaoUser(kakao, http, url, callbacks=callbacks)
                         for _ in range(args.users)]

                async def person(u: KakaoUser) -> None:
                    for text in SCRIPT[: args.turns]:
                        body = u.payload(text)
                        started = time.perf_counter()
                        async with http.post(url, json=body) as resp:
                            assert resp.status == 200, resp.status
                            data = kakao.check(await resp.json())
                        latencies.append(time.perf_counter() - started)
                        if data.get("useCallback"):
                            assert u.last_callback is not None
                            await kakao.callback_body(u.last_callback, wait=60)
                            callback_delays.append(time.perf_counter() - started)

                began = time.perf_counter()
                await asyncio.gather(*(person(u) for u in users))
                span = time.perf_counter() - began
                refused = list(kakao.refused)
                validated = kakao.validated
        finally:
            await runner.cleanup()
    out: dict[str, Any] = {
        "users": args.users,
        "turns": len(latencies),
        "turns_per_s": round(len(latencies) / span, 1),
        "answer": _ms(latencies),
        "via_callback": len(callback_delays),
        "responses_validated": validated,
        "refused_by_fake": len(refused),
    }
    if callback_delays:
        out["callback_arrived"] = _ms(callback_delays)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis", default=None)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    skill = await _scenario(args, budget=3.5, callbacks=True)
    callback = await _scenario(args, budget=0.001, callbacks=True)
    print(json.dumps({"bench": "kakao_skill", "database": args.database_url or "sqlite",
                      "skill": skill, "callback": callback}, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
