"""Ports: the protocols the outside world implements for the core (channels, forum, stores)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol, runtime_checkable

from core.messages import Reply

__all__ = [
    "AddressRate",
    "ChannelCapabilities",
    "ChannelLimits",
    "Clock",
    "ForumBackend",
    "ForumChange",
    "ForumError",
    "ForumProposal",
    "ForumStatus",
    "SkippedEvent",
    "VoteRefused",
    "ForumUnavailable",
    "PermanentSendError",
    "RetryLater",
    "SendError",
    "Sender",
    "StateKey",
    "StateStore",
    "SystemClock",
    "TransientSendError",
    "Unreachable",
]


# --- clock ---------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware UTC datetime."""
        ...


class SystemClock:
    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)


# --- channels ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelCapabilities:
    """What a channel can do; core and conversations adapt to it without knowing the platform.

    ``push``: may we message a person who did not just write to us? A channel that cannot
    keeps notifications in the outbox until the person's next contact. ``push_cost``: what one
    pushed message costs (in ``cost_currency``), for campaign estimates.
    """

    buttons: bool = True
    max_buttons: int = 10
    button_label_max: int = 30
    text_max: int = 4096
    edit: bool = False
    push: bool = True
    push_cost: float = 0.0
    cost_currency: str = "KRW"
    photo_intake: bool = False
    location_intake: bool = False
    images: bool = True
    keeps_typed_text: bool = False  # a refused text stays in the person's box (web page)
    documents: bool = False  # can hand over a file (``Reply.document``): a file or a link
    identity_level: str = "guest"  # participation an identity here vouches for (messenger: tied
    # to a phone number by the platform); see core.participation


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressRate:
    """At most ``count`` sends per ``period`` seconds to one address. ``scope`` names the
    limit (part of its key): two rates of one address with different scopes are separate."""

    scope: str
    count: float
    period: float = 1.0


@dataclass(frozen=True, kw_only=True)
class ChannelLimits:
    """Outbound rate limits the delivery engine enforces for one channel.

    ``per_second`` is across the whole bot; ``for_address(address)`` lists the limits of one
    address. A channel whose addresses differ (a group and a person) subclasses this and
    overrides ``for_address``: core never looks inside an address.
    """

    per_second: float  # across the whole bot
    per_address_per_second: float | None = None

    def for_address(self, address: str) -> tuple[AddressRate, ...]:
        if self.per_address_per_second is None:
            return ()
        return (AddressRate(scope="c", count=self.per_address_per_second),)


class SendError(Exception):
    """Base of what a Sender raises; the delivery engine decides what to do."""


class RetryLater(SendError):
    """The platform asked us to wait (HTTP 429 ``retry_after``)."""

    def __init__(self, retry_after: float, message: str = "") -> None:
        super().__init__(message or f"retry after {retry_after}s")
        self.retry_after = retry_after


class Unreachable(SendError):
    """The person blocked the bot, left, or the chat is gone: stop sending to them."""


class TransientSendError(SendError):
    """A network error or 5xx: retry with backoff."""


class PermanentSendError(SendError):
    """The message itself is bad (400): retrying will not help."""


@runtime_checkable
class Sender(Protocol):
    """One per channel: turns a neutral ``Reply`` into a platform call.

    Returns the platform's message reference (used for edits), or None.
    ``edit_ref`` asks to edit that earlier message instead of sending a new one.
    """

    channel: str
    capabilities: ChannelCapabilities
    limits: ChannelLimits

    async def send(self, address: str, reply: Reply, *, edit_ref: str | None = None) -> str | None:
        ...


# --- conversation state --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateKey:
    """Whose conversation: one per channel and platform user."""

    channel: str
    user_id: str

    def __str__(self) -> str:
        return f"{self.channel}:{self.user_id}"


