"""Proposal lifecycle rules, vocabularies and the read models handed to the outside."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from core.domain.errors import InvalidField, InvalidTransition

__all__ = [
    "BODY_MAX",
    "BODY_MIN",
    "CATEGORIES",
    "FEEDBACK_MAX",
    "REGIONS",
    "TITLE_MAX",
    "TITLE_MIN",
    "AttachmentView",
    "FeedbackKind",
    "FeedbackView",
    "KnownIdentity",
    "ProposalStatus",
    "ProposalSummary",
    "ProposalView",
    "Relation",
    "StatusChangeView",
    "check_transition",
    "format_tracking",
    "parse_tracking",
    "validate_body",
    "validate_category",
    "validate_feedback",
    "validate_region",
    "validate_title",
]

TITLE_MIN, TITLE_MAX = 4, 100
BODY_MIN, BODY_MAX = 10, 3000
FEEDBACK_MAX = 1000

# Category and region keys; their labels live in the i18n catalogs (category.<key>, region.<key>).
CATEGORIES: tuple[str, ...] = (
    "administration",
    "economy",
    "education",
    "welfare",
    "environment",
    "transport",
    "culture",
    "digital",
    "other",
)
REGIONS: tuple[str, ...] = (
    "seoul",
    "busan",
    "daegu",
    "incheon",
    "gwangju",
    "daejeon",
    "ulsan",
    "sejong",
    "gyeonggi",
    "gangwon",
    "chungbuk",
    "chungnam",
    "jeonbuk",
    "jeonnam",
    "gyeongbuk",
    "gyeongnam",
    "jeju",
)


class ProposalStatus(StrEnum):
    RECEIVED = "received"
    UNDER_REVIEW = "under_review"
    FORWARDED = "forwarded"
    ACCEPTED = "accepted"
    PARTLY_ACCEPTED = "partly_accepted"
    NOT_ACCEPTED = "not_accepted"
    IMPLEMENTED = "implemented"
    WITHDRAWN = "withdrawn"

    @property
    def is_final(self) -> bool:
        return self in (ProposalStatus.IMPLEMENTED, ProposalStatus.WITHDRAWN)


_S = ProposalStatus
_TRANSITIONS: dict[ProposalStatus, frozenset[ProposalStatus]] = {
    _S.RECEIVED: frozenset({_S.UNDER_REVIEW, _S.FORWARDED, _S.NOT_ACCEPTED, _S.WITHDRAWN}),
    _S.UNDER_REVIEW: frozenset(
        {_S.FORWARDED, _S.ACCEPTED, _S.PARTLY_ACCEPTED, _S.NOT_ACCEPTED, _S.WITHDRAWN}
    ),
    _S.FORWARDED: frozenset(
        {_S.UNDER_REVIEW, _S.ACCEPTED, _S.PARTLY_ACCEPTED, _S.NOT_ACCEPTED, _S.WITHDRAWN}
    ),
    _S.ACCEPTED: frozenset({_S.IMPLEMENTED, _S.UNDER_REVIEW}),
    _S.PARTLY_ACCEPTED: frozenset({_S.IMPLEMENTED, _S.UNDER_REVIEW}),
    _S.NOT_ACCEPTED: frozenset({_S.UNDER_REVIEW}),
    _S.IMPLEMENTED: frozenset(),
    _S.WITHDRAWN: frozenset(),
}


def allowed_next(status: ProposalStatus) -> frozenset[ProposalStatus]:
    return _TRANSITIONS[status]


def check_transition(current: ProposalStatus, new: ProposalStatus) -> None:
    if new not in _TRANSITIONS[current]:
        raise InvalidTransition(
            f"{current} → {new}", current=current.value, new=new.value
        )


class FeedbackKind(StrEnum):
    COMMENT = "comment"  # a citizen's feedback
    OFFICIAL_ANSWER = "official_answer"  # an official's answer to the author


_TRACKING_RE = re.compile(r"^\s*P-?(\d{4})-?(\d{1,6})\s*$", re.IGNORECASE)


def format_tracking(year: int, seq: int) -> str:
    """``P-YYYY-NNNNNN``: the number a citizen reads out on the phone."""
    return f"P-{year:04d}-{seq:06d}"


def parse_tracking(text: str) -> str | None:
    """Accept ``P-2026-000042``, ``p2026-42``, … and return the canonical form, or None."""
    match = _TRACKING_RE.match(text)
    if not match:
        return None
    return format_tracking(int(match.group(1)), int(match.group(2)))


def _clean(text: str) -> str:
    # Strip control characters except newlines and tabs; normalise line endings.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in text if ch in "\n\t" or ch.isprintable()).strip()


def validate_title(text: str) -> str:
    value = " ".join(_clean(text).split())
    if len(value) < TITLE_MIN:
        raise InvalidField("title", "too_short", min=TITLE_MIN, max=TITLE_MAX)
    if len(value) > TITLE_MAX:
        raise InvalidField("title", "too_long", min=TITLE_MIN, max=TITLE_MAX, length=len(value))
    return value


def validate_body(text: str) -> str:
    value = _clean(text)
    if len(value) < BODY_MIN:
        raise InvalidField("body", "too_short", min=BODY_MIN, max=BODY_MAX)
    if len(value) > BODY_MAX:
        raise InvalidField("body", "too_long", min=BODY_MIN, max=BODY_MAX, length=len(value))
    return value


def validate_feedback(text: str) -> str:
    value = _clean(text)
    if not value:
        raise InvalidField("feedback", "too_short", min=1, max=FEEDBACK_MAX)
    if len(value) > FEEDBACK_MAX:
        raise InvalidField("feedback", "too_long", min=1, max=FEEDBACK_MAX, length=len(value))
    return value


def validate_category(key: str) -> str:
    if key not in CATEGORIES:
        raise InvalidField("category", "unknown")
    return key


def validate_region(key: str | None) -> str | None:
    if key is not None and key not in REGIONS:
        raise InvalidField("region", "unknown")
    return key


# --- read models: plain frozen values, safe to hand to any layer ---------------------


@dataclass(frozen=True, slots=True)
class AttachmentView:
    kind: str  # "photo" | "location"
    ref: str | None = None  # channel file reference ("telegram:<file_id>", "web:<id>")
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True, slots=True)
class StatusChangeView:
    from_status: ProposalStatus | None
    to_status: ProposalStatus
    reason: str
    expected_date: date | None
    actor: str
    source: str
    at: datetime


@dataclass(frozen=True, slots=True)
class FeedbackView:
    id: int
    kind: FeedbackKind
    body: str
    at: datetime
    by_author: bool = False


@dataclass(frozen=True, slots=True)
class ProposalSummary:
    tracking: str
    title: str
    category: str
    status: ProposalStatus
    created_at: datetime
    support_count: int


@dataclass(frozen=True, slots=True)
class ProposalView:
    id: int
    tracking: str
    title: str
    body: str
    category: str
    region: str | None
    status: ProposalStatus
    author_id: int
    created_at: datetime
    updated_at: datetime
    support_count: int
    follower_count: int
    assigned_to: str | None = None
    forum_id: str | None = None
    status_version: int = 0
    attachments: tuple[AttachmentView, ...] = ()
    history: tuple[StatusChangeView, ...] = ()
    feedback: tuple[FeedbackView, ...] = field(default_factory=tuple)

    @property
    def summary(self) -> ProposalSummary:
        return ProposalSummary(
            self.tracking, self.title, self.category, self.status, self.created_at,
            self.support_count,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class KnownIdentity:
    person_id: int
    address: str
    reachable: bool
    locale: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Relation:
    """How one person stands to one proposal."""

    supporting: bool
    following: bool
    is_author: bool
