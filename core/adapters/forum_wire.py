"""The HTTP forum contract's event objects (webhook bodies and the change feed) ⇄ ForumChange."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from core.domain.model import ProposalStatus
from core.ports import ForumChange

__all__ = ["KINDS", "STATUSES", "change_from_wire", "change_to_wire", "changes_from_wire"]

KINDS = ("status_changed", "answered", "comment_added")
STATUSES = tuple(status.value for status in ProposalStatus)
# The caps of docs/forum-openapi.yaml's Event (tests/unit/test_forum_contract.py keeps them equal)
ID_MAX = 128  # Event.id
FORUM_ID_MAX = 128  # ForumId (proposal_id) and comment_id
EXTERNAL_REF_MAX = 64
AUTHOR_REF_MAX = 128
_TEXT_MAX = 5000
# RFC 3339 §5.6 date-time: "T"/"t" (or a space, §5.6 NOTE), any fraction, "Z"/"z" or ±hh:mm
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def _text(obj: dict[str, Any], key: str, *, required: bool = False, max_len: int) -> str:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise ValueError(f"{key} is required")
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):  # a numeric id is kept
        raise ValueError(f"{key} must be a string")
    text = str(value)
    if len(text) > max_len:
        raise ValueError(f"{key} is too long")
    return text


def _when(raw: Any) -> datetime | None:
    if raw in (None, ""):
        return None
    match = _RFC3339.match(raw) if isinstance(raw, str) else None
    if match is None:
        raise ValueError("occurred_at must be an RFC 3339 date-time")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    micro = int((match.group(7) or ".0")[1:7].ljust(6, "0"))
    offset = match.group(8)
    if offset in ("Z", "z"):
        zone = UTC
    else:
        sign = -1 if offset[0] == "-" else 1
        zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    # a leap second (…:60) is the last instant of its minute here
    return datetime(year, month, day, hour, minute, min(second, 59), micro, tzinfo=zone)


def _day(raw: Any) -> date | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str) or len(raw) != 10:
        raise ValueError("expected_date must be YYYY-MM-DD")
    return date.fromisoformat(raw)


def _version(raw: Any) -> int:
    """JSON Schema's integer: 3 and 3.0 alike; at least 1."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError("version must be a positive integer")
    if isinstance(raw, float) and not raw.is_integer():
        raise ValueError("version must be a positive integer")
    version = int(raw)
    if version < 1:
        raise ValueError("version must be a positive integer")
    return version


def change_from_wire(obj: Any) -> ForumChange:
    """Validate one event object; raises ``ValueError`` naming the bad field."""
    if not isinstance(obj, dict):
        raise ValueError("an event must be an object")
    kind = _text(obj, "type", required=True, max_len=32)
    if kind not in KINDS:
        raise ValueError(f"unknown event type {kind[:32]!r}")
    version = _version(obj.get("version"))
    status = _text(obj, "status", required=kind == "status_changed", max_len=32) or None
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    needs_body = kind in ("answered", "comment_added")
    return ForumChange(
        kind=kind,
        event_id=_text(obj, "id", required=True, max_len=ID_MAX),
        forum_id=_text(obj, "proposal_id", required=True, max_len=FORUM_ID_MAX),
        tracking=_text(obj, "external_ref", max_len=EXTERNAL_REF_MAX) or None,
        version=version,
        status=status,
        reason=_text(obj, "reason", max_len=_TEXT_MAX),
        body=_text(obj, "body", required=needs_body, max_len=_TEXT_MAX),
        expected_date=_day(obj.get("expected_date")),
        comment_id=_text(
            obj, "comment_id", required=kind == "comment_added", max_len=FORUM_ID_MAX
        ) or None,
        author_ref=_text(obj, "author_ref", max_len=AUTHOR_REF_MAX) or None,
        at=_when(obj.get("occurred_at")),
    )


def changes_from_wire(items: list[Any]) -> tuple[list[ForumChange], list[tuple[str, str]]]:
    """A change-feed page: the valid events, and ``(event id, problem)`` for each one skipped.

    One bad event never blocks the feed: it is left out and reported, the rest are applied and
    the cursor moves past it (the forum's feed is not re-read for one event)."""
    good: list[ForumChange] = []
    skipped: list[tuple[str, str]] = []
    for item in items:
        try:
            good.append(change_from_wire(item))
        except ValueError as exc:
            raw_id = item.get("id") if isinstance(item, dict) else None
            event_id = raw_id[:ID_MAX] if isinstance(raw_id, str) else "?"
            skipped.append((event_id, str(exc)[:200]))
    return good, skipped


def change_to_wire(change: ForumChange) -> dict[str, Any]:
    """The event object for ``change`` (the fake forum and the docs' examples use it)."""
    out: dict[str, Any] = {
        "id": change.event_id,
        "type": change.kind,
        "proposal_id": change.forum_id,
        "external_ref": change.tracking,
        "version": change.version,
    }
    optional = {
        "status": change.status,
        "reason": change.reason or None,
        "body": change.body or None,
        "expected_date": change.expected_date.isoformat() if change.expected_date else None,
        "comment_id": change.comment_id,
        "author_ref": change.author_ref,
        "occurred_at": change.at.isoformat().replace("+00:00", "Z") if change.at else None,
    }
    out.update({key: value for key, value in optional.items() if value is not None})
    return out
