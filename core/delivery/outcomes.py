"""What a send attempt came to, and the group commit that writes outcomes right after sends."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from core.delivery.outbox import Claimed, Outcome
from core.outbox import Backoff
from core.ports import PermanentSendError, RetryLater, TransientSendError, Unreachable

__all__ = ["GroupCommit", "classify", "error_text"]

log = logging.getLogger(__name__)

RETRYABLE = (TimeoutError, TransientSendError, OSError)


def error_text(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:500]


def classify(
    item: Claimed, exc: BaseException, *, now: datetime, backoff: Backoff, max_attempts: int
) -> Outcome:
    """The outcome of a send that raised (see ``core.ports``' send errors for what each means).

    ``RetryLater``: due again after the platform's wait, the attempt not counted. ``Unreachable``:
    the recipient is gone. ``PermanentSendError``: failed for good. Anything else (transient
    errors, and a Sender's bug): retried after ``backoff``, failed after ``max_attempts``.
    """
    if isinstance(exc, RetryLater):
        return Outcome(
            item=item,
            status="pending",
            attempts=item.attempts - 1,  # the platform's pacing is not a failure
            next_attempt_at=now + timedelta(seconds=max(exc.retry_after, 0.05)),
            error=error_text(exc),
        )
    if isinstance(exc, Unreachable):
        status = "unreachable"
    elif isinstance(exc, PermanentSendError):
        status = "failed"
    else:
        final = item.attempts >= max_attempts
        return Outcome(
            item=item,
            status="failed" if final else "pending",
            attempts=item.attempts,
            next_attempt_at=now if final else now + backoff.delay(item.attempts),
            error=error_text(exc),
        )
    return Outcome(
        item=item, status=status, attempts=item.attempts, next_attempt_at=now,
        error=error_text(exc),
    )


class GroupCommit:
    """Outcomes of many sends written together, right after the sends.

    A sender task hands its outcome to ``add`` and waits until the batch that holds it is
    written: a task has at most one message sent and not yet recorded, so a ``kill -9``
    re-sends at most as many as there are sender tasks. ``run`` is the one writer: whatever
    gathered while the previous batch was written goes in the next. A failed write keeps the
    batch (the leases are still renewed) and tries again.
    """

    def __init__(
        self,
        write: Callable[[Sequence[Outcome]], Awaitable[None]],
        *,
        on_written: Callable[[Sequence[Outcome]], None],
        name: str,
    ) -> None:
        self.write = write
        self.on_written = on_written
        self.name = name
        self._outcomes: list[Outcome] = []
        self._written: dict[int, asyncio.Future[None]] = {}
        self._ready = asyncio.Event()

    async def add(self, outcome: Outcome) -> None:
        """Queue one outcome and return once it is on disk."""
        written = asyncio.get_running_loop().create_future()
        self._written[outcome.item.id] = written
        self._outcomes.append(outcome)
        self._ready.set()
        await written

    async def flush(self) -> None:
        batch, self._outcomes = self._outcomes, []
        if not batch:
            return
        try:
            await self.write(batch)
        except BaseException:
            self._outcomes[:0] = batch  # keep them (their leases are still renewed)
            raise
        for outcome in batch:
            written = self._written.pop(outcome.item.id, None)
            if written is not None and not written.done():
                written.set_result(None)
        self.on_written(batch)

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery worker %s: writing outcomes failed", self.name)
                await asyncio.sleep(0.5)
                self._ready.set()