class StateStore(Protocol):
    """Conversation state and small shared facts; memory (embedded) or Redis."""

    async def get(self, key: StateKey) -> dict[str, Any] | None: ...

    async def set(self, key: StateKey, value: dict[str, Any], *, ttl: int) -> None: ...

    async def delete(self, key: StateKey) -> None: ...

    def lock(self, key: StateKey) -> AbstractAsyncContextManager[None]:
        """Serialise work on one conversation (across processes when on Redis)."""
        ...

    async def claim(self, name: str, *, ttl: int) -> bool:
        """True the first time ``name`` is claimed within ``ttl`` seconds (dedupe)."""
        ...

    async def close(self) -> None: ...


# --- the forum backend ---------------------------------------------------------------


class ForumError(Exception):
    """The forum refused the request for good (4xx other than 409/429)."""


class ForumUnavailable(ForumError):
    """The forum is down, slow or answered 5xx/429: try again later."""


class ForumConflict(ForumError):
    """A status change found the forum elsewhere (both sides moved): the forum's ``status`` and
    ``version`` win (it is the system of record)."""

    def __init__(self, message: str, *, status: str, version: int) -> None:
        super().__init__(message)
        self.status = status
        self.version = version


class VoteRefused(ForumError):
    """The forum refused a support for good (a vote limit, voting closed, or the same voter
    again where the forum cannot say which): recorded, never retried, never blocking."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ForumProposal:
    tracking: str
    title: str
    body: str
    category: str
    region: str | None
    author_ref: str  # a pseudonymous reference, never a name or a chat id
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ForumChange:
    """Something that happened on the forum (webhook or reconciliation)."""

    kind: str  # "status_changed" | "answered" | "comment_added"
    forum_id: str  # the forum's proposal id
    tracking: str | None
    version: int
    status: str | None = None
    reason: str = ""
    body: str = ""
    expected_date: date | None = None
    comment_id: str | None = None
    at: datetime | None = None
    event_id: str | None = None  # the forum's event id (webhook dedupe)
    author_ref: str | None = None  # a comment's author; ours start with ``gongnon:``


@dataclass(frozen=True, slots=True, kw_only=True)
class ForumStatus:
    """A proposal's status on the forum, with its history (newest last)."""

    forum_id: str
    tracking: str | None
    status: str
    version: int
    history: tuple[ForumChange, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SkippedEvent:
    """A change-feed event the contract refused: left out so the feed moves on, and reported."""

    event_id: str
    problem: str


class ForumBackend(Protocol):
    """The main forum. Every write carries an idempotency key and may be retried."""

    name: str

    async def create_proposal(self, proposal: ForumProposal, *, idempotency_key: str) -> str:
        """Returns the forum's id for the proposal."""
        ...

    async def add_feedback(
        self, forum_id: str, *, body: str, author_ref: str, idempotency_key: str
    ) -> str: ...

    async def add_support(
        self, forum_id: str, *, author_ref: str, idempotency_key: str
    ) -> str | None:
        """Returns a note kept on the outbox row (e.g. ``"voted"``), or None."""
        ...

    async def withdraw(self, forum_id: str, *, author_ref: str, idempotency_key: str) -> None:
        ...

    async def change_status(
        self,
        forum_id: str,
        *,
        status: str,
        from_status: str,
        reason: str,
        expected_date: str | None,
        idempotency_key: str,
    ) -> int:
        """An official's status change; returns the forum's version of it. Compare-and-set:
        raises ``ForumConflict`` when the forum's status is no longer ``from_status``."""
        ...

    async def anonymise(self, forum_id: str, *, author_ref: str, idempotency_key: str) -> None:
        """The person behind ``author_ref`` was erased: on this proposal, whatever they wrote or
        supported becomes anonymous (the forum replaces the reference)."""
        ...

    async def proposal_status(self, forum_id: str) -> ForumStatus:
        """The proposal's current status, version and history on the forum."""
        ...

    async def changes_since(self, cursor: str | None) -> tuple[Sequence[ForumChange], str | None]:
        """Changes after ``cursor`` (None: from the start) and the cursor to ask with next.

        An empty sequence means caught up; the returned cursor is then the one to keep.
        """
        ...

    async def close(self) -> None: ...

