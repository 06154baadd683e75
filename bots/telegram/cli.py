"""``gongnon telegram set-webhook|delete-webhook|info|set-commands``: the Bot API chores."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Bot
from telegram.error import InvalidToken, TelegramError

from bots.telegram.bot import ALLOWED_UPDATES, WEBHOOK_PATH, build_bot, set_commands
from core.config import Settings

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("telegram", help="Telegram bot chores (webhook, commands)")
    sub = parser.add_subparsers(dest="telegram_command", required=True)
    hook = sub.add_parser("set-webhook", help="point Telegram at our webhook, with the secret")
    hook.add_argument(
        "--url",
        help=f"public URL (default GONGNON_TELEGRAM_WEBHOOK_URL, "
        f"or GONGNON_PUBLIC_URL + {WEBHOOK_PATH})",
    )
    hook.add_argument("--drop-pending", action="store_true", help="discard waiting updates")
    hook.set_defaults(handler=_set_webhook)
    unhook = sub.add_parser("delete-webhook", help="stop webhook delivery (for long polling)")
    unhook.add_argument("--drop-pending", action="store_true", help="discard waiting updates")
    unhook.set_defaults(handler=_delete_webhook)
    info = sub.add_parser("info", help="show the bot and its webhook status")
    info.set_defaults(handler=_info)
    commands = sub.add_parser("set-commands", help="publish the command menu in Korean and English")
    commands.set_defaults(handler=_set_commands)


def _run(settings: Settings, action: Callable[[Bot], Awaitable[int]]) -> int:
    if not settings.telegram_enabled:
        print("gongnon: GONGNON_TELEGRAM_TOKEN is not set", file=sys.stderr)
        return 2

    async def run() -> int:
        bot = build_bot(settings)
        try:
            async with bot:
                return await action(bot)
        except InvalidToken:  # PTB's message quotes the token: not printed
            print("gongnon: the Bot API rejected GONGNON_TELEGRAM_TOKEN", file=sys.stderr)
            return 1
        except TelegramError as exc:
            print(f"gongnon: Telegram refused: {exc.message}", file=sys.stderr)
            return 1

    return asyncio.run(run())


def _webhook_url(settings: Settings, args: argparse.Namespace) -> str | None:
    if args.url:
        return str(args.url)
    if settings.telegram_webhook_url:
        return settings.telegram_webhook_url
    if settings.public_url:
        return settings.public_url.rstrip("/") + WEBHOOK_PATH
    return None


def _set_webhook(settings: Settings, args: argparse.Namespace) -> int:
    url = _webhook_url(settings, args)
    if url is None:
        print("gongnon: give --url or set GONGNON_TELEGRAM_WEBHOOK_URL", file=sys.stderr)
        return 2
    secret = settings.telegram_webhook_secret

    async def action(bot: Bot) -> int:
        await bot.set_webhook(
            url=url,
            secret_token=secret.get_secret_value() if secret else None,
            allowed_updates=list(ALLOWED_UPDATES),
            drop_pending_updates=bool(args.drop_pending),
        )
        print(f"webhook set: {url}" + (" (with secret token)" if secret else " (NO secret token)"))
        return 0

    return _run(settings, action)


def _delete_webhook(settings: Settings, args: argparse.Namespace) -> int:
    async def action(bot: Bot) -> int:
        await bot.delete_webhook(drop_pending_updates=bool(args.drop_pending))
        print("webhook deleted")
        return 0

    return _run(settings, action)


def _info(settings: Settings, _args: argparse.Namespace) -> int:
    async def action(bot: Bot) -> int:
        me = await bot.get_me()
        hook = await bot.get_webhook_info()
        print(f"bot: @{me.username} (id {me.id})")
        print(f"webhook: {hook.url or '(none: long polling)'}")
        print(f"pending updates: {hook.pending_update_count}")
        if hook.last_error_message:
            print(f"last error: {hook.last_error_message} at {hook.last_error_date}")
        if hook.allowed_updates:
            print(f"allowed updates: {', '.join(hook.allowed_updates)}")
        return 0

    return _run(settings, action)


def _set_commands(settings: Settings, _args: argparse.Namespace) -> int:
    async def action(bot: Bot) -> int:
        await set_commands(bot, settings.default_locale)
        print("commands set (ko default, en by language_code)")
        return 0

    return _run(settings, action)
