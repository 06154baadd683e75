"""One contract for every conversation state store: memory (embedded) and Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from core.adapters.state_memory import MemoryStateStore
from core.ports import StateKey, StateStore


@dataclass
class Backend:
    store: StateStore
    advance: Callable[[float], Awaitable[None]]  # let ``seconds`` pass for TTLs
    prefix: str = ""


class _Tick:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        tick = _Tick()

        async def advance(seconds: float) -> None:
            tick.now += seconds

        store = MemoryStateStore(clock=tick)
        yield Backend(store=store, advance=advance)
        await store.close()
        return
    url = request.getfixturevalue("redis_url")
    from core.adapters.state_redis import RedisStateStore

    prefix = f"gongnon-test:{uuid.uuid4().hex}:"
    store = RedisStateStore.from_url(url, prefix=prefix)

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(seconds)

    try:
        yield Backend(store=store, advance=sleep, prefix=prefix)
    finally:
        redis = store._redis  # clean only our own prefix: never FLUSHDB
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await store.close()


KEY = StateKey("web", "u1")


async def test_get_set_delete_round_trip(backend: Backend) -> None:
    store = backend.store
    assert await store.get(KEY) is None
    value = {"flow": "intake", "data": {"title": "그늘막 🌳", "n": 3, "ok": True, "x": None}}
    await store.set(KEY, value, ttl=60)
    assert await store.get(KEY) == value
    assert await store.get(StateKey("telegram", "u1")) is None  # the channel is part of the key
    value["data"]["n"] = 4  # the store keeps its own copy
    assert (await store.get(KEY))["data"]["n"] == 3  # type: ignore[index]
    await store.set(KEY, {"flow": "menu"}, ttl=60)
    assert await store.get(KEY) == {"flow": "menu"}
    await store.delete(KEY)
    assert await store.get(KEY) is None
    await store.delete(KEY)  # deleting twice is fine


async def test_ttl_expiry_and_claims(backend: Backend) -> None:
    store = backend.store
    await store.set(KEY, {"a": 1}, ttl=1)
    await store.set(StateKey("web", "long"), {"b": 2}, ttl=60)
    assert await store.claim("update:1", ttl=1)
    assert not await store.claim("update:1", ttl=1)
    assert await store.claim("update:2", ttl=60)
    await backend.advance(1.1)
    assert await store.get(KEY) is None
    assert await store.get(StateKey("web", "long")) == {"b": 2}
    assert await store.claim("update:1", ttl=1)  # claimable again once expired
    assert not await store.claim("update:2", ttl=60)


async def test_lock_gives_mutual_exclusion(backend: Backend) -> None:
    store = backend.store
    inside = 0
    most = 0
    order: list[int] = []

    async def turn(n: int) -> None:
        nonlocal inside, most
        async with store.lock(KEY):
            inside += 1
            most = max(most, inside)
            state = await store.get(KEY) or {"count": 0}
            await asyncio.sleep(0.002)  # a read-modify-write that would lose updates unlocked
            state["count"] += 1
            await store.set(KEY, state, ttl=60)
            order.append(n)
            inside -= 1

    await asyncio.gather(*(turn(n) for n in range(20)))
    assert most == 1
    assert await store.get(KEY) == {"count": 20}
    assert sorted(order) == list(range(20))


async def test_locks_of_different_keys_do_not_block(backend: Backend) -> None:
    store = backend.store
    async with store.lock(StateKey("web", "a")):
        async with asyncio.timeout(2):
            async with store.lock(StateKey("web", "b")):
                pass


async def test_lock_is_released_after_an_error(backend: Backend) -> None:
    store = backend.store
    with pytest.raises(RuntimeError):
        async with store.lock(KEY):
            raise RuntimeError("boom")
    async with asyncio.timeout(2):
        async with store.lock(KEY):
            pass


async def test_redis_lock_excludes_other_processes(redis_url: str) -> None:
    """Two store instances (two processes' worth of connections) share one lock per key."""
    from core.adapters.state_redis import LockTimeout, RedisStateStore

    prefix = f"gongnon-test:{uuid.uuid4().hex}:"
    first = RedisStateStore.from_url(redis_url, prefix=prefix)
    second = RedisStateStore.from_url(redis_url, prefix=prefix, wait_seconds=0.2)
    try:
        async with first.lock(KEY):
            with pytest.raises(LockTimeout):
                async with second.lock(KEY):
                    pass
        async with asyncio.timeout(2):
            async with second.lock(KEY):
                pass
        # A crashed holder's lease runs out: nobody waits forever.
        short = RedisStateStore.from_url(redis_url, prefix=prefix, lease_ms=100)
        token = await short._acquire(f"{prefix}lock:web:u1")
        assert token
        async with asyncio.timeout(2):
            async with first.lock(KEY):
                pass
        await short.close()
    finally:
        keys = [k async for k in first._redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await first._redis.delete(*keys)
        await first.close()
        await second.close()
