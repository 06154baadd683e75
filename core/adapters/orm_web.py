"""Web chat tables: sessions (stored by token hash), the inbox of pushed messages, uploads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.adapters.orm import Base, utcnow

__all__ = ["WebInboxItem", "WebSessionRow", "WebUpload"]


class WebSessionRow(Base):
    """One browser's chat session. ``id`` is the SHA-256 (hex) of the token the browser keeps.

    The id doubles as the web identity's ``external_id`` and its inbox ``address``: a leaked
    table reveals no live token.
    """

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    locale: Mapped[str] = mapped_column(String(8), default="ko")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    delivered_up_to: Mapped[int] = mapped_column(Integer, default=0)  # last inbox id streamed


class WebInboxItem(Base):
    """A message pushed to a web session (status change, campaign); its id is the SSE event id."""

    __tablename__ = "web_inbox"
    __table_args__ = (Index("ix_web_inbox_address_id", "address", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class WebUpload(Base):
    """A photo a citizen uploaded; the file lives under ``data_dir/uploads/web``."""

    __tablename__ = "web_uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("web_sessions.id", ondelete="CASCADE"), index=True
    )
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
