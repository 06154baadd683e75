"""Commands: frozen requests to change something. One handler each, in ``core.handlers``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from core.domain.model import AttachmentView, ProposalStatus
from core.messages import Reply

__all__ = [
    "CollectNews",
    "KeepNews",
    "AddFeedback",
    "AnswerProposal",
    "AssignProposal",
    "ChangeStatus",
    "Command",
    "EnsureIdentity",
    "FollowProposal",
    "MarkUnreachable",
    "SetLocale",
    "SubmitProposal",
    "SupportProposal",
    "UnfollowProposal",
    "WithdrawProposal",
]


class Command:
    """Marker base class for commands."""

    __slots__ = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class EnsureIdentity(Command):
    """Find or create the person behind a channel identity. Returns the person id.

    ``external_id`` is the platform's stable user id; ``address`` is where to send
    (a Telegram chat id, a web session's inbox id, a Slack user id).
    """

    channel: str
    external_id: str
    address: str
    locale: str | None = None
    display_name: str | None = None
    level: str = "guest"  # what the channel vouches for (core.participation.Level)


@dataclass(frozen=True, slots=True, kw_only=True)
class SetLocale(Command):
    person_id: int
    locale: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkUnreachable(Command):
    """The platform says we can no longer reach this identity (blocked, kicked, deleted)."""

    channel: str
    address: str
    reason: str
    reachable: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitProposal(Command):
    """Returns the new tracking number."""

    person_id: int
    title: str
    body: str
    category: str
    region: str | None = None
    attachments: tuple[AttachmentView, ...] = ()
    channel: str = "web"


@dataclass(frozen=True, slots=True, kw_only=True)
class SupportProposal(Command):
    person_id: int
    tracking: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FollowProposal(Command):
    person_id: int
    tracking: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UnfollowProposal(Command):
    person_id: int
    tracking: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AddFeedback(Command):
    """A citizen's opinion (``person_id``), or one that came from the forum (``forum_id``).

    ``stance`` is ``for``/``against``/``other`` (None: not said); ``parent_id`` makes it a reply
    to another opinion (one level of replies).
    """

    tracking: str
    body: str
    person_id: int | None = None
    forum_id: str | None = None
    stance: str | None = None
    parent_id: int | None = None
    parent_forum_id: str | None = None  # a forum reply names its parent by the forum's id


@dataclass(frozen=True, slots=True, kw_only=True)
class WithdrawProposal(Command):
    person_id: int
    tracking: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeStatus(Command):
    """An official (Slack, CLI) or the forum moves a proposal along its lifecycle.

    ``actor`` is e.g. ``slack:U123`` or ``forum``; ``version`` is the forum's event version
    (a late or repeated event with a version ≤ the stored one is ignored).
    """

    tracking: str
    status: ProposalStatus
    reason: str
    actor: str
    source: str
    expected_date: date | None = None
    version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AssignProposal(Command):
    tracking: str
    assignee: str  # a ministry / department name
    actor: str
    source: str = "slack"


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerProposal(Command):
    """An official's answer to the author (and to followers)."""

    tracking: str
    body: str
    actor: str
    source: str = "slack"
    forum_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectNews(Command):
    """Take the news waiting for ``address`` on ``channel``: returns the replies (oldest
    first) and marks their deliveries sent."""

    channel: str
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepNews(Command):
    """Keep ``replies`` for ``address`` until its next contact (an answer the channel could
    not deliver in time, e.g. a skill turn that outlived its callback). ``key`` makes a retry
    idempotent."""

    channel: str
    address: str
    replies: tuple[Reply, ...]
    key: str
