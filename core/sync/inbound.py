"""Inbound sync: the signed webhook's checks, applying forum changes, reconciliation by cursor."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core import commands as c
from core.adapters.db import Database
from core.adapters.forum_wire import change_from_wire
from core.domain.errors import DomainError, NotFound
from core.domain.model import FEEDBACK_MAX, ProposalStatus
from core.i18n import t
from core.ports import Clock, ForumBackend, ForumChange, StateStore
from core.sync.outbox import AUTHOR_PREFIX
from core.sync.repository import SyncRepository

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Inbound",
    "WebhookAnswer",
    "sign",
    "verify_signature",
]

log = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Gongnon-Timestamp"
SIGNATURE_HEADER = "X-Gongnon-Signature"
TOLERANCE_SECONDS = 300
REPLAY_TTL_SECONDS = 24 * 3600
CURSOR = "forum"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256 over ``{timestamp}.{raw body}``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_signature(
    *,
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
    tolerance: int = TOLERANCE_SECONDS,
) -> str | None:
    """None when the request is authentic and fresh; otherwise why not (for the log)."""
    if not timestamp or not signature:
        return "unsigned"
    if not timestamp.isdigit() or len(timestamp) > 12:
        return "bad timestamp"
    if abs(now.timestamp() - int(timestamp)) > tolerance:
        return "stale timestamp"
    expected = sign(secret, timestamp, body)
    candidates = [part.strip() for part in signature.split(",") if part.strip()]
    ok = False
    for candidate in candidates[:5]:  # several during a secret rotation
        ok |= hmac.compare_digest(candidate.encode("utf-8"), expected.encode("utf-8"))
    return None if ok else "bad signature"


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookAnswer:
    status: int
    body: dict[str, Any]


class Inbound:
    """Turns forum changes into core commands; versions keep late events from moving backwards."""

    def __init__(
        self,
        *,
        execute: Any,
        db: Database,
        clock: Clock,
        state: StateStore,
        backend: ForumBackend,
        secret: str | None,
        default_locale: str,
    ) -> None:
        self.execute = execute  # core.execute
        self.db = db
        self.clock = clock
        self.state = state
        self.backend = backend
        self.secret = secret
        self.default_locale = default_locale

    # --- one change ----------------------------------------------------------------
    async def _tracking(self, change: ForumChange) -> str | None:
        async with self.db.read() as session:
            return await SyncRepository(session).tracking_for(
                forum_id=change.forum_id, tracking=change.tracking
            )

    async def apply(self, change: ForumChange) -> str:
        """``applied``, ``ignored`` (known, ours, older), ``unknown`` or ``rejected``."""
        tracking = await self._tracking(change)
        if tracking is None:
            log.info("forum change %s for an unknown proposal: skipped", change.kind)
            return "unknown"
        try:
            done = await self._dispatch(change, tracking)
        except NotFound:
            return "unknown"
        except DomainError as exc:  # e.g. an empty comment: skip it, never wedge the feed
            log.warning("forum change %s refused by the core: %s", change.kind, type(exc).__name__)
            return "rejected"
        return "applied" if done else "ignored"

    async def _dispatch(self, change: ForumChange, tracking: str) -> bool:
        if change.kind == "status_changed":
            assert change.status is not None
            reason = change.reason.strip() or t("sync.reason_from_forum", self.default_locale)
            moved = await self.execute(
                c.ChangeStatus(
                    tracking=tracking,
                    status=ProposalStatus(change.status),
                    reason=reason[:1000],
                    actor="forum",
                    source="forum",
                    expected_date=change.expected_date,
                    version=change.version,
                )
            )
            return bool(moved)
        if change.kind == "answered":
            answer_id = change.comment_id or f"v{change.version}"
            added = await self.execute(
                c.AnswerProposal(
                    tracking=tracking,
                    body=change.body[:FEEDBACK_MAX],
                    actor="forum",
                    source="forum",
                    forum_id=f"answer:{change.forum_id}:{answer_id}",
                )
            )
            return added is not None
        if change.kind == "comment_added":
            if (change.author_ref or "").startswith(AUTHOR_PREFIX):
                return False  # our own citizen's comment coming back
            added = await self.execute(
                c.AddFeedback(
                    tracking=tracking, body=change.body[:FEEDBACK_MAX], forum_id=change.comment_id
                )
            )
            return added is not None
        return False

    # --- the webhook -----------------------------------------------------------------
    async def receive(
        self, *, timestamp: str | None, signature: str | None, body: bytes
    ) -> WebhookAnswer:
        if not self.secret:
            return WebhookAnswer(status=503, body={"error": "webhook_not_configured"})
        problem = verify_signature(
            secret=self.secret,
            timestamp=timestamp,
            signature=signature,
            body=body,
            now=self.clock.now(),
        )
        if problem is not None:
            log.warning("forum webhook refused: %s", problem)
            return WebhookAnswer(status=401, body={"error": problem.replace(" ", "_")})
        try:
            change = change_from_wire(json.loads(body))
        except (ValueError, UnicodeDecodeError) as exc:
            return WebhookAnswer(status=400, body={"error": "bad_event", "detail": str(exc)[:200]})
        if not await self.state.claim(f"sync:event:{change.event_id}", ttl=REPLAY_TTL_SECONDS):
            log.info("forum webhook: event replayed, refused")
            return WebhookAnswer(status=409, body={"error": "replayed"})
        outcome = await self.apply(change)
        return WebhookAnswer(status=200, body={"ok": True, "outcome": outcome})

    # --- reconciliation ----------------------------------------------------------------
    async def reconcile(self, *, max_pages: int = 50) -> int:
        """Pull changes since the stored cursor and apply them; returns how many were read."""
        async with self.db.read() as session:
            cursor, _ = await SyncRepository(session).cursor(CURSOR)
        seen = 0
        for _ in range(max_pages):
            changes, next_cursor = await self.backend.changes_since(cursor)
            for change in changes:
                await self.apply(change)
            seen += len(changes)
            if next_cursor != cursor:
                async with self.db.write() as session:
                    await SyncRepository(session).set_cursor(CURSOR, next_cursor, self.clock.now())
            if not changes or next_cursor == cursor:
                break
            cursor = next_cursor
        return seen
