"""Domain events: facts that happened, raised by handlers and dispatched by the message bus."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from core.domain.model import ProposalStatus

__all__ = [
    "Event",
    "FeedbackAdded",
    "IdentityReachabilityChanged",
    "ProposalAnswered",
    "ProposalAssigned",
    "ProposalFollowed",
    "ProposalSubmitted",
    "ProposalSupported",
    "ProposalWithdrawn",
    "StatusChanged",
    "SyncDeadLettered",
]


class Event:
    """Marker base class for events."""

    __slots__ = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalSubmitted(Event):
    proposal_id: int
    tracking: str
    person_id: int
    category: str
    region: str | None
    channel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalSupported(Event):
    proposal_id: int
    tracking: str
    person_id: int
    support_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalFollowed(Event):
    proposal_id: int
    tracking: str
    person_id: int
    following: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedbackAdded(Event):
    feedback_id: int
    proposal_id: int
    tracking: str
    person_id: int | None
    from_forum: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalWithdrawn(Event):
    proposal_id: int
    tracking: str
    person_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChanged(Event):
    proposal_id: int
    tracking: str
    from_status: ProposalStatus
    to_status: ProposalStatus
    reason: str
    expected_date: date | None
    actor: str
    source: str
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalAssigned(Event):
    proposal_id: int
    tracking: str
    assignee: str
    actor: str
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalAnswered(Event):
    proposal_id: int
    tracking: str
    feedback_id: int
    actor: str
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityReachabilityChanged(Event):
    channel: str
    address: str
    reachable: bool
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncDeadLettered(Event):
    """An outbox row gave up reaching the forum; officials should look (``gongnon sync retry``)."""

    kind: str
    tracking: str | None
    attempts: int
    error: str
