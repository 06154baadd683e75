"""The ``gongnon`` command: serve, migrate, and each feature's subcommands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from typing import Any

from core.config import Settings, SettingsError, load_settings
from core.privacy.logsafe import quiet_driver_loggers

__all__ = ["main"]


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "aiohttp.access", "apscheduler.executors.default", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    quiet_driver_loggers()  # drivers log SQL parameters (citizen text) at DEBUG


def _cmd_serve(settings: Settings, _args: argparse.Namespace) -> int:
    from bots.server import serve

    print(f"공론 Gongnon: http://{settings.host}:{settings.port}/", flush=True)
    serve(settings)
    return 0


def _cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from core.adapters.db import Database, migrate

    async def run() -> None:
        db = Database(settings.effective_database_url)
        try:
            await migrate(db)
        finally:
            await db.dispose()

    asyncio.run(run())
    print("database is up to date")
    return 0


Handler = Callable[[Settings, argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gongnon", description="공론 Gongnon chat-bot server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server (web chat and webhooks)")
    serve.set_defaults(handler=_cmd_serve)
    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(handler=_cmd_migrate)
    for register in _feature_commands():
        register(sub)
    return parser


def _feature_commands() -> list[Callable[[Any], None]]:
    """Each feature's ``register(subparsers)``: one line per module."""
    import importlib

    modules: list[str] = [
        # e.g. "bots.telegram.cli",
        "bots.forum.cli",
        "bots.telegram.cli",
        "bots.worker_cli",
        "bots.slack.cli",
        "bots.campaign_cli",
        "bots.people_cli",
    ]
    return [importlib.import_module(name).register for name in modules]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"gongnon: {exc}", file=sys.stderr)
        return 2
    _setup_logging(settings)
    handler: Handler = args.handler
    from core.adapters.db import SchemaNotAtHead

    try:
        return handler(settings, args)
    except SchemaNotAtHead as exc:  # GONGNON_MIGRATE_ON_START=false and no `gongnon migrate` yet
        print(f"gongnon: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
