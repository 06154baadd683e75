"""The SQL every outbox shares: claim due rows under a lease, renew, finish, give back, and the
two steps of a Redis Streams hand-over (``mark_queued`` by a feeder, ``take`` by a consumer)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

__all__ = ["LeasedQueue"]

Where = Sequence[ColumnElement[bool]]


def _dialect(session: Any) -> str:
    bind = getattr(session, "bind", None) or session
    return str(bind.dialect.name)


class LeasedQueue:
    """One table with ``LeaseColumns``, drained by workers that each hold rows under a lease.

    A queue plugs in only its *ordering*: ``order_by`` (which due row goes first) and
    ``eligible`` (extra conditions a row must meet to be claimable now, e.g. "the oldest
    unfinished row of its proposal"). Everything else is the same for every queue:

    - **claim**: first rows whose lease ran out (a dead worker's, oldest first), then
      ``pending`` rows that are due and not held by a stream feeder, in the queue's order;
      ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so concurrent claimers never wait on or take each
      other's rows; on SQLite the caller's write transaction (``BEGIN IMMEDIATE``, one writer)
      does the same. Claiming sets ``sending``, the lease and ``attempts + 1``.
    - **finish**: an outcome is written only while ``owner`` still holds the row (a stalled
      worker whose lease was taken over changes nothing); returns whether it did.
    - **renew** / **release**: keep held leases alive; give unsent rows back (attempt not counted).

    Every method takes the caller's session (or connection): the caller owns the transaction.
    """

    def __init__(
        self,
        model: type[Any],
        *,
        order_by: Callable[[], Sequence[Any]],
        eligible: Callable[[], Where] = lambda: (),
        returning: Callable[[], Sequence[Any]] | None = None,
    ) -> None:
        self.model = model
        self.order_by = order_by
        self.eligible = eligible
        self.returning = returning or (lambda: (model.__table__,))
        self._finish_stmts: dict[tuple[str, ...], Any] = {}

    # --- claiming --------------------------------------------------------------------
    def _lock(self, stmt: Any, session: Any) -> Any:
        if _dialect(session) == "postgresql":
            return stmt.with_for_update(skip_locked=True, of=self.model)
        return stmt

    async def due_ids(
        self, session: Any, *, now: datetime, limit: int, where: Where = ()
    ) -> list[int]:
        """Expired leases first (a dead worker's rows), then due ``pending`` rows in order."""
        m = self.model
        extra = [*where, *self.eligible()]
        expired = (
            select(m.id)
            .where(m.status == "sending", m.lease_until < now, *extra)
            .order_by(m.id)
            .limit(limit)
        )
        ids = list((await session.execute(self._lock(expired, session))).scalars())
        if len(ids) < limit:
            due = (
                select(m.id)
                .where(
                    m.status == "pending",
                    m.next_attempt_at <= now,
                    or_(m.lease_until.is_(None), m.lease_until < now),
                    *extra,
                )
                .order_by(*self.order_by())
                .limit(limit - len(ids))
            )
            ids += list((await session.execute(self._lock(due, session))).scalars())
        return ids

    async def claim(
        self,
        session: Any,
        *,
        owner: str,
        now: datetime,
        lease: timedelta,
        limit: int,
        where: Where = (),
    ) -> list[Any]:
        """Lease up to ``limit`` claimable rows to ``owner``; returns the ``returning`` rows."""
        if limit <= 0:
            return []
        ids = await self.due_ids(session, now=now, limit=limit, where=where)
        if not ids:
            return []
        return await self._lease(session, ids, owner=owner, until=now + lease)

    async def _lease(
        self, session: Any, ids: Sequence[int], *, owner: str, until: datetime, where: Where = ()
    ) -> list[Any]:
        m = self.model
        stmt = (
            update(m)
            .where(m.id.in_(list(ids)), *where)
            .values(
                status="sending", lease_until=until, lease_owner=owner, attempts=m.attempts + 1
            )
            .returning(*self.returning())
        )
        return list((await session.execute(stmt)).all())

    # --- handing rows over through Redis Streams -------------------------------------------
    async def mark_queued(
        self,
        session: Any,
        *,
        owner: str,
        now: datetime,
        hold: timedelta,
        limit: int,
        where: Where = (),
        returning: Sequence[Any] = (),
    ) -> list[Any]:
        """A feeder leases claimable rows to the streams for ``hold``; they stay ``pending``
        (so they can still be held back or cancelled) with ``lease_owner = feed:<owner>``."""
        ids = await self.due_ids(session, now=now, limit=limit, where=where)
        if not ids:
            return []
        m = self.model
        stmt = (
            update(m)
            .where(m.id.in_(ids))
            .values(status="pending", lease_until=now + hold, lease_owner=f"feed:{owner}")
            .returning(*(returning or (m.id,)))
        )
        return list((await session.execute(stmt)).all())

    async def take(
        self, session: Any, ids: Sequence[int], *, owner: str, now: datetime, lease: timedelta
    ) -> list[Any]:
        """A consumer leases the rows behind stream entries, if they are still to be sent:
        ``pending`` and due (a feeder's hold does not matter), or a dead worker's expired lease.
        An entry that reached two consumers, or a stale one, is taken by at most one."""
        if not ids:
            return []
        m = self.model
        takeable = or_(
            and_(m.status == "pending", m.next_attempt_at <= now),
            and_(m.status == "sending", m.lease_until < now),
        )
        return await self._lease(session, ids, owner=owner, until=now + lease, where=[takeable])

    # --- holding and finishing ---------------------------------------------------------------
    async def renew(
        self, session: Any, ids: Sequence[int], *, owner: str, until: datetime
    ) -> None:
        if not ids:
            return
        m = self.model
        await session.execute(
            update(m)
            .where(m.id.in_(list(ids)), m.lease_owner == owner)
            .values(lease_until=until)
        )

    async def finish(self, session: Any, row_id: int, *, owner: str, **values: Any) -> bool:
        """Write one outcome (``status`` and any other columns) and drop the lease, if ``owner``
        still holds the row; False when the lease was lost meanwhile."""
        m = self.model
        result = await session.execute(
            update(m)
            .where(m.id == row_id, m.lease_owner == owner, m.status == "sending")
            .values(lease_until=None, lease_owner=None, **values)
        )
        return bool(result.rowcount)

    def _finish_many_stmt(self, columns: tuple[str, ...], owner: str) -> Any:
        key = (owner, *columns)
        stmt = self._finish_stmts.get(key)
        if stmt is None:
            table = self.model.__table__
            values: dict[str, Any] = {}
            for name in columns:
                values[name] = bindparam(f"b_{name}", type_=table.c[name].type)
            stmt = self._finish_stmts[key] = (
                table.update()
                .where(
                    table.c.id == bindparam("b_id"),
                    table.c.lease_owner == owner,
                    table.c.status == "sending",
                )
                .values(lease_until=None, lease_owner=None, **values)
            )
        return stmt

    async def finish_many(
        self, session: Any, outcomes: Sequence[Mapping[str, Any]], *, owner: str
    ) -> None:
        """Write many outcomes in one statement (a group commit); each mapping has ``id`` and
        the same other columns. Rows ``owner`` no longer holds are left alone."""
        if not outcomes:
            return
        columns = tuple(sorted(k for k in outcomes[0] if k != "id"))
        stmt = self._finish_many_stmt(columns, owner)
        params = [{"b_id": o["id"], **{f"b_{k}": o[k] for k in columns}} for o in outcomes]
        await session.execute(stmt, params)

    async def release(self, session: Any, ids: Sequence[int], *, owner: str) -> None:
        """Give held rows back unsent (a graceful stop): due again at once, attempt not counted."""
        if not ids:
            return
        m = self.model
        await session.execute(
            update(m)
            .where(m.id.in_(list(ids)), m.lease_owner == owner, m.status == "sending")
            .values(status="pending", attempts=m.attempts - 1, lease_until=None, lease_owner=None)
        )
