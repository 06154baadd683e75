"""Forum sync: the transactional outbox, the relay, inbound webhook and reconciliation (issue 6)."""

from __future__ import annotations

from core import events as e
from core.kernel import Kernel
from core.sync import outbox
from core.sync.deadletter import (
    DeadLetterOutbox,
    RetryDeadLetters,
    dead_letter_outbox,
    retry_dead_letters,
)
from core.sync.service import SyncService, build_backend

__all__ = ["SyncService", "install"]


def install(core: Kernel) -> SyncService:
    """Outbox writers, the dead-letter command, relay and reconcile jobs; the service is kept
    as ``core.sync``."""
    settings = core.settings
    service = SyncService(core=core, backend=build_backend(settings))
    core.add_health("sync", service.health)
    core.bus.register(DeadLetterOutbox, dead_letter_outbox)
    core.bus.register(RetryDeadLetters, retry_dead_letters)
    if not service.enabled:  # local: the bots' database is the forum
        return service
    key = settings.forum_webhook_secret or settings.forum_token
    outbox.register(
        core.bus, author_ref=outbox.AuthorRefs(key.get_secret_value() if key else "gongnon")
    )

    async def wake(_event: object) -> None:
        service.relay.wake()

    for kind in (
        e.ProposalSubmitted, e.ProposalSupported, e.FeedbackAdded, e.ProposalWithdrawn,
        e.StatusChanged,
    ):
        core.bus.after_commit(kind, wake)
    if settings.run_workers:
        core.on_start(service.start)
        core.scheduler.every(
            "sync:reconcile", service.reconcile, seconds=settings.sync_reconcile_minutes * 60
        )
    core.on_stop(service.stop)
    return service
