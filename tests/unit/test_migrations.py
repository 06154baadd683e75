"""Alembic migrations build exactly the schema the models describe (SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.adapters.db import Database, migrate
from core.adapters.schema import include_name, metadata


async def test_migrations_match_models(database_url: str) -> None:
    db = Database(database_url)
    try:
        await migrate(db)
        await migrate(db)  # idempotent

        def diff(sync_conn):  # type: ignore[no-untyped-def]
            opts = {"compare_type": False, "include_name": include_name}
            ctx = MigrationContext.configure(sync_conn, opts=opts)
            return compare_metadata(ctx, metadata)

        async with db.engine.connect() as conn:
            changes = await conn.run_sync(diff)
        assert changes == [], f"models and migrations differ: {changes}"
    finally:
        await db.dispose()
