"""The data of a daily or weekly digest: periods in local time and the queries behind them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from core.adapters.db import Database
from core.adapters.orm import Proposal, StatusChange, Support
from core.domain.model import ProposalStatus, ProposalSummary
from core.officials.model import Digest, MovedEntry, OverdueEntry, SupportedEntry

__all__ = ["PERIODS", "build_digest", "utc_bounds", "window"]

PERIODS = ("daily", "weekly")
WAITING = (
    ProposalStatus.RECEIVED.value,
    ProposalStatus.UNDER_REVIEW.value,
    ProposalStatus.FORWARDED.value,
)
LIST_LIMIT = 100
TOP_SUPPORTED = 5


def window(period: str, now: datetime, tz: ZoneInfo) -> tuple[date, date]:
    """The last complete period before ``now``: yesterday, or last Monday-to-Sunday week."""
    today = now.astimezone(tz).date()
    if period == "daily":
        return today - timedelta(days=1), today
    if period == "weekly":
        end = today - timedelta(days=today.weekday())
        return end - timedelta(days=7), end
    raise ValueError(f"unknown digest period {period!r}")


def utc_bounds(start: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return (
        datetime.combine(start, time(0), tz).astimezone(UTC),
        datetime.combine(end, time(0), tz).astimezone(UTC),
    )


def _summary(p: Proposal) -> ProposalSummary:
    return ProposalSummary(
        tracking=p.tracking,
        title=p.title,
        category=p.category,
        status=ProposalStatus(p.status),
        created_at=p.created_at,
        support_count=p.support_count,
    )


async def build_digest(
    db: Database,
    *,
    period: str,
    start: date,
    end: date,
    tz: ZoneInfo,
    overdue_days: int,
    category: str | None = None,
) -> Digest:
    since, until = utc_bounds(start, end, tz)
    async with db.read() as s:
        in_scope = [Proposal.category == category] if category else []
        new_where = [Proposal.created_at >= since, Proposal.created_at < until, *in_scope]
        new = (
            await s.execute(
                select(Proposal).where(*new_where).order_by(Proposal.id).limit(LIST_LIMIT)
            )
        ).scalars().all()
        new_total = (
            await s.execute(select(func.count(Proposal.id)).where(*new_where))
        ).scalar_one()
        by_category = (
            await s.execute(
                select(Proposal.category, func.count(Proposal.id))
                .where(*new_where)
                .group_by(Proposal.category)
                .order_by(func.count(Proposal.id).desc(), Proposal.category)
            )
        ).all()

        gained = func.count(Support.person_id).label("gained")
        supported = (
            await s.execute(
                select(Proposal, gained)
                .join(Support, Support.proposal_id == Proposal.id)
                .where(Support.created_at >= since, Support.created_at < until, *in_scope)
                .group_by(Proposal.id)
                .order_by(gained.desc(), Proposal.id)
                .limit(TOP_SUPPORTED)
            )
        ).all()

        moved_where = [
            StatusChange.created_at >= since,
            StatusChange.created_at < until,
            StatusChange.from_status.is_not(None),
            *in_scope,
        ]
        moved = (
            await s.execute(
                select(StatusChange, Proposal.tracking, Proposal.title, Proposal.category)
                .join(Proposal, Proposal.id == StatusChange.proposal_id)
                .where(*moved_where)
                .order_by(StatusChange.id)
                .limit(LIST_LIMIT)
            )
        ).all()
        moved_total = (
            await s.execute(
                select(func.count(StatusChange.id))
                .join(Proposal, Proposal.id == StatusChange.proposal_id)
                .where(*moved_where)
            )
        ).scalar_one()

        last = (
            select(
                StatusChange.proposal_id.label("pid"),
                func.max(StatusChange.created_at).label("last"),
            )
            .group_by(StatusChange.proposal_id)
            .subquery()
        )
        cutoff = until - timedelta(days=overdue_days)
        overdue_where = [
            Proposal.status.in_(WAITING),
            Proposal.created_at < until,
            last.c.last < cutoff,
            *in_scope,
        ]
        overdue = (
            await s.execute(
                select(Proposal, last.c.last)
                .join(last, last.c.pid == Proposal.id)
                .where(*overdue_where)
                .order_by(last.c.last, Proposal.id)
                .limit(LIST_LIMIT)
            )
        ).all()
        overdue_total = (
            await s.execute(
                select(func.count(Proposal.id))
                .join(last, last.c.pid == Proposal.id)
                .where(*overdue_where)
            )
        ).scalar_one()

    return Digest(
        period=period,
        start=start,
        end=end,
        category=category,
        new=tuple(_summary(p) for p in new),
        new_total=int(new_total),
        supported=tuple(SupportedEntry(proposal=_summary(p), gained=int(n)) for p, n in supported),
        moved=tuple(
            MovedEntry(
                tracking=tracking,
                title=title,
                category=cat,
                from_status=ProposalStatus(change.from_status),
                to_status=ProposalStatus(change.to_status),
                at=change.created_at,
            )
            for change, tracking, title, cat in moved
        ),
        moved_total=int(moved_total),
        overdue=tuple(
            OverdueEntry(proposal=_summary(p), idle_days=_days(until, at)) for p, at in overdue
        ),
        overdue_total=int(overdue_total),
        overdue_days=overdue_days,
        by_category=tuple((str(c), int(n)) for c, n in by_category),
    )


def _days(until: datetime, at: datetime) -> int:
    if at.tzinfo is None:  # aggregated values skip the column type on some drivers
        at = at.replace(tzinfo=UTC)
    return max(0, (until - at).days)
