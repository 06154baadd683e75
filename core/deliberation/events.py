"""Deliberation's events."""

from __future__ import annotations

from dataclasses import dataclass

from core.events import Event

__all__ = [
    "OpinionSupported",
    "OpinionWithdrawn",
    "StatementAdded",
    "StatementsOpened",
    "SupportThresholdReached",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class OpinionSupported(Event):
    opinion_id: int
    proposal_id: int
    person_id: int
    support_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OpinionWithdrawn(Event):
    opinion_id: int
    proposal_id: int
    person_id: int
    forum_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SupportThresholdReached(Event):
    """A proposal reached the support threshold within its period and moved to review."""

    proposal_id: int
    tracking: str
    support_count: int
    threshold: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementsOpened(Event):
    proposal_id: int
    tracking: str
    opened_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementAdded(Event):
    statement_id: int
    proposal_id: int
    tracking: str
    pending: bool
