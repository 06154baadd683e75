"""The candidate index behind ``core.similarity``: SQLite FTS5 trigram or PostgreSQL pg_trgm.

Both index the same normalised text: title and body in lower case with white space and "·"
removed (``migrations/versions/0006_similar.py`` creates the FTS table and its triggers, or
the pg_trgm extension and a GIN index on that expression). A query is a list of trigrams of
the normalised draft (``core.similarity.query_trigrams``, letters and digits only, so nothing
needs quoting); a proposal sharing any of them is a candidate, best first:

- SQLite: ``proposal_search MATCH '"abc" OR "bcd" …'`` ordered by ``bm25`` (FTS5's trigram
  tokenizer, SQLite ≥ 3.34; https://www.sqlite.org/fts5.html#the_trigram_tokenizer).
- PostgreSQL: ``expr LIKE '%abc%' OR …`` (a pg_trgm GIN index answers LIKE) ordered by
  ``similarity(expr, query)`` (https://www.postgresql.org/docs/current/pgtrgm.html).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, select, text

from core.adapters.db import Database
from core.adapters.orm import Proposal
from core.domain.model import ProposalStatus, ProposalSummary
from core.similarity import Candidate

__all__ = ["FTS_TABLE", "PG_INDEX", "PG_SEARCH_EXPR", "SQLITE_SEARCH_EXPR", "SqlTextIndex"]

FTS_TABLE = "proposal_search"
PG_INDEX = "ix_proposals_search_trgm"

# The normalised text, as SQL (the same on both sides of every comparison).
SQLITE_SEARCH_EXPR = (
    "lower(replace(replace(replace(replace(replace({p}title || {p}body, ' ', ''), "
    "char(10), ''), char(13), ''), char(9), ''), '·', ''))"
)
PG_SEARCH_EXPR = "lower(regexp_replace({p}title || {p}body, '[[:space:]·]+', '', 'g'))"


class SqlTextIndex:
    """``TextIndex`` on our database, whichever it is."""

    __slots__ = ("_trgm_schema", "db")

    def __init__(self, db: Database) -> None:
        self.db = db
        self._trgm_schema: str | None = None

    async def candidates(
        self, trigrams: Sequence[str], *, limit: int, exclude_statuses: Iterable[str]
    ) -> list[Candidate]:
        grams = [g for g in trigrams if g.isalnum()]  # letters and digits only: never quoted
        if not grams:
            return []
        excluded = list(exclude_statuses)
        async with self.db.read() as s:
            if self.db.dialect == "postgresql":
                expr = PG_SEARCH_EXPR.format(p="")
                likes = " OR ".join(f"{expr} LIKE :g{i}" for i in range(len(grams)))
                params: dict[str, object] = {f"g{i}": f"%{g}%" for i, g in enumerate(grams)}
                params.update(q="".join(grams), n=limit)
                if self._trgm_schema is None:  # pg_trgm may live outside our search_path
                    found = await s.execute(
                        text(
                            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                            "ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
                        )
                    )
                    self._trgm_schema = found.scalar_one()
                schema = self._trgm_schema.replace('"', '""')
                # Only constants and numbered bind names are formatted in; text is bound.
                ids_sql = text(
                    f"SELECT id FROM proposals WHERE ({likes}) "  # noqa: S608
                    f'ORDER BY "{schema}".similarity({expr}, :q) DESC, id DESC LIMIT :n'
                )
                ids = [row[0] for row in await s.execute(ids_sql, params)]
            else:
                match = " OR ".join(f'"{g}"' for g in grams)  # letters and digits: no quoting
                ids_sql = text(
                    f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :m "  # noqa: S608
                    "ORDER BY bm25(" + FTS_TABLE + "), rowid DESC LIMIT :n"
                )
                ids = [row[0] for row in await s.execute(ids_sql, {"m": match, "n": limit})]
            if not ids:
                return []
            stmt = select(Proposal).where(Proposal.id.in_(bindparam("ids", expanding=True)))
            if excluded:
                stmt = stmt.where(Proposal.status.not_in(excluded))
            rows = (await s.execute(stmt, {"ids": ids})).scalars().all()
            order = {pid: i for i, pid in enumerate(ids)}
            return [
                Candidate(
                    summary=ProposalSummary(
                        tracking=p.tracking,
                        title=p.title,
                        category=p.category,
                        status=ProposalStatus(p.status),
                        created_at=p.created_at,
                        support_count=p.support_count,
                    ),
                    body=p.body,
                )
                for p in sorted(rows, key=lambda p: order[p.id])
            ]
