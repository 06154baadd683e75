"""``gongnon people merge-report``: the people joined by link codes, newest first, as JSON lines.

Each line: when, where the code was typed, the person kept and the one emptied (ids only: no
names, no channel user ids), and what moved or was dropped as a duplicate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from core.config import Settings

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("people", help="linked identities: merge report")
    sub = parser.add_subparsers(dest="people_command", required=True)
    report = sub.add_parser("merge-report", help="list merges of people (JSON lines)")
    report.add_argument("--limit", type=int, default=200, help="at most this many (newest first)")
    report.set_defaults(handler=_cmd_merge_report)


def _cmd_merge_report(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_merge_report(settings, max(1, min(int(args.limit), 100_000))))


async def _merge_report(settings: Settings, limit: int) -> int:
    from core.adapters.db import Database, require_schema_at_head
    from core.people.views import PeopleViews

    db = Database(settings.effective_database_url)
    try:
        await require_schema_at_head(db)
        for row in await PeopleViews(db).merges(limit=limit):
            line = {
                "at": row.created_at.isoformat(),
                "channel": row.channel,
                "kept_person": row.survivor_id,
                "merged_person": row.merged_id,
                **{k: v for k, v in row.summary.items()
                   if k not in ("survivor_id", "merged_id") and v},
            }
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    finally:
        await db.dispose()
    return 0
