"""Shared fixtures: every database test runs on SQLite and, where configured, PostgreSQL.

In CI ``GONGNON_TEST_DATABASE_URL`` and ``GONGNON_TEST_REDIS_URL`` are set, and a test that needs
them fails (never skips) when the service is unreachable. Locally without them those
parameters are skipped with a reason.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.bootstrap import Core, bootstrap
from core.config import Settings
from tests.support import REDIS_ENV, ManualClock, fresh_pg_database, pg_base_url

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database URL: one test, one database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'gongnon.db'}"
        return
    base = pg_base_url()
    if base is None:
        pytest.skip("GONGNON_TEST_DATABASE_URL is not set (CI sets it)")
    async with fresh_pg_database(base) as url:
        yield url


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'gongnon.db'}"


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set (CI sets it)")
    return url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "data_dir": tmp_path,
        "run_workers": False,
        "quiet_hours_start": None,
        "quiet_hours_end": None,
        # Most tests drive flows with web sessions; tests/unit/test_participation.py covers the
        # production default (messenger) and every level.
        "participation_level": "guest",
        "privacy_notice_enabled": False,  # tests/unit/test_privacy_flows.py turns it on
        "_env_file": None,
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture
async def core(database_url: str, tmp_path: Path, clock: ManualClock) -> AsyncIterator[Core]:
    """A wired core on a fresh database (both backends), memory state, no workers."""
    instance = await bootstrap(make_settings(tmp_path, database_url=database_url), clock=clock)
    try:
        yield instance
    finally:
        await instance.stop()
