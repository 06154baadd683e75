"""Database engines: SQLite (WAL, BEGIN IMMEDIATE writes) or PostgreSQL (asyncpg); migrations."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Table, event, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

__all__ = [
    "Database",
    "SchemaNotAtHead",
    "insert_for",
    "migrate",
    "require_schema_at_head",
    "schema_revisions",
]

log = logging.getLogger(__name__)
# Inside the package (with alembic.ini and script.py.mako as package data): a wheel can migrate.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy's documented recipe: let us emit BEGIN ourselves, so that a
    # read-then-write transaction takes the write lock up front (no lost updates).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA busy_timeout=5000",
        "PRAGMA foreign_keys=ON",
        "PRAGMA synchronous=NORMAL",
    ):
        cursor.execute(pragma)
    cursor.close()


class Database:
    """Owns the engines and session factories.

    On SQLite there is one writer at a time: write transactions begin with
    ``BEGIN IMMEDIATE`` and are serialised in-process by ``write_lock`` (no busy-wait
    storms); reads use a second engine with plain ``BEGIN``. On PostgreSQL both are one engine.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_async_engine(url, echo=echo, hide_parameters=True)
            self.read_engine = create_async_engine(url, echo=echo, hide_parameters=True)
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.read_engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(
                self.engine.sync_engine,
                "begin",
                lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"),
            )
            event.listen(
                self.read_engine.sync_engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN")
            )
        else:
            # ``?search_path=schema`` puts every table in that schema (shared servers, tests).
            parsed = make_url(url)
            connect_args: dict[str, Any] = {}
            search_path = parsed.query.get("search_path")
            if search_path:
                parsed = parsed.difference_update_query(["search_path"])
                connect_args["server_settings"] = {"search_path": str(search_path)}
            self.engine = create_async_engine(
                parsed,
                echo=echo,
                hide_parameters=True,  # no citizen text in SQL errors or echo logs
                pool_size=10,
                max_overflow=20,
                pool_pre_ping=True,
                connect_args=connect_args,
            )
            self.read_engine = self.engine
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self.write_lock: asyncio.Lock | None = asyncio.Lock() if self.is_sqlite else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def write(self):  # type: ignore[no-untyped-def]
        """A write session in a transaction; committed on success, rolled back on error."""
        if self.write_lock is not None:
            async with self.write_lock, self.sessions() as session, session.begin():
                yield session
        else:
            async with self.sessions() as session, session.begin():
                yield session

    @asynccontextmanager
    async def read(self):  # type: ignore[no-untyped-def]
        async with self.read_sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


def insert_for(db_or_dialect: Database | AsyncSession | str, table: Table | Any) -> Any:
    """A dialect-specific INSERT supporting ``on_conflict_do_nothing/do_update``."""
    if isinstance(db_or_dialect, Database):
        name = db_or_dialect.dialect
    elif isinstance(db_or_dialect, AsyncSession):
        bind = db_or_dialect.bind
        assert bind is not None, "a session bound to an engine"
        name = bind.dialect.name
    else:
        name = db_or_dialect
    if name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(_alembic_config(connection), "head")


# One advisory lock per schema: processes starting at once (compose's `migrate`, a `serve` or a
# worker that migrates on start) run the migrations one after the other; the later ones find
# the schema at head and do nothing. Per schema, so parallel test runs (a schema each) never wait
# on one another. ``pg_advisory_xact_lock`` is released by the commit (or the rollback on error):
# https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADVISORY-LOCKS
_PG_MIGRATE_LOCK = text(
    "SELECT pg_advisory_xact_lock(hashtext('gongnon.migrate:' || coalesce(current_schema(), '')))"
)


async def migrate(db: Database) -> None:
    """Bring the schema to the newest Alembic revision (at start, by ``gongnon migrate``, tests).

    Safe when several processes start at once: on PostgreSQL the whole upgrade runs in one
    transaction holding an advisory lock; on SQLite the connection's ``BEGIN IMMEDIATE`` takes
    the database's write lock, so a second process waits (``busy_timeout``) and then finds
    nothing to do. Within one process, one call at a time (Alembic's ``context`` is global).
    """
    async with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            await conn.execute(_PG_MIGRATE_LOCK)
        await conn.run_sync(_upgrade)
        await conn.commit()


async def schema_revisions(db: Database) -> tuple[str | None, str | None]:
    """(the database's Alembic revision, the newest revision shipped): equal when up to date."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()

    def current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(current), head


class SchemaNotAtHead(RuntimeError):
    """Start-up without migrating found the database at another revision than this release's."""


async def require_schema_at_head(db: Database) -> None:
    """For processes that do not migrate (``GONGNON_MIGRATE_ON_START=false``): fail clearly."""
    current, head = await schema_revisions(db)
    if current != head:
        raise SchemaNotAtHead(
            f"the database is at migration {current or 'none'}, this release needs {head}: "
            "run `gongnon migrate` first (or set GONGNON_MIGRATE_ON_START=true)"
        )
