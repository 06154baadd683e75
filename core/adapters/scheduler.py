"""The one scheduler (APScheduler 3.11, in-memory jobs, Asia/Seoul by default).

Jobs are rebuilt from our own database at start; every firing must be idempotent on a logical
key (``Core.once``) because several processes may run the same schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler

__all__ = ["Scheduler"]

log = logging.getLogger(__name__)
Job = Callable[[], Awaitable[Any]]


class Scheduler:
    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._scheduler = AsyncIOScheduler(timezone=tz)

    @staticmethod
    def _guard(name: str, job: Job) -> Job:
        async def run() -> None:
            try:
                await job()
            except Exception:
                log.exception("scheduled job %s failed", name)

        return run

    def cron(self, name: str, job: Job, **fields: Any) -> None:
        """``fields`` as APScheduler's cron trigger: hour=9, minute=0, day_of_week="mon" …"""
        self._scheduler.add_job(
            self._guard(name, job), "cron", id=name, replace_existing=True,
            coalesce=True, max_instances=1, misfire_grace_time=3600, **fields,
        )

    def every(self, name: str, job: Job, *, seconds: float) -> None:
        self._scheduler.add_job(
            self._guard(name, job), "interval", id=name, replace_existing=True,
            seconds=seconds, coalesce=True, max_instances=1,
        )

    def at(self, name: str, job: Job, when: datetime) -> None:
        self._scheduler.add_job(
            self._guard(name, job), "date", id=name, replace_existing=True, run_date=when,
            misfire_grace_time=None,
        )

    def cancel(self, name: str) -> None:
        if self._scheduler.get_job(name) is not None:
            self._scheduler.remove_job(name)

    def jobs(self) -> list[str]:
        return [job.id for job in self._scheduler.get_jobs()]

    def start(self) -> None:
        if not self._scheduler.running:
            self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
