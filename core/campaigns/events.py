"""Campaign events, raised by the campaign handlers and dispatched by the message bus."""

from __future__ import annotations

from dataclasses import dataclass

from core.events import Event

__all__ = [
    "BallotCast",
    "ConsentChanged",
    "PushChanged",
    "PushFinished",
    "SurveyClosed",
    "SurveyCreated",
    "SurveyResultsPublished",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class SurveyCreated(Event):
    survey_id: int
    slug: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BallotCast(Event):
    """No person id: anonymous surveys must not leak who answered through events either."""

    survey_id: int
    changed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SurveyClosed(Event):
    survey_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SurveyResultsPublished(Event):
    survey_id: int
    participants_notified: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentChanged(Event):
    person_id: int
    opted_in: bool
    cancelled_deliveries: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PushChanged(Event):
    """started | scheduled | paused | resumed | cancelled"""

    push_id: int
    change: str
    actor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PushFinished(Event):
    push_id: int
