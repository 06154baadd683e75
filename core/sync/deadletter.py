"""Dead letters through the bus: giving up on a row (``SyncDeadLettered`` reaches Slack like any
other event) and an operator's retry of dead rows."""

from __future__ import annotations

from dataclasses import dataclass

from core.adapters.orm_sync import SyncOutbox
from core.commands import Command
from core.events import SyncDeadLettered
from core.sync.repository import SyncRepository
from core.unit_of_work import UnitOfWork

__all__ = ["DeadLetterOutbox", "RetryDeadLetters", "dead_letter_outbox", "retry_dead_letters"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetterOutbox(Command):
    """The relay ``owner`` gives up on outbox row ``row_id`` (it still holds the lease)."""

    row_id: int
    owner: str
    error: str


async def dead_letter_outbox(cmd: DeadLetterOutbox, uow: UnitOfWork) -> bool:
    """True when the row became dead; False when the lease had already passed to another relay."""
    repo = uow.repo(SyncRepository)
    row = await uow.session.get(SyncOutbox, cmd.row_id)
    if row is None:
        return False
    done = await repo.finish(
        cmd.row_id, owner=cmd.owner, status="dead", dead_at=uow.now(), last_error=cmd.error[:500]
    )
    if done:
        uow.emit(
            SyncDeadLettered(
                kind=row.kind, tracking=row.tracking, attempts=row.attempts, error=cmd.error[:200]
            )
        )
    return done


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryDeadLetters(Command):
    """Put dead-lettered forum rows back in the queue (``row_id``: one row; None: every one)."""

    row_id: int | None = None


async def retry_dead_letters(cmd: RetryDeadLetters, uow: UnitOfWork) -> int:
    """How many rows are queued again."""
    return await uow.repo(SyncRepository).retry_dead(now=uow.now(), row_id=cmd.row_id)
