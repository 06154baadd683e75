"""Test helpers: database URLs for SQLite and PostgreSQL, a manual clock, ``eventually``."""

from __future__ import annotations

import asyncio
import inspect
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import asyncpg  # type: ignore[import-untyped]

PG_ENV = "GONGNON_TEST_DATABASE_URL"
REDIS_ENV = "GONGNON_TEST_REDIS_URL"


def pg_base_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        return None
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


def _plain(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


@asynccontextmanager
async def fresh_pg_database(base_url: str) -> AsyncIterator[str]:
    """A new empty schema on the test database (``?search_path=``), dropped afterwards.

    A schema costs milliseconds where ``CREATE DATABASE`` costs seconds; each test still
    starts from nothing and parallel runs never meet.
    """
    name = f"gongnon_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_plain(base_url))
    try:
        await admin.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await admin.close()
    try:
        yield f"{base_url}?search_path={name}"
    finally:
        admin = await asyncpg.connect(_plain(base_url))
        try:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await admin.close()


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 11, 26, 3, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    *,
    within: float = 10.0,
    every: float = 0.02,
    what: str = "condition",
) -> None:
    """Poll ``condition`` (plain or async) until it is true; fail after ``within`` seconds.

    The one "wait until" of the test suite: generous deadlines (a busy CI machine), short
    polls, and the condition checked once more at the deadline before giving up.
    """
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not met within {within} s")
        await asyncio.sleep(every)
