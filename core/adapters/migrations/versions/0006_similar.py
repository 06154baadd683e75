"""similar proposals: an FTS5 trigram table (SQLite) or pg_trgm + a GIN index (PostgreSQL)

Revision ID: 0006
Revises: 0005

Both index the same normalised text (``core.adapters.search``). On SQLite the FTS table is
kept by triggers, so proposals written by any path (intake, forum sync) are found. A later
SQLite "batch" migration that rebuilds ``proposals`` drops these triggers with the table: such
a migration must create them again (``sqlite_triggers()`` below).
"""

from __future__ import annotations

from alembic import op

from core.adapters.search import FTS_TABLE, PG_INDEX, PG_SEARCH_EXPR, SQLITE_SEARCH_EXPR

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def sqlite_triggers() -> list[str]:
    new, old = SQLITE_SEARCH_EXPR.format(p="new."), "old.id"
    return [
        f"CREATE TRIGGER IF NOT EXISTS proposals_search_ai AFTER INSERT ON proposals BEGIN "
        f"INSERT INTO {FTS_TABLE}(rowid, doc) VALUES (new.id, {new}); END",
        f"CREATE TRIGGER IF NOT EXISTS proposals_search_au AFTER UPDATE OF title, body "
        f"ON proposals BEGIN DELETE FROM {FTS_TABLE} WHERE rowid = {old}; "
        f"INSERT INTO {FTS_TABLE}(rowid, doc) VALUES (new.id, {new}); END",
        f"CREATE TRIGGER IF NOT EXISTS proposals_search_ad AFTER DELETE ON proposals BEGIN "
        f"DELETE FROM {FTS_TABLE} WHERE rowid = {old}; END",
    ]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(doc, tokenize='trigram')")
        op.execute(
            f"INSERT INTO {FTS_TABLE}(rowid, doc) "
            f"SELECT id, {SQLITE_SEARCH_EXPR.format(p='')} FROM proposals"
        )
        for statement in sqlite_triggers():
            op.execute(statement)
        return
    # In "public" where it exists: a schema dropped with CASCADE must not take the
    # extension (and every other schema's index) with it.
    op.execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN "
        "IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public') THEN "
        "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public; "
        "ELSE CREATE EXTENSION IF NOT EXISTS pg_trgm; END IF; END IF; END $$"
    )
    schema = bind.exec_driver_sql(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    ).scalar_one()
    op.execute(
        f"CREATE INDEX {PG_INDEX} ON proposals USING gin "
        f'(({PG_SEARCH_EXPR.format(p="")}) "{schema}".gin_trgm_ops)'
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("proposals_search_ai", "proposals_search_au", "proposals_search_ad"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
        return
    op.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
