"""Telegram inbound throughput: Gongnon's full webhook path vs bare PTB and aiogram echo bots; JSON.

    .venv/bin/python bench/telegram_inbound.py [--updates 4000] [--concurrency 100]
        [--database-url URL] [--redis URL] [--only gongnon,aiogram,ptb] [--profile FILE]

A child process plays Telegram: it runs the fake Bot API (tests/fakes/telegram_api.py) and POSTs
N private-chat updates (JSON, secret header) to each bot's webhook, ``--concurrency`` at a time,
then waits until the bot has sent N replies to the fake. The bot under test runs in this process:

- **gongnon**: ``gongnon serve``'s app (bots.server.create_app), SQLite by default: each update
  is deduped, runs a conversation turn (state, lock, a new person and identity written to the
  database) and its answer goes out through the Sender and the delivery pacer;
- **ptb**: a bare python-telegram-bot 22 echo bot, webhook in aiohttp feeding
  ``Application.update_queue`` (PTB's custom-webhook example), ``concurrent_updates(True)``,
  PTB's default httpx request;
- **aiogram**: a bare aiogram 3 echo bot on ``SimpleRequestHandler`` (answers at once, handles in
  the background), aiogram's aiohttp session.

Printed: updates/s for each (first POST to last reply), the ratios, and webhook ack p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web  # noqa: E402

SECRET = "bench-secret_0123456789"  # noqa: S105 - the benchmark's own
HOOK_PATH = "/telegram/webhook"


# --- "Telegram": the fake Bot API and the webhook load, in a child process ------------------


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _load(fake: Any, job: dict[str, Any]) -> dict[str, Any]:
    n, first_user = int(job["n"]), int(job["first_user"])
    users = max(1, int(job.get("users") or n))
    updates = [
        json.dumps(fake.message_update(first_user + i % users, text=f"안녕하세요 {i}")).encode()
        for i in range(n)
    ]
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
    gate = asyncio.Semaphore(int(job["concurrency"]))
    acks: list[float] = []
    statuses: dict[int, int] = {}
    sent_before = fake.sent
    connector = TCPConnector(limit=int(job["concurrency"]))
    async with ClientSession(connector=connector, timeout=ClientTimeout(total=60)) as http:

        async def post(body: bytes) -> None:
            for _attempt in range(20):  # like Telegram: an update not answered 200 comes again
                async with gate:
                    started = time.perf_counter()
                    async with http.post(job["url"], data=body, headers=headers) as response:
                        await response.read()
                    acks.append(time.perf_counter() - started)
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                if response.status == 200:
                    return
                await asyncio.sleep(0.5)

        started = time.perf_counter()
        await asyncio.gather(*(post(body) for body in updates))
        posted = time.perf_counter() - started
        deadline = time.monotonic() + float(job.get("timeout", 120))
        while fake.sent - sent_before < n and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.002)  # the fake's counter has no event; 2 ms is fine here
        elapsed = time.perf_counter() - started
    replies = fake.sent - sent_before
    return {
        "updates": n,
        "replies": replies,
        "seconds": round(elapsed, 3),
        "updates_per_s": round(replies / elapsed, 1),
        "post_seconds": round(posted, 3),
        "ack_p50_ms": round(_pct(acks, 0.50) * 1000, 2),
        "ack_p99_ms": round(_pct(acks, 0.99) * 1000, 2),
        "http_statuses": statuses,
        "rejected_429": fake.rejected_429,
    }


async def _telegram(conn: Connection) -> None:
    from tests.fakes.telegram_api import FakeTelegram

    async with FakeTelegram(record=False) as fake:
        conn.send({"root": fake.root, "token": fake.token})
        loop = asyncio.get_running_loop()
        while True:
            job = await loop.run_in_executor(None, conn.recv)
            if job.get("stop"):
                return
            conn.send(await _load(fake, job))


def _telegram_process(conn: Connection) -> None:
    asyncio.run(_telegram(conn))


# --- the bots under test --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}{HOOK_PATH}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def gongnon(fake: dict[str, str], args: argparse.Namespace) -> AsyncIterator[str]:
    from bots.server import create_app
    from core.config import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            data_dir=Path(tmp),
            database_url=args.database_url,
            redis_url=args.redis,
            telegram_token=fake["token"],  # type: ignore[arg-type]
            telegram_api_url=fake["root"],
            telegram_webhook_url="https://gongnon.example/telegram/webhook",
            telegram_webhook_secret=SECRET,  # type: ignore[arg-type]
            log_level="WARNING",
            # Telegram caps a bot at ~30 messages/s overall (1000/s with paid broadcasts); the
            # pacer enforces that. Lifted here so the run measures our processing path (the
            # pacer still runs on every send), not Telegram's cap.
            telegram_rate_per_second=1_000_000.0,
        )
        async with _serve(create_app(settings)) as url:
            yield url


@contextlib.asynccontextmanager
async def ptb_echo(fake: dict[str, str], _args: argparse.Namespace) -> AsyncIterator[str]:
    from telegram import Update
    from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

    async def echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text(update.message.text or "")

    application = (
        ApplicationBuilder()
        .token(fake["token"])
        .base_url(f"{fake['root']}/bot")
        .updater(None)
        .concurrent_updates(True)
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, echo))

    async def webhook(request: web.Request) -> web.Response:
        if request.headers.get("X-Telegram-Bot-Api-Secret-Token") != SECRET:
            return web.Response(status=403)
        await application.update_queue.put(Update.de_json(await request.json(), application.bot))
        return web.Response()

    app = web.Application()
    app.router.add_post(HOOK_PATH, webhook)
    async with application:
        await application.start()
        async with _serve(app) as url:
            yield url
        await application.stop()


@contextlib.asynccontextmanager
async def aiogram_echo(fake: dict[str, str], _args: argparse.Namespace) -> AsyncIterator[str]:
    from aiogram import Bot, Dispatcher, F
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.types import Message
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler

    session = AiohttpSession(api=TelegramAPIServer.from_base(fake["root"]))
    bot = Bot(fake["token"], session=session)
    dispatcher = Dispatcher()

    @dispatcher.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    app = web.Application()
    SimpleRequestHandler(dispatcher, bot, secret_token=SECRET).register(app, path=HOOK_PATH)
    async with _serve(app) as url:
        yield url
    await bot.session.close()


BOTS = {"gongnon": gongnon, "ptb": ptb_echo, "aiogram": aiogram_echo}


# --- driving ----------------------------------------------------------------------------------


async def _measure(
    name: str,
    conn: Connection,
    fake: dict[str, str],
    args: argparse.Namespace,
    first_user: int,
    scenario: str = "new",
) -> dict[str, Any]:
    async with BOTS[name](fake, args) as url:
        loop = asyncio.get_running_loop()
        # a short warm-up (connections, caches, first-time imports), then the measured run
        warm = {
            "url": url,
            "n": min(200, args.updates),
            "concurrency": args.concurrency,
            "first_user": first_user,
            "users": None,
        }
        conn.send(warm)
        await loop.run_in_executor(None, conn.recv)
        job = dict(warm, n=args.updates, first_user=first_user + 1_000_000, users=None)
        if scenario == "returning":  # the citizens write once first (not timed), then again
            users = max(1, args.updates // 2)
            conn.send(dict(job, n=users, users=users))
            await loop.run_in_executor(None, conn.recv)
            job["users"] = users
        profiler = None
        if args.profile and name == "gongnon":
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        cpu = time.process_time()
        conn.send(job)
        result: dict[str, Any] = await loop.run_in_executor(None, conn.recv)
        # CPU of the bot's process (all threads) per update: steadier than wall time on a
        # shared machine, and what bounds throughput on one core.
        result["bot_cpu_ms_per_update"] = round(
            (time.process_time() - cpu) * 1000 / max(1, result["replies"]), 3
        )
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        return result


async def main(args: argparse.Namespace) -> dict[str, Any]:
    parent, child = mp.Pipe()
    telegram = mp.get_context("spawn").Process(target=_telegram_process, args=(child,), daemon=True)
    telegram.start()
    fake = parent.recv()
    results: dict[str, Any] = {}
    runs = [(name, "new") for name in args.only if name != "gongnon"]
    if "gongnon" in args.only:
        runs[:0] = [("gongnon", s) for s in args.scenarios]
    try:
        for index, (name, scenario) in enumerate(runs):
            label = f"gongnon_{scenario}" if name == "gongnon" else f"{name}_echo"
            results[label] = await _measure(
                name, parent, fake, args, 10_000_000 * (index + 1), scenario
            )
    finally:
        parent.send({"stop": True})
        telegram.join(10)
    out: dict[str, Any] = {
        "updates": args.updates,
        "concurrency": args.concurrency,
        "database": "postgresql"
        if (args.database_url or "").startswith("postgresql")
        else "sqlite",
        "state": "redis" if args.redis else "memory",
        "results": results,
    }
    rate = {k: v["updates_per_s"] for k, v in results.items()}
    for ours in [k for k in rate if k.startswith("gongnon_")]:
        for echo in ("aiogram_echo", "ptb_echo"):
            if rate.get(echo):
                out[f"{ours}_vs_{echo}"] = round(rate[ours] / rate[echo], 2)
    return out


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument(
        "--scenarios",
        default="new,returning",
        type=lambda s: [x for x in s.split(",") if x in ("new", "returning")],
        help="gongnon runs: 'new' citizens (a person and identity written per "
        "update) and/or 'returning' ones (known, state in the store)",
    )
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument("--redis", default=None, help="conversation state on Redis")
    parser.add_argument(
        "--only",
        default="gongnon,aiogram,ptb",
        type=lambda s: [x for x in s.split(",") if x in BOTS],
    )
    parser.add_argument("--profile", default=None, help="write a cProfile of the gongnon run")
    return parser.parse_args()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(_args())), ensure_ascii=False, indent=2))
