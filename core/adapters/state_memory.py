"""In-process conversation state (the embedded default): a dict with TTLs and a lock per key."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from weakref import WeakValueDictionary

from core.ports import StateKey

__all__ = ["MemoryStateStore"]


class MemoryStateStore:
    def __init__(self, *, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._data: dict[StateKey, tuple[float, dict[str, Any]]] = {}
        self._claims: dict[str, float] = {}
        self._locks: WeakValueDictionary[StateKey, asyncio.Lock] = WeakValueDictionary()
        self._sweeps = 0

    def _sweep(self) -> None:
        self._sweeps += 1
        if self._sweeps % 1024:
            return
        now = self._clock()
        for key in [k for k, (exp, _) in self._data.items() if exp <= now]:
            self._data.pop(key, None)
        for name in [n for n, exp in self._claims.items() if exp <= now]:
            self._claims.pop(name, None)

    async def get(self, key: StateKey) -> dict[str, Any] | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires <= self._clock():
            self._data.pop(key, None)
            return None
        return copy.deepcopy(value)

    async def set(self, key: StateKey, value: dict[str, Any], *, ttl: int) -> None:
        self._sweep()
        self._data[key] = (self._clock() + ttl, copy.deepcopy(value))

    async def delete(self, key: StateKey) -> None:
        self._data.pop(key, None)

    @asynccontextmanager
    async def lock(self, key: StateKey) -> AsyncIterator[None]:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        async with lock:
            yield

    async def claim(self, name: str, *, ttl: int) -> bool:
        self._sweep()
        now = self._clock()
        expires = self._claims.get(name)
        if expires is not None and expires > now:
            return False
        self._claims[name] = now + ttl
        return True

    async def close(self) -> None:
        self._data.clear()
