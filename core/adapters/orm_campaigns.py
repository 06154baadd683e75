"""Tables for polls, surveys, ballots, consent, topic subscriptions and campaign pushes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.adapters.orm import Base, utcnow

__all__ = [
    "Ballot",
    "ConsentEvent",
    "ConsentState",
    "Participation",
    "Push",
    "Subscription",
    "Survey",
    "SurveyInvitation",
]


class Survey(Base):
    """A poll (one question) or a survey (several). ``definition`` holds the questions."""

    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # poll | survey
    title: Mapped[str] = mapped_column(String(200))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=True)
    live_results: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_change: Mapped[bool] = mapped_column(Boolean, default=False)
    # open: anyone at the participation level; targeted: only the people a push sent it to
    audience: Mapped[str] = mapped_column(String(12), default="open")
    opens_at: Mapped[datetime] = mapped_column()
    closes_at: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | closed
    # Key of the participation HMAC; wiped at close so participation can no longer be derived.
    voter_salt: Mapped[bytes | None] = mapped_column(LargeBinary(32), default=None)
    ballot_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)


class SurveyInvitation(Base):
    """A targeted survey was pushed to this person (written in the push's fan-out batch)."""

    __tablename__ = "survey_invitations"

    survey_id: Mapped[int] = mapped_column(
        ForeignKey("surveys.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column()


class Participation(Base):
    """One row per person per survey, keyed by an HMAC: the one-ballot rule, never the answer."""

    __tablename__ = "survey_participations"

    survey_id: Mapped[int] = mapped_column(
        ForeignKey("surveys.id", ondelete="CASCADE"), primary_key=True
    )
    voter_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Identified surveys only: which ballot to change. Anonymous ones leave it empty.
    ballot_id: Mapped[int | None] = mapped_column(Integer, default=None)


class Ballot(Base):
    """Answers. Anonymous ballots carry no person, no channel and no time."""

    __tablename__ = "ballots"
    __table_args__ = (UniqueConstraint("survey_id", "person_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survey_id: Mapped[int] = mapped_column(
        ForeignKey("surveys.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("persons.id", ondelete="SET NULL"), default=None
    )
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    channel: Mapped[str | None] = mapped_column(String(16), default=None)
    cast_at: Mapped[datetime | None] = mapped_column(default=None)


class ConsentState(Base):
    """Whether a person currently accepts campaign messages (absent = never asked = no)."""

    __tablename__ = "consent_states"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True
    )
    opted_in: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsentEvent(Base):
    """The consent ledger: every opt-in and opt-out, when, where and how.

    ``purpose`` ``campaign``: campaign messages (opt_in | opt_out). ``privacy``: the personal-data
    notice shown before a first proposal, comment or ballot (agree | refuse), with the notice's
    ``version`` (core.privacy.consent).
    """

    __tablename__ = "consent_ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(16), default="campaign",
                                         server_default="campaign")
    version: Mapped[str | None] = mapped_column(String(32), default=None)
    action: Mapped[str] = mapped_column(String(12))  # opt_in | opt_out | agree | refuse
    channel: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(200))  # the words or button that did it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Subscription(Base):
    """A topic a person wants campaign messages about: a category or a region."""

    __tablename__ = "topic_subscriptions"
    __table_args__ = (Index("ix_topic_subscriptions_topic", "kind", "topic"),)

    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)  # category | region
    topic: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Push(Base):
    """A campaign push: a message or a survey to a segment, now or at ``scheduled_at``."""

    __tablename__ = "pushes"
    __table_args__ = (Index("ix_pushes_status_scheduled", "status", "scheduled_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    survey_id: Mapped[int | None] = mapped_column(
        ForeignKey("surveys.id", ondelete="SET NULL"), default=None
    )
    message: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"ko": …, "en": …}
    segment: Mapped[dict[str, Any]] = mapped_column(JSON)
    # draft → scheduled → running ⇄ paused → done | cancelled
    status: Mapped[str] = mapped_column(String(12), default="draft")
    scheduled_at: Mapped[datetime | None] = mapped_column(default=None)
    cursor: Mapped[int] = mapped_column(Integer, default=0)  # last person id enqueued
    enqueued: Mapped[int] = mapped_column(Integer, default=0)
    fanout_done: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(128))
    progress_ref: Mapped[str | None] = mapped_column(Text, default=None)  # e.g. Slack channel:ts
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
