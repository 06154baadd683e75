"""``gongnon digest send --period daily|weekly``: queue a digest now and post it to Slack."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import aiohttp

from bots.slack.sender import SlackBoard, build_client
from core.bootstrap import bootstrap
from core.config import Settings
from core.officials.digest import PERIODS

__all__ = ["register", "send_digest"]


def register(subparsers: Any) -> None:
    digest = subparsers.add_parser("digest", help="officials' Slack digests")
    actions = digest.add_subparsers(dest="digest_command", required=True)
    send = actions.add_parser("send", help="send the last complete period's digest now")
    send.add_argument("--period", choices=PERIODS, required=True)
    send.add_argument("--force", action="store_true",
                      help="send again even if this period's digest was already sent")
    send.set_defaults(handler=_cmd_send)


def _cmd_send(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.slack_enabled or not settings.slack_digest_channel:
        print("gongnon: set GONGNON_SLACK_BOT_TOKEN, GONGNON_SLACK_SIGNING_SECRET and "
              "GONGNON_SLACK_DIGEST_CHANNEL to send digests")
        return 2
    code, message = asyncio.run(send_digest(settings, period=args.period, force=args.force))
    print(message)
    return code


async def send_digest(settings: Settings, *, period: str, force: bool = False) -> tuple[int, str]:
    """(exit code, one line to print). Also drains whatever else waits for the board."""
    core = await bootstrap(settings)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            officials = core.officials
            worker = officials.attach_board(
                SlackBoard(client=build_client(settings, session), settings=settings)
            )
            if not await officials.enqueue_digest(period, force=force):
                return 0, f"the {period} digest for this period was already sent (use --force)"
            await worker.run_until_idle()
            left = await officials.digests_waiting()
        if left:
            summary = ", ".join(f"{n} {status}" for status, n in left.items())
            return 1, f"{period} digest not fully sent ({summary}); the server will retry"
        return 0, f"{period} digest sent"
    finally:
        await core.stop()
