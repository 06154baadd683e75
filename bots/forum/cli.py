"""``gongnon sync status|retry|run``: the forum outbox, its dead letters, and the relay alone."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from typing import Any

from core.config import Settings
from core.i18n import t

__all__ = ["register"]


def register(subparsers: Any) -> None:
    sync = subparsers.add_parser("sync", help="forum sync: status, retry dead letters, relay")
    sub = sync.add_subparsers(dest="sync_command", required=True)
    status = sub.add_parser("status", help="outbox depth, oldest pending, dead letters, cursor")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=cmd_status)
    retry = sub.add_parser("retry", help="send dead letters again")
    retry.add_argument("--id", type=int, default=None, help="only this outbox row")
    retry.set_defaults(handler=cmd_retry)
    run = sub.add_parser("run", help="run the relay alone in this process")
    run.add_argument("--once", action="store_true", help="send what is due now, then exit")
    run.add_argument("--reconcile", action="store_true", help="also pull forum changes first")
    run.add_argument("--idle", type=float, default=1.0, help="seconds between idle polls")
    run.set_defaults(handler=cmd_run)


async def _with_core(settings: Settings, work: Any) -> Any:
    from core.bootstrap import bootstrap

    core = await bootstrap(settings.model_copy(update={"run_workers": False}))
    try:
        return await work(core.sync)
    finally:
        await core.stop()


def _print_status(info: dict[str, Any], locale: str) -> None:
    print(t("sync.cli.title", locale, backend=info["backend"]))
    if info["backend"] == "local":
        print(t("sync.cli.local", locale))
    print(t("sync.cli.depth", locale, depth=info["outbox_depth"], pending=info["pending"],
            sending=info["sending"]))
    if info["oldest_pending_at"]:
        print(t("sync.cli.oldest", locale, at=info["oldest_pending_at"],
                age=int(info["oldest_pending_age_seconds"] or 0)))
    else:
        print(t("sync.cli.oldest_none", locale))
    print(t("sync.cli.dead", locale, dead=info["dead"]))
    for row in info["dead_letters"]:
        print(t("sync.cli.dead_row", locale, **row))
    print(t("sync.cli.sent", locale, sent=info["sent"]))
    supports = info.get("supports") or {}
    if supports:
        print(t("sync.cli.supports", locale, voted=supports.get("voted", 0),
                counted_once=supports.get("counted_once", 0),
                refused=supports.get("refused", 0)))
    for key in info.get("limitations") or ():
        print(t("sync.cli.limitation", locale, text=t(key, locale)))
    for skipped in info.get("skipped_events") or ():
        print(t("sync.cli.skipped", locale, **skipped))
    if info["cursor"] is not None:
        print(t("sync.cli.cursor", locale, cursor=info["cursor"], at=info["cursor_updated_at"]))
    else:
        print(t("sync.cli.cursor_none", locale))


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    async def work(sync: Any) -> dict[str, Any]:
        return dict(await sync.status())

    info = asyncio.run(_with_core(settings, work))
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2))
    else:
        _print_status(info, settings.default_locale)
    return 1 if info["dead"] else 0


def cmd_retry(settings: Settings, args: argparse.Namespace) -> int:
    async def work(sync: Any) -> int:
        return int(await sync.retry(args.id))

    count = asyncio.run(_with_core(settings, work))
    key = "sync.cli.retried" if count else "sync.cli.retried_none"
    print(t(key, settings.default_locale, count=count))
    return 0


async def _run(sync: Any, args: argparse.Namespace, locale: str) -> int:
    if not sync.enabled:
        print(t("sync.cli.run_local", locale))
        return 0
    if args.reconcile:
        print(t("sync.cli.reconciled", locale, count=await sync.reconcile()), flush=True)
    if args.once:
        print(t("sync.cli.run_once", locale, count=await sync.relay.drain()), flush=True)
        return 0
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, sync.relay.stop)
    print(t("sync.cli.run_started", locale, name=sync.relay.name), flush=True)
    await sync.relay.run(idle=args.idle)
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    async def work(sync: Any) -> int:
        return await _run(sync, args, settings.default_locale)

    return int(asyncio.run(_with_core(settings, work)))
