"""Tables for officials in Slack: triage posts, the durable queue of Slack posts, the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.adapters.orm import Base, utcnow
from core.outbox.columns import LeaseColumns

__all__ = ["OfficialAudit", "OfficialOutbox", "OfficialPost"]


class OfficialPost(Base):
    """The triage message of one proposal: where it is, so status changes edit it in place."""

    __tablename__ = "official_posts"

    proposal_id: Mapped[int] = mapped_column(
        ForeignKey("proposals.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str | None] = mapped_column(String(32), default=None)
    thread_open: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OfficialOutbox(LeaseColumns, Base):
    """Work for the officials' board (post, update, reply, alert, digest), retried until done.

    Rows are written in the transaction that caused them; ``dedupe_key`` makes enqueueing
    idempotent. pending → sending → done | failed.
    """

    __tablename__ = "official_outbox"
    __table_args__ = (Index("ix_official_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    proposal_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(default=None)


class OfficialAudit(Base):
    """Who did what to which proposal, when, and how it ended (ok, refused, error, duplicate)."""

    __tablename__ = "official_audit"
    __table_args__ = (Index("ix_official_audit_tracking", "tracking", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    tracking: Mapped[str | None] = mapped_column(String(16), default=None)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
