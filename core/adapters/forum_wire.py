"""The HTTP forum contract's event objects (webhook bodies and the change feed) ⇄ ForumChange."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from core.domain.model import ProposalStatus
from core.ports import ForumChange

__all__ = ["KINDS", "STATUSES", "change_from_wire", "change_to_wire"]

KINDS = ("status_changed", "answered", "comment_added")
STATUSES = tuple(status.value for status in ProposalStatus)
_TEXT_MAX = 5000


def _text(obj: dict[str, Any], key: str, *, required: bool = False, max_len: int = 128) -> str:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise ValueError(f"{key} is required")
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError(f"{key} must be a string")
    text = str(value)
    if len(text) > max_len:
        raise ValueError(f"{key} is too long")
    return text


def _when(raw: Any) -> datetime | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise ValueError("occurred_at must be an RFC 3339 string")
    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _day(raw: Any) -> date | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise ValueError("expected_date must be YYYY-MM-DD")
    return date.fromisoformat(raw)


def change_from_wire(obj: Any) -> ForumChange:
    """Validate one event object; raises ``ValueError`` naming the bad field."""
    if not isinstance(obj, dict):
        raise ValueError("an event must be an object")
    kind = _text(obj, "type", required=True, max_len=32)
    if kind not in KINDS:
        raise ValueError(f"unknown event type {kind[:32]!r}")
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError("version must be a positive integer")
    status = _text(obj, "status", required=kind == "status_changed", max_len=32) or None
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    needs_body = kind in ("answered", "comment_added")
    return ForumChange(
        kind=kind,
        event_id=_text(obj, "id", required=True),
        forum_id=_text(obj, "proposal_id", required=True),
        tracking=_text(obj, "external_ref", max_len=16) or None,
        version=version,
        status=status,
        reason=_text(obj, "reason", max_len=_TEXT_MAX),
        body=_text(obj, "body", required=needs_body, max_len=_TEXT_MAX),
        expected_date=_day(obj.get("expected_date")),
        comment_id=_text(obj, "comment_id", required=kind == "comment_added") or None,
        author_ref=_text(obj, "author_ref") or None,
        at=_when(obj.get("occurred_at")),
    )


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
