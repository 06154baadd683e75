"""What linking identities reads and returns (plain data: no database here, so the
conversations may import it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["IdentityRow", "LinkResult", "MergeRow", "MergeSummary"]


@dataclass(slots=True)
class MergeSummary:
    """What moved (the person is told) and what was dropped as a duplicate."""

    survivor_id: int
    merged_id: int
    identities: int = 0
    proposals: int = 0
    opinions: int = 0
    follows: int = 0
    supports: int = 0
    supports_dropped: int = 0
    opinion_supports: int = 0
    opinion_supports_dropped: int = 0
    statement_votes: int = 0
    statement_votes_dropped: int = 0
    ballots: int = 0
    ballots_dropped: int = 0
    anonymous_duplicates: int = 0
    subscriptions: int = 0
    consent: bool = False
    other: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class LinkResult:
    """``summary`` when joined; else ``refused``: invalid | too_many | same_person."""

    summary: MergeSummary | None = None
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class IdentityRow:
    id: int
    channel: str
    external_id: str
    display_name: str | None
    level: str


@dataclass(frozen=True, slots=True)
class MergeRow:
    id: int
    survivor_id: int
    merged_id: int
    channel: str
    created_at: datetime
    summary: dict[str, Any]
