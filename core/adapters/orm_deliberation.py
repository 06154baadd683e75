"""Tables for deliberation: 공감 on opinions, pseudonyms per proposal, statement voting."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.adapters.orm import Base, utcnow

__all__ = ["DiscussionAlias", "OpinionSupport", "Statement", "StatementRound", "StatementVote"]


class OpinionSupport(Base):
    """One 공감 per person and opinion (the primary key says so)."""

    __tablename__ = "opinion_supports"

    feedback_id: Mapped[int] = mapped_column(
        ForeignKey("feedback.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DiscussionAlias(Base):
    """"시민 4821": a random number per person and proposal, unique within the proposal.

    It says nothing about the person or the channel, and differs between proposals, so
    opinions on two proposals cannot be tied together by their pseudonyms.
    """

    __tablename__ = "discussion_aliases"
    __table_args__ = (UniqueConstraint("proposal_id", "alias", name="uq_discussion_alias"),)

    proposal_id: Mapped[int] = mapped_column(
        ForeignKey("proposals.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[int] = mapped_column(Integer)


class StatementRound(Base):
    """Statement voting opened on a proposal (by an official or its author)."""

    __tablename__ = "statement_rounds"

    proposal_id: Mapped[int] = mapped_column(
        ForeignKey("proposals.id", ondelete="CASCADE"), primary_key=True
    )
    opened_by: Mapped[str] = mapped_column(String(128))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)


class Statement(Base):
    __tablename__ = "statements"
    __table_args__ = (Index("ix_statements_proposal_status", "proposal_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("persons.id", ondelete="SET NULL"), default=None
    )
    actor: Mapped[str | None] = mapped_column(String(128), default=None)
    status: Mapped[str] = mapped_column(String(16), default="approved")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StatementVote(Base):
    """One vote per person and statement; results never name anyone."""

    __tablename__ = "statement_votes"

    statement_id: Mapped[int] = mapped_column(
        ForeignKey("statements.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    vote: Mapped[int] = mapped_column(SmallInteger)  # 1 agree, -1 disagree, 0 pass
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
