"""Processes that start at once migrate once: PostgreSQL's advisory lock, SQLite's write lock.

(Within one process Alembic's ``context``/``op`` are module globals: one migration at a time.)
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from bots.cli import main as cli_main
from core.adapters.db import Database, SchemaNotAtHead, migrate, schema_revisions
from core.bootstrap import bootstrap
from tests.conftest import make_settings


async def _assert_at_head_once(url: str) -> None:
    db = Database(url)
    try:
        current, head = await schema_revisions(db)
        assert head is not None and current == head
        async with db.read() as session:
            rows = (await session.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert [row[0] for row in rows] == [head]
    finally:
        await db.dispose()


async def test_three_gongnon_migrate_processes_at_once(database_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GONGNON_DATABASE_URL": database_url,
        "GONGNON_DATA_DIR": str(tmp_path),
        "GONGNON_LOG_LEVEL": "WARNING",
    }
    run = [
        sys.executable,
        "-c",
        "import sys; from bots.cli import main; sys.exit(main(['migrate']))",
    ]
    procs = [
        await asyncio.create_subprocess_exec(
            *run,
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    # Without the advisory lock PostgreSQL fails here: a second CREATE TABLE waits for the first
    # transaction, then finds the table there ("already exists") or a duplicate alembic_version.
    results = await asyncio.gather(*(proc.communicate() for proc in procs))
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()
        assert b"database is up to date" in out
    await _assert_at_head_once(database_url)


async def test_a_process_told_not_to_migrate_checks_the_schema_instead(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, database_url=database_url, migrate_on_start=False)
    with pytest.raises(SchemaNotAtHead, match="gongnon migrate"):
        await bootstrap(settings)
    await _assert_no_tables(database_url)  # it did not migrate

    # The command line says so in one line (compose's `worker`/`serve` before `migrate` ran).
    env = {"GONGNON_DATABASE_URL": database_url, "GONGNON_MIGRATE_ON_START": "false"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        code = await asyncio.to_thread(cli_main, ["worker", "--name", "w1"])
    assert code == 2
    assert "run `gongnon migrate` first" in capsys.readouterr().err

    db = Database(database_url)
    try:
        await migrate(db)
    finally:
        await db.dispose()
    core = await bootstrap(settings)  # at head: starts without migrating
    await core.stop()


async def _assert_no_tables(url: str) -> None:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert names == []
    finally:
        await db.dispose()
