"""``gongnon worker``: delivery workers alone, for setups that run several processes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
from typing import Any

from bots import kakao
from bots.web.sender import WebSender
from core.bootstrap import Core, bootstrap
from core.config import Settings

__all__ = ["register"]

log = logging.getLogger(__name__)

STOP_SECONDS = 15.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run delivery workers only (several share the work through Redis)",
    )
    parser.add_argument("--name", help="this worker's name (default: host and process id)")
    parser.set_defaults(handler=_cmd_worker)


def _cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    name = args.name or f"{socket.gethostname()}-{os.getpid()}"
    return asyncio.run(_run(settings, name))


async def _telegram_sender(core: Core) -> Any:
    from telegram import Bot

    from bots.telegram.bot import _urls, channel_limits
    from bots.telegram.request import AiohttpRequest
    from bots.telegram.sender import TelegramSender

    settings = core.settings
    assert settings.telegram_token is not None
    base_url, base_file_url = _urls(settings)
    bot = Bot(
        settings.telegram_token.get_secret_value(),
        base_url=base_url,
        base_file_url=base_file_url,
        request=AiohttpRequest(connection_limit=max(8, settings.delivery_concurrency * 2)),
    )
    await bot.initialize()
    core.on_stop(bot.shutdown)
    return TelegramSender(
        bot=bot,
        state=core.state,
        limits=channel_limits(settings),
        default_locale=settings.default_locale,
    )


async def register_senders(core: Core) -> None:
    """Every channel this process can reach: its Sender, as the server would build it."""
    if core.settings.telegram_enabled:
        core.register_sender(await _telegram_sender(core))
    core.register_sender(WebSender(chat=core.webchat))
    if (kakao_sender := kakao.sender()) is not None:
        core.register_sender(kakao_sender)
        core.on_stop(kakao_sender.close)


async def _run(settings: Settings, name: str) -> int:
    core = await bootstrap(settings)
    try:
        await register_senders(core)
        worker = core.delivery.worker(on_unreachable=core.mark_unreachable, name=name)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, worker.stop)
        # Everything built so far (modules, metadata, clients) lives as long as the process:
        # keep it out of the collector's full passes, which otherwise stall a 1000/s push for
        # a tenth of a second each; and collect the young less often (fewer, shorter pauses).
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, 10, 10)
        mode = "redis streams" if settings.redis_url else "database"
        channels = ", ".join(sorted(core.senders)) or "none"
        print(f"gongnon worker {name}: ready ({mode}; channels: {channels})", flush=True)
        await worker.run(idle=0.5)
        log.info("delivery worker %s stopped: %s", name, worker.counts)
        return 0
    finally:
        try:
            await asyncio.wait_for(core.stop(), STOP_SECONDS)
        except TimeoutError:  # leases bring back anything left; do not hang the supervisor
            log.error("delivery worker %s: shutdown took over %ss", name, STOP_SECONDS)
