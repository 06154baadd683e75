"""Campaign commands: frozen requests handled in ``core.campaigns.handlers``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.campaigns.model import Segment, SurveyDef
from core.commands import Command

__all__ = [
    "CancelPush",
    "CastBallot",
    "CloseSurvey",
    "CreatePush",
    "CreateSurvey",
    "FanOutPush",
    "FinishPush",
    "HoldForQuietHours",
    "PausePush",
    "PublishResults",
    "ResumePush",
    "SetConsent",
    "SetProgressRef",
    "SetSubscription",
    "StartPush",
    "TestPush",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateSurvey(Command):
    """Returns the new survey id. ``actor`` is e.g. ``cli`` or ``slack:U123``."""

    definition: SurveyDef
    actor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CastBallot(Command):
    """One person's complete answers. Returns ``"cast"`` or ``"changed"``."""

    survey_id: int
    person_id: int
    answers: dict[str, Any]
    channel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseSurvey(Command):
    """Stop taking ballots (at ``closes_at`` or early by staff). True when it closed now."""

    survey_id: int
    actor: str = "scheduler"


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishResults(Command):
    """Tell participants the final results (with the chart) and forget who they were."""

    survey_id: int
    chart: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SetConsent(Command):
    """Opt in to or out of campaign messages. True when the state changed."""

    person_id: int
    opted_in: bool
    channel: str
    source: str  # the words typed or the button pressed


@dataclass(frozen=True, slots=True, kw_only=True)
class SetSubscription(Command):
    """Follow or drop a topic (``kind`` "category" or "region"). True when it changed."""

    person_id: int
    kind: str
    topic: str
    on: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatePush(Command):
    """A message (``{"ko": …, "en": …}``) and/or a survey to a segment. Returns its id."""

    name: str
    message: dict[str, str]
    segment: Segment
    actor: str
    survey_id: int | None = None
    scheduled_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StartPush(Command):
    """Start now, or at the push's ``scheduled_at``. Returns the new status."""

    push_id: int
    actor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PausePush(Command):
    push_id: int
    actor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumePush(Command):
    push_id: int
    actor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelPush(Command):
    push_id: int
    actor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FanOutPush(Command):
    """Queue the next ``batch`` recipients of a running push. Returns how many were queued,
    or -1 when the audience is exhausted (or the push is no longer running)."""

    push_id: int
    batch: int = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishPush(Command):
    """Mark a running push done when nothing is left to send. True when it finished now."""

    push_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TestPush(Command):
    """Send the push's message to one address (the campaigner), ignoring segment and consent."""

    push_id: int
    channel: str
    address: str
    locale: str = "ko"
    actor: str = "cli"


@dataclass(frozen=True, slots=True, kw_only=True)
class SetProgressRef(Command):
    """Remember where the push's progress is shown (e.g. ``slack:C123:1700000000.0001``)."""

    push_id: int
    ref: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldForQuietHours(Command):
    """Quiet hours: queued push deliveries wait until ``until``. Returns how many moved."""

    until: datetime
