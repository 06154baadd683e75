"""One process's delivery wiring: the shared rate limits and pacer, and how workers are built
(reading the database, or the Redis Streams every worker process shares)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from core.adapters.db import Database
from core.adapters.redis_streams import StreamSource, redis_client
from core.delivery.gate import PushGate
from core.delivery.outbox import Claimed
from core.delivery.worker import DeliveryWorker, UnreachableHook, pushable
from core.outbox import DatabaseSource, WorkSource
from core.ports import Clock, Sender
from core.ratelimit import MemoryRateLimiter, Pacer, RateLimiter, RedisRateLimiter

__all__ = ["DeliveryEngine"]


class DeliveryEngine:
    """The shared parts of one process: the rate limits (memory or Redis) and the pacer.

    ``worker(...)`` builds a ``DeliveryWorker`` that reads from the database, or, with a
    Redis URL, from the Redis Streams shared by every worker process.
    """

    def __init__(
        self,
        *,
        settings: Any,
        db: Database,
        clock: Clock,
        senders: Mapping[str, Sender],
        push_gate: PushGate | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.senders = senders
        limiter: RateLimiter
        if settings.redis_url:
            limiter = RedisRateLimiter.from_url(
                settings.redis_url, prefix=f"{settings.delivery_redis_prefix}:rl"
            )
        else:
            limiter = MemoryRateLimiter()
        self.limiter = limiter
        self.pacer = Pacer(
            limiter,
            limits_of=self._limits_of,
            headroom=settings.delivery_rate_headroom,
        )
        # Every worker of this process is built with these (``push_gate``: the campaigns'
        # quiet hours hold push-kind rows, given by ``bootstrap()``).
        self.push_gate = push_gate
        self.options: dict[str, Any] = self.worker_options()

    def _limits_of(self, channel: str) -> Any:
        sender = self.senders.get(channel)
        return None if sender is None else sender.limits

    def _backlog(self, channel: str) -> int:
        sender = self.senders.get(channel)
        rate = sender.limits.per_second if sender is not None else 10.0
        return int(min(5000, max(100, rate * 3)))

    def source_for(self, worker: DeliveryWorker) -> WorkSource[Claimed]:
        if not self.settings.redis_url:
            return DatabaseSource(worker.claim)
        block_ms = self.settings.delivery_stream_block_ms
        lease = timedelta(seconds=self.settings.delivery_lease_seconds)
        return StreamSource(
            redis_client(self.settings.redis_url, block_ms=block_ms),
            worker.outbox,
            channels=lambda: pushable(self.senders),
            clock=self.clock,
            consumer=worker.name,
            prefix=self.settings.delivery_redis_prefix,
            block_ms=block_ms,
            claim_idle=lease,
            backlog=self._backlog,
            hold=max(timedelta(minutes=2), lease * 4),
        )

    def worker_options(self) -> dict[str, Any]:
        return {
            "pacer": self.pacer,
            "lease": timedelta(seconds=self.settings.delivery_lease_seconds),
            "concurrency": self.settings.delivery_concurrency,
            "source": self.source_for,
            "push_gate": self.push_gate,
        }

    def worker(self, *, on_unreachable: UnreachableHook | None = None, name: str | None = None,
               **overrides: Any) -> DeliveryWorker:
        options = self.options | overrides
        return DeliveryWorker(
            db=self.db,
            senders=self.senders,
            clock=self.clock,
            max_attempts=self.settings.delivery_max_attempts,
            on_unreachable=on_unreachable,
            name=name,
            **options,
        )

    async def close(self) -> None:
        await self.limiter.close()

