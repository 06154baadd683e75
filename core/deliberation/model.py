"""Deliberation's vocabulary and read models: opinions (의견) with a stance, replies, 공감,
pseudonyms, statement voting (쟁점 투표)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

__all__ = [
    "OPINION_MAX",
    "PAGE_SIZE",
    "STATEMENT_MAX",
    "DiscussionPage",
    "DiscussionSummary",
    "OpinionSort",
    "OpinionView",
    "Stance",
    "StatementStatus",
    "StatementView",
    "Vote",
    "alias_label",
]

OPINION_MAX = 1000
STATEMENT_MAX = 140  # one short sentence, as Pol.is asks
PAGE_SIZE = 5  # opinions per page: a chat screen, not a web page
REPLIES_SHOWN = 2  # replies shown under each opinion on a page


class Stance(StrEnum):
    FOR = "for"  # 찬성
    AGAINST = "against"  # 반대
    OTHER = "other"  # 기타


class OpinionSort(StrEnum):
    TOP = "top"  # most 공감 first
    NEW = "new"  # newest first


class StatementStatus(StrEnum):
    PENDING = "pending"  # a citizen's statement waits for an official
    APPROVED = "approved"
    HIDDEN = "hidden"


class Vote(StrEnum):
    AGREE = "agree"  # 동의
    DISAGREE = "disagree"  # 반대
    PASS = "pass"  # 잘 모르겠음  # noqa: S105 - a vote, not a password


VOTE_VALUE = {Vote.AGREE: 1, Vote.DISAGREE: -1, Vote.PASS: 0}


def alias_label(alias: int) -> str:
    """The number part of "시민 4821": the catalog wraps it in words."""
    return f"{alias:04d}"


@dataclass(frozen=True, slots=True)
class OpinionView:
    id: int
    alias: int | None  # None for an official answer or a forum comment without a person
    stance: Stance | None
    body: str
    support_count: int
    at: datetime
    official: bool = False
    from_forum: bool = False
    mine: bool = False
    supported: bool = False  # the reader already gave it 공감
    reply_count: int = 0
    replies: tuple[OpinionView, ...] = ()
    withdrawn: bool = False


@dataclass(frozen=True, slots=True)
class DiscussionPage:
    tracking: str
    title: str
    sort: OpinionSort
    page: int  # 0-based
    pages: int
    total: int  # items on the pages: opinions (not replies) still standing, official answers
    opinions: int = 0  # citizens' opinions among them
    by_stance: dict[str, int] = field(default_factory=dict)
    items: tuple[OpinionView, ...] = ()


@dataclass(frozen=True, slots=True)
class DiscussionSummary:
    """What officials and followers read: counts by stance, the most supported for and against."""

    tracking: str
    title: str
    opinions: int
    replies: int
    by_stance: dict[str, int]
    top_for: tuple[OpinionView, ...]
    top_against: tuple[OpinionView, ...]
    support_count: int


@dataclass(frozen=True, slots=True)
class StatementView:
    id: int
    text: str
    status: StatementStatus
    agree: int = 0
    disagree: int = 0
    passed: int = 0
    mine: bool = False
