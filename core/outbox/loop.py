"""The worker loop every queue shares: passes until stopped, woken early, leases kept alive."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import timedelta
from typing import Any

__all__ = ["PollingLoop", "keep_leases", "settle", "wait_for_event"]

log = logging.getLogger(__name__)


async def wait_for_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` pass; True if it was set.

    ``asyncio.timeout`` rather than ``asyncio.wait_for``: on Python 3.11 ``wait_for`` swallows a
    cancellation that arrives as the event is set (a ``wake()`` right before a ``stop()``), and
    the task it was meant to end runs on (python/cpython#86296, fixed in 3.12).
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


async def settle(tasks: Sequence[asyncio.Task[Any]], seconds: float = 5.0) -> None:
    """Wait for cancelled tasks to end, but never forever (a library may swallow a cancel)."""
    if not tasks:
        return
    _done, stuck = await asyncio.wait(tasks, timeout=seconds)
    for task in stuck:
        log.error("outbox: task %s did not stop", task.get_name())


async def keep_leases(
    renew: Callable[[list[int]], Awaitable[None]],
    held: Callable[[], Collection[int]],
    *,
    lease: timedelta,
    name: str,
) -> None:
    """Renew the rows a worker holds, three times per lease, until cancelled (ids in order:
    two writers touching the same rows in different orders deadlock on PostgreSQL)."""
    period = max(lease.total_seconds() / 3, 0.05)
    while True:
        await asyncio.sleep(period)
        ids = sorted(held())
        if not ids:
            continue
        try:
            await renew(ids)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: renewing leases failed", name)


class PollingLoop:
    """Runs ``one_pass()`` (which returns how many rows it handled) until ``stop()``.

    A pass that found work is followed at once by the next; after an empty one the loop waits
    for ``wake()`` (a commit that queued work), ``idle`` seconds, or ``idle_for(idle)`` when
    the queue can say when its next row is due. A failing pass is logged and retried after
    ``idle``. While it runs, the leases of the rows in ``held`` are renewed (``renew``).
    """

    def __init__(
        self,
        *,
        name: str,
        one_pass: Callable[[], Awaitable[int]],
        idle_for: Callable[[float], Awaitable[float]] | None = None,
        renew: Callable[[list[int]], Awaitable[None]] | None = None,
        lease: timedelta = timedelta(seconds=60),
    ) -> None:
        self.name = name
        self.one_pass = one_pass
        self.idle_for = idle_for
        self.renew = renew
        self.lease = lease
        self.held: set[int] = set()  # ids of the rows the current pass holds
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def run(self, *, idle: float = 1.0) -> None:
        keeper = None
        if self.renew is not None:
            keeper = asyncio.create_task(
                keep_leases(self.renew, lambda: self.held, lease=self.lease, name=self.name),
                name=f"{self.name}-renew",
            )
        try:
            while not self._stopping:
                self._wake.clear()  # a wake() during the pass cuts the pause after it short
                try:
                    count = await self.one_pass()
                    pause = 0.0 if count else await self._pause(idle)
                except Exception:
                    log.exception("%s: pass failed", self.name)
                    pause = idle
                if pause > 0 and not self._stopping:
                    await wait_for_event(self._wake, pause)
        finally:
            if keeper is not None:
                keeper.cancel()
                await settle([keeper])

    async def _pause(self, idle: float) -> float:
        return idle if self.idle_for is None else await self.idle_for(idle)
