"""The sync feature's service: the backend, the relay, inbound processing, status and health."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from core.commands import ChangeStatus
from core.config import Settings
from core.domain.model import ProposalStatus
from core.i18n import t
from core.kernel import Kernel
from core.outbox import Backoff
from core.ports import ForumBackend
from core.sync.deadletter import DeadLetterOutbox, RetryDeadLetters
from core.sync.inbound import CURSOR, Inbound
from core.sync.relay import Relay
from core.sync.repository import Claimed, SyncRepository

__all__ = ["SyncService", "build_backend"]

log = logging.getLogger(__name__)


def build_backend(settings: Settings) -> ForumBackend:
    """The adapter named by ``GONGNON_FORUM_BACKEND``."""
    token = settings.forum_token.get_secret_value() if settings.forum_token else None
    if settings.forum_backend == "http":
        from core.adapters.forum_http import HttpForum

        assert settings.forum_url is not None
        return HttpForum(
            base_url=settings.forum_url, token=token, timeout=settings.forum_timeout_seconds
        )
    if settings.forum_backend == "decidim":
        from core.adapters.forum_decidim import DecidimForum

        assert settings.forum_url is not None
        key, secret = settings.forum_decidim_api_key, settings.forum_decidim_api_secret
        return DecidimForum(
            api_url=settings.forum_url,
            token=token,
            component_id=settings.forum_decidim_component_id or "",
            timeout=settings.forum_timeout_seconds,
            locale=settings.default_locale,
            api_key=key.get_secret_value() if key else None,
            api_secret=secret.get_secret_value() if secret else None,
        )
    from core.adapters.forum_local import LocalForum

    return LocalForum()


class SyncService:
    """``core.sync``: what the webhook route, the CLI and /healthz use."""

    def __init__(self, *, core: Kernel, backend: ForumBackend) -> None:
        settings: Settings = core.settings
        self.core = core
        self.settings = settings
        self.backend = backend
        self.relay = Relay(
            db=core.db,
            backend=backend,
            clock=core.clock,
            dead_letter=self._dead_letter,
            max_attempts=settings.sync_max_attempts,
            backoff=Backoff(
                base=settings.sync_backoff_base_seconds, cap=settings.sync_backoff_max_seconds
            ),
            lease_seconds=settings.sync_lease_seconds,
            on_conflict=self._forum_wins,
        )
        secret = settings.forum_webhook_secret
        self.inbound = Inbound(
            execute=core.execute,
            db=core.db,
            clock=core.clock,
            state=core.state,
            backend=backend,
            secret=secret.get_secret_value() if secret else None,
            default_locale=settings.default_locale,
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.backend.name != "local"

    async def _dead_letter(self, item: Claimed, owner: str, error: str) -> None:
        await self.core.execute(DeadLetterOutbox(row_id=item.id, owner=owner, error=error))

    async def _forum_wins(self, tracking: str, status: str, version: int) -> None:
        """The conflict rule: an official's change that met another change on the forum yields
        to the forum's; it is applied here as a forum change (and told to citizens)."""
        await self.core.execute(ChangeStatus(
            tracking=tracking, status=ProposalStatus(status),
            reason=t("sync.conflict_reason", self.core.settings.default_locale),
            actor="forum", source="forum", version=version,
        ))

    # --- lifecycle (serve, when run_workers) ------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.relay.run(), name="sync-relay")

    async def stop(self) -> None:
        self.relay.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.backend.close()

    async def reconcile(self) -> int:
        return await self.inbound.reconcile()

    # --- operators -------------------------------------------------------------------------
    async def retry(self, row_id: int | None = None) -> int:
        count = int(await self.core.execute(RetryDeadLetters(row_id=row_id)))
        self.relay.wake()
        return count

    async def status(self) -> dict[str, Any]:
        async with self.core.db.read() as session:
            repo = SyncRepository(session)
            counts = await repo.counts()
            cursor, cursor_at = await repo.cursor(CURSOR)
            dead = await repo.dead_rows()
            supports = await repo.support_notes()
        now = self.core.clock.now()
        oldest = counts.oldest_pending_at
        return {
            "backend": self.backend.name,
            "outbox_depth": counts.pending + counts.sending,
            "pending": counts.pending,
            "sending": counts.sending,
            "dead": counts.dead,
            "sent": counts.sent,
            "oldest_pending_at": oldest.isoformat() if oldest else None,
            "oldest_pending_age_seconds": (now - oldest).total_seconds() if oldest else None,
            "supports": supports,
            "limitations": list(getattr(self.backend, "limitations", ())),
            "skipped_events": [
                {"id": skipped.event_id, "problem": skipped.problem}
                for skipped in list(getattr(self.backend, "skipped", ()))[-20:]
            ],
            "cursor": cursor,
            "cursor_updated_at": cursor_at.isoformat() if cursor_at else None,
            "dead_letters": [
                {
                    "id": row.id,
                    "kind": row.kind,
                    "tracking": row.tracking,
                    "attempts": row.attempts,
                    "error": (row.last_error or "")[:200],
                }
                for row in dead
            ],
        }

    async def health(self) -> dict[str, Any]:
        """``ok`` or ``degraded`` (dead letters, or the oldest pending row waited too long)."""
        if not self.enabled:
            return {"status": "ok", "backend": "local"}
        info = await self.status()
        age = info["oldest_pending_age_seconds"]
        stale = age is not None and age > self.settings.sync_degraded_after_seconds
        degraded = info["dead"] > 0 or stale
        return {
            "status": "degraded" if degraded else "ok",
            "backend": info["backend"],
            "outbox_depth": info["outbox_depth"],
            "dead": info["dead"],
            "oldest_pending_age_seconds": age,
        }
