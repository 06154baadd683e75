"""Pacing lines: a worker's sends to one channel take their places in its limits in order."""

from __future__ import annotations

import asyncio
from collections import deque

from core.ratelimit import Grant, Pacer

__all__ = ["LINE_BATCH", "PaceLine", "pace"]


LINE_BATCH = 64  # sends a pacing line takes places for in one step


class PaceLine:
    """A worker's line for one channel's limits: one task takes places for the waiting sends,
    oldest first, as many in a row as the limits have room for.

    Sends waiting their turn cost no hand-over between tasks per place (at 1000/s that alone
    left places unused while the busy event loop came round); after a late wake-up every place
    that came free meanwhile is handed out at once. A send whose wait is long (its chat's 1/s,
    a 429 pause) gets it back to sleep outside the line.
    """

    def __init__(self, pacer: Pacer, channel: str) -> None:
        self.pacer = pacer
        self.channel = channel
        self.short = 2.0 * pacer.channel_interval(channel) + 0.005
        self._waiting: deque[tuple[str, asyncio.Future[Grant]]] = deque()
        self._runner: asyncio.Task[None] | None = None

    async def take(self, address: str) -> Grant:
        """A grant for a send to ``address``, or a long ``wait`` to sleep outside the line."""
        future: asyncio.Future[Grant] = asyncio.get_running_loop().create_future()
        self._waiting.append((address, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name=f"pace-{self.channel}")
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                # Granted just as we were cancelled: the place was never used.
                await asyncio.shield(self.pacer.release(future.result()))
            raise

    async def _run(self) -> None:
        waiting = self._waiting
        while waiting:
            batch = [entry for entry in list(waiting)[:LINE_BATCH] if not entry[1].done()]
            if not batch:
                self._drop_done()
                continue
            try:
                grants = await self.pacer.try_take_many(
                    self.channel, [address for address, _ in batch], patience=self.short
                )
            except Exception as exc:  # the limiter failed (Redis): these sends fail, not the line
                for _address, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                self._drop_done()
                continue
            shortest = None
            for (_address, future), grant in zip(batch, grants, strict=True):
                if future.done():  # its task was cancelled meanwhile
                    if grant.granted:
                        await self.pacer.release(grant)
                elif grant.granted or grant.wait > self.short:
                    future.set_result(grant)
                elif shortest is None:
                    shortest = grant.wait
            self._drop_done()
            if shortest is not None:
                await asyncio.sleep(shortest)

    def _drop_done(self) -> None:
        """Keep the sends still waiting, in their order."""
        for _ in range(len(self._waiting)):
            entry = self._waiting.popleft()
            if not entry[1].done():
                self._waiting.append(entry)

    def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
        for _address, future in self._waiting:
            future.cancel()
        self._waiting.clear()


async def pace(
    lines: dict[str, PaceLine], pacer: Pacer | None, channel: str, address: str
) -> Grant | None:
    """Wait for a place in the channel's limits: in this worker's line for the channel while
    the wait is short (its overall rate), outside it while long (a chat's 1/s, a 429 pause)."""
    if pacer is None:
        return None
    line = lines.get(channel)
    if line is None:
        line = lines[channel] = PaceLine(pacer, channel)
    while True:
        grant = await line.take(address)
        if grant.granted:
            return grant
        await asyncio.sleep(grant.wait)
