"""Where a worker's leased rows come from: the database directly, or Redis Streams
(``core.adapters.redis_streams.StreamSource``) in front of the same database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from core.outbox.loop import wait_for_event

__all__ = ["DatabaseSource", "Leased", "StreamQueue", "WorkSource"]


class Leased(Protocol):
    """A row a source handed out: its id, and the source's handle (a stream entry) or None."""

    @property
    def id(self) -> int: ...

    @property
    def ticket(self) -> Any: ...


T = TypeVar("T", bound=Leased)
T_co = TypeVar("T_co", bound=Leased, covariant=True)


class WorkSource(Protocol[T]):
    """Hands a worker leased rows: straight from the database, or through Redis Streams."""

    async def start(self) -> None: ...

    async def fetch(self, limit: int, *, wait: float) -> list[T]:
        """Up to ``limit`` leased rows, waiting at most ``wait`` seconds when there are none."""
        ...

    async def done(self, items: Sequence[T]) -> None:
        """Their outcomes are written (a stream acknowledges its entries)."""
        ...

    def wake(self) -> None: ...

    async def close(self) -> None: ...


class StreamQueue(Protocol[T_co]):
    """What a Redis Streams source needs from a queue: a feeder marks due rows as queued in the
    streams (``publish`` adds the entries before that commits), a consumer takes the rows behind
    the entries it read (only those still to be sent)."""

    async def mark_queued(
        self,
        channels: Sequence[str],
        limit: int,
        now: datetime,
        *,
        hold: timedelta,
        publish: Callable[[list[tuple[int, str, int]]], Awaitable[Any]] | None = None,
    ) -> list[tuple[int, str, int]]: ...

    async def take(self, tickets: Mapping[int, Any], now: datetime) -> Sequence[T_co]: ...


class DatabaseSource(WorkSource[T]):
    """Claims due rows straight from the table (the embedded mode, or PostgreSQL alone)."""

    def __init__(self, claim: Callable[[int], Awaitable[list[T]]]) -> None:
        self.claim = claim  # (limit) -> rows leased to this worker
        self._wake = asyncio.Event()

    async def start(self) -> None:
        return None

    async def fetch(self, limit: int, *, wait: float) -> list[T]:
        items = await self.claim(limit)
        if items or wait <= 0:
            return items
        self._wake.clear()
        await wait_for_event(self._wake, wait)
        return []

    async def done(self, items: Sequence[T]) -> None:
        return None

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        return None
