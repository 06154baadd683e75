"""Tables for forum sync: the outbound outbox (ordered per proposal) and the inbound cursors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.adapters.orm import Base, utcnow
from core.outbox.columns import LeaseColumns

__all__ = ["SyncCursor", "SyncOutbox"]


class SyncOutbox(LeaseColumns, Base):
    """One citizen action waiting to reach the forum, written in the action's own transaction.

    Rows of one proposal go out strictly in ``id`` order; a relay holds a row with a lease.
    ``status``: pending → sending → sent | dead (dead rows wait for ``gongnon sync retry``).
    """

    __tablename__ = "sync_outbox"
    __table_args__ = (
        Index("ix_sync_outbox_due", "status", "next_attempt_at"),
        Index("ix_sync_outbox_proposal", "proposal_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # create | support | feedback | withdraw
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id", ondelete="CASCADE"))
    tracking: Mapped[str] = mapped_column(String(16))
    ref_id: Mapped[int | None] = mapped_column(Integer, default=None)  # feedback id, person id
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    forum_ref: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    dead_at: Mapped[datetime | None] = mapped_column(default=None)


class SyncCursor(Base):
    """Where reconciliation stopped reading the forum's change feed."""

    __tablename__ = "sync_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
