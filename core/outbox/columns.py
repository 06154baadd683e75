"""The lease columns every outbox table shares (a declarative mixin)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

__all__ = ["LeaseColumns"]


def _now() -> datetime:
    return datetime.now(UTC)


class LeaseColumns:
    """``status`` (``pending`` → ``sending`` under a lease → a final status of the table's own),
    ``attempts`` (counted at each claim), ``next_attempt_at`` (due time), ``lease_until`` /
    ``lease_owner`` (who holds the row, until when), ``last_error``.

    Mixed into ``Delivery``, ``OfficialOutbox`` and ``SyncOutbox``; ``core.outbox.LeasedQueue``
    reads and writes only these (plus ``id``).
    """

    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=_now)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
