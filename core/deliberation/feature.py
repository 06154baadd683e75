"""Wiring deliberation: the daily summary of new opinions on the one scheduler."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from core.campaigns.model import quiet_until
from core.deliberation import summary

if TYPE_CHECKING:
    from core.bootstrap import Core  # the summary reads core.discussions (a Core attribute)

__all__ = ["install"]


def install(core: Core) -> None:
    settings = core.settings
    summary.register(core.bus)

    def hold(now: datetime) -> datetime | None:
        return quiet_until(
            now, start=settings.quiet_hours_start, end=settings.quiet_hours_end, tz=settings.tz
        )

    core.scheduler.cron(
        "deliberation:summary",
        partial(summary.send_daily_summaries, core, quiet_until=hold),
        hour=settings.discussion_summary_hour,
        minute=0,
    )
