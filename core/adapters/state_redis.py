"""Conversation state in Redis: JSON values with TTLs, a cross-process lock per key, claims."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from weakref import WeakValueDictionary

from redis.asyncio import Redis

from core.ports import StateKey

__all__ = ["LockTimeout", "RedisStateStore"]

# Delete the lock only if it is still ours (a lease that expired may belong to someone else now).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LockTimeout(TimeoutError):
    """Another process held a conversation's lock for longer than we wait."""


class RedisStateStore:
    """The StateStore port on Redis (shared by every process of a deployment).

    ``lease_ms`` bounds how long a crashed holder blocks a conversation; it must be longer than
    any one turn. ``wait_seconds`` bounds how long a turn waits for the lock.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "gongnon:",
        lease_ms: int = 30_000,
        wait_seconds: float = 35.0,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._lease_ms = lease_ms
        self._wait = wait_seconds
        self._release = redis.register_script(_RELEASE)
        self._local: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "gongnon:", **options: Any) -> RedisStateStore:
        redis = Redis.from_url(
            url,
            socket_timeout=5.0,  # no blocking commands here: 5 s means Redis is in trouble
            socket_connect_timeout=5.0,
            health_check_interval=30,
        )
        return cls(redis, prefix=prefix, **options)

    def _state(self, key: StateKey) -> str:
        return f"{self._prefix}state:{key.channel}:{key.user_id}"

    async def get(self, key: StateKey) -> dict[str, Any] | None:
        raw = await self._redis.get(self._state(key))
        if raw is None:
            return None
        value = json.loads(raw)
        return value if isinstance(value, dict) else None

    async def set(self, key: StateKey, value: dict[str, Any], *, ttl: int) -> None:
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        await self._redis.set(self._state(key), data.encode("utf-8"), ex=max(1, int(ttl)))

    async def delete(self, key: StateKey) -> None:
        await self._redis.delete(self._state(key))

    @asynccontextmanager
    async def lock(self, key: StateKey) -> AsyncIterator[None]:
        name = f"{self._prefix}lock:{key.channel}:{key.user_id}"
        local = self._local.get(name)
        if local is None:
            local = asyncio.Lock()
            self._local[name] = local
        async with local:  # one waiter per process polls Redis, the others queue here
            token = await self._acquire(name)
            try:
                yield
            finally:
                await self._release(keys=[name], args=[token])

    async def _acquire(self, name: str) -> str:
        token = secrets.token_hex(16)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        delay = 0.005
        while True:
            if await self._redis.set(name, token, nx=True, px=self._lease_ms):
                return token
            if loop.time() >= deadline:
                raise LockTimeout(f"conversation lock busy for {self._wait}s")
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.2)

    async def claim(self, name: str, *, ttl: int) -> bool:
        return bool(
            await self._redis.set(f"{self._prefix}claim:{name}", b"1", nx=True, ex=max(1, ttl))
        )

    async def close(self) -> None:
        await self._redis.aclose()
