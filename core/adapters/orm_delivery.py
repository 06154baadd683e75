"""The delivery outbox: one row per message to one recipient, drained by delivery workers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.adapters.orm import Base, utcnow
from core.outbox.columns import LeaseColumns

__all__ = ["Delivery"]


class Delivery(LeaseColumns, Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_due", "status", "priority", "next_attempt_at", "id"),
        Index("ix_deliveries_push", "push_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(128))
    person_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # ReplyKind
    priority: Mapped[int] = mapped_column(Integer, default=5)  # lower goes first
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    push_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # status (LeaseColumns): pending → sending → sent | failed | unreachable | cancelled |
    # opted_out; campaigns move unsent push rows pending ↔ held (see core.delivery)
    message_ref: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
