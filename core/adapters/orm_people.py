"""Tables for linking identities into one person: one-time link codes, failed guesses, merges."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.adapters.orm import Base, utcnow

__all__ = ["LinkAttempt", "LinkCode", "PersonMerge", "VerificationCode", "VerifiedPhone"]


class LinkCode(Base):
    """A 6-digit code shown to a person; typed on another channel it joins both identities.

    Only a digest of the code is kept; it is unique among stored codes, valid until
    ``expires_at`` and spent once (``used_at``).
    """

    __tablename__ = "link_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class LinkAttempt(Base):
    """A wrong code typed by a person: the durable half of the guess limit."""

    __tablename__ = "link_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PersonMerge(Base):
    """Two people joined into one: ``merged_id`` now has nothing, ``survivor_id`` has it all."""

    __tablename__ = "person_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survivor_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), index=True
    )
    merged_id: Mapped[int] = mapped_column(Integer)  # the emptied person (may be erased later)
    channel: Mapped[str] = mapped_column(String(16))  # where the code was typed
    summary: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VerificationCode(Base):
    """A one-time code sent to a person's phone by SMS (one pending per person).

    Only digests are kept: of the code, and of the phone number (to say "this number already
    verified another person" without storing the number).
    """

    __tablename__ = "verification_codes"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True
    )
    code_digest: Mapped[str] = mapped_column(String(64))
    phone_digest: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sends: Mapped[int] = mapped_column(Integer, default=0)  # within the hour from window_start
    window_start: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)


class VerifiedPhone(Base):
    """A phone number (its digest) that verified one person: one phone, one person."""

    __tablename__ = "verified_phones"

    phone_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), index=True
    )
    method: Mapped[str] = mapped_column(String(16))
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)
