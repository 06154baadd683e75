"""Values and the port of the officials' board: what Slack (or another board) is asked to show."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from core.deliberation.model import DiscussionSummary
from core.domain.model import FeedbackView, ProposalStatus, ProposalSummary, ProposalView

__all__ = [
    "Alert",
    "Board",
    "Digest",
    "DiscussionAlert",
    "DiscussionSummaries",
    "MovedEntry",
    "Outcome",
    "OverdueEntry",
    "PostRef",
    "SupportedEntry",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class PostRef:
    """A message on the board: its channel and timestamp id."""

    channel: str
    ts: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """Something officials must know that no proposal card shows (a sync gave up, …)."""

    kind: str
    tracking: str | None
    attempts: int
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscussionAlert:
    """A proposal reached the support threshold and moved to review: its discussion so far."""

    summary: DiscussionSummary
    support_count: int
    threshold: int


class DiscussionSummaries(Protocol):
    """What the board reads of the deliberation (``core.discussions``)."""

    async def summary(self, tracking: str, *, top: int = 2) -> DiscussionSummary | None: ...

    async def active_discussions(
        self, since: datetime, *, limit: int = 10, until: datetime | None = None
    ) -> list[str]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SupportedEntry:
    proposal: ProposalSummary
    gained: int  # supports received in the period


@dataclass(frozen=True, slots=True, kw_only=True)
class MovedEntry:
    tracking: str
    title: str
    category: str
    from_status: ProposalStatus
    to_status: ProposalStatus
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OverdueEntry:
    proposal: ProposalSummary
    idle_days: int  # days since the last status change


@dataclass(frozen=True, slots=True, kw_only=True)
class Digest:
    """One period's activity; ``category`` narrows it to one category (routed digests).

    ``start``/``end`` are local dates, ``end`` exclusive. Lists are capped; ``*_total`` count all.
    """

    period: str  # "daily" | "weekly"
    start: date
    end: date
    category: str | None
    new: tuple[ProposalSummary, ...]
    new_total: int
    supported: tuple[SupportedEntry, ...]
    moved: tuple[MovedEntry, ...]
    moved_total: int
    overdue: tuple[OverdueEntry, ...]
    overdue_total: int
    overdue_days: int
    by_category: tuple[tuple[str, int], ...] = field(default_factory=tuple)
    # the busiest discussions of the period (new opinions), each with its summary
    discussions: tuple[DiscussionSummary, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.new_total or self.moved_total or self.overdue_total or self.supported
                    or self.discussions)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How an official's action ended: ``key`` is a catalog key for the answer shown to them."""

    ok: bool
    key: str
    params: dict[str, Any] = field(default_factory=dict)
    value: Any = None


class Board(Protocol):
    """Where officials read and act (implemented by ``bots/slack/sender.SlackBoard``).

    Methods raise ``core.ports`` send errors: ``RetryLater``, ``TransientSendError``,
    ``PermanentSendError``; the board worker decides what to do.
    """

    async def post_card(self, channel: str, proposal: ProposalView) -> PostRef: ...

    async def update_card(self, ref: PostRef, proposal: ProposalView) -> None: ...

    async def post_reply(
        self, ref: PostRef, proposal: ProposalView, feedback: FeedbackView
    ) -> None: ...

    async def post_alert(self, channel: str, alert: Alert) -> None: ...

    async def post_discussion_alert(self, channel: str, alert: DiscussionAlert) -> None:
        """A proposal reached the support threshold: its discussion summary."""
        ...

    async def post_digest(
        self,
        channel: str,
        digest: Digest,
        *,
        chart: bytes | None,
        done_parts: int,
        on_part: Callable[[int], Awaitable[None]],
    ) -> None:
        """Post the digest's messages from part ``done_parts`` on (the chart is the last part),
        calling ``on_part(n)`` after each so a retry resumes where it stopped."""
        ...
