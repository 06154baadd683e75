"""Token buckets for outbound sends: in process memory, or on Redis shared by every process.

A send takes one token from *every* bucket that applies to it (the bot's overall limit, the
chat's, the group's) atomically: all or none, so a refused send wastes no token elsewhere.
Urgent takers (answers to a person) put a short *hold* on a bucket they are waiting for, which
bulk takers respect, so an answer waits at most one token interval behind a push. A *pause*
(the platform's 429 ``retry_after``) stops a bucket for everyone until it runs out.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.ports import ChannelLimits

__all__ = [
    "Bucket",
    "MemoryRateLimiter",
    "Pacer",
    "RateLimiter",
    "RedisRateLimiter",
    "acquire",
]

HOLD_MARGIN = 0.02  # seconds a hold outlives the wait it was set for


@dataclass(frozen=True, slots=True, kw_only=True)
class Bucket:
    """One limit: ``rate`` tokens per second, holding at most ``burst`` tokens."""

    key: str
    rate: float
    burst: float = 1.0

    @property
    def interval(self) -> float:
        return 1.0 / self.rate


class RateLimiter(Protocol):
    async def try_take(self, buckets: Sequence[Bucket], *, urgent: bool = False) -> float:
        """Take a token from every bucket, or from none: 0.0 when taken, else seconds to wait."""
        ...

    async def pause(self, key: str, seconds: float) -> None:
        """Refuse every take from bucket ``key`` for ``seconds`` (a platform's 429)."""
        ...

    async def close(self) -> None: ...


async def acquire(
    limiter: RateLimiter,
    buckets: Sequence[Bucket],
    *,
    urgent: bool = False,
    sleep: Callable[[float], Any] = asyncio.sleep,
) -> float:
    """Wait until every bucket grants a token; returns the seconds spent waiting."""
    waited = 0.0
    while True:
        wait = await limiter.try_take(buckets, urgent=urgent)
        if wait <= 0:
            return waited
        await sleep(wait)
        waited += wait


# --- memory --------------------------------------------------------------------------


@dataclass(slots=True)
class _State:
    tokens: float
    stamp: float
    full_at: float  # from then on the bucket is full again and may be forgotten


class MemoryRateLimiter:
    """Buckets in one process (the embedded mode). ``now`` is a monotonic clock in seconds."""

    def __init__(self, *, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._buckets: dict[str, _State] = {}
        self._pauses: dict[str, float] = {}
        self._holds: dict[str, float] = {}
        self._ops = 0

    def _level(self, bucket: Bucket, now: float) -> float:
        state = self._buckets.get(bucket.key)
        if state is None:
            return bucket.burst
        return min(bucket.burst, state.tokens + max(0.0, now - state.stamp) * bucket.rate)

    def _blocked(self, bucket: Bucket, now: float, urgent: bool) -> float:
        wait = self._pauses.get(bucket.key, 0.0) - now
        if not urgent:
            hold = self._holds.get(bucket.key, 0.0) - now
            if hold > 0:
                wait = max(wait, min(hold, bucket.interval))
        return max(wait, 0.0)

    async def try_take(self, buckets: Sequence[Bucket], *, urgent: bool = False) -> float:
        now = self._now()
        self._sweep(now)
        wait = 0.0
        levels: list[float] = []
        for bucket in buckets:
            level = self._level(bucket, now)
            levels.append(level)
            short = (1.0 - level) / bucket.rate if level < 1.0 else 0.0
            blocked = self._blocked(bucket, now, urgent)
            if urgent and short > 0:
                self._holds[bucket.key] = now + short + HOLD_MARGIN
            wait = max(wait, short, blocked)
        if wait > 0:
            return wait
        for bucket, level in zip(buckets, levels, strict=True):
            full_at = now + (bucket.burst - level + 1.0) / bucket.rate
            self._buckets[bucket.key] = _State(level - 1.0, now, full_at)
            if urgent:
                self._holds.pop(bucket.key, None)
        return 0.0

    async def pause(self, key: str, seconds: float) -> None:
        until = self._now() + seconds
        self._pauses[key] = max(until, self._pauses.get(key, 0.0))

    def _sweep(self, now: float) -> None:
        """Forget buckets idle long enough to be full again, so memory stays flat."""
        self._ops += 1
        if self._ops % 4096:
            return
        stale = [k for k, s in self._buckets.items() if s.full_at <= now]
        for key in stale:
            del self._buckets[key]
        for table in (self._pauses, self._holds):
            for key in [k for k, until in table.items() if until <= now]:
                del table[key]

    def __len__(self) -> int:
        return len(self._buckets)

    async def close(self) -> None:
        self._buckets.clear()


# --- Redis ---------------------------------------------------------------------------

# KEYS: one bucket key per limit. ARGV: urgent (0/1), hold margin (s), then rate, burst per key.
# Beside each bucket ``k`` live ``k:p`` (a pause, PX) and ``k:h`` (an urgent hold, PX).
# Time comes from the server (redis.call('TIME')) so every process agrees on it.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local urgent = ARGV[1] == '1'
local margin = tonumber(ARGV[2])
local wait = 0
local levels = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i + 1])
  local burst = tonumber(ARGV[2 * i + 2])
  local s = redis.call('HMGET', key, 't', 's')
  local level = burst
  if s[1] then
    level = math.min(burst, tonumber(s[1]) + math.max(0, now - tonumber(s[2])) * rate)
  end
  levels[i] = level
  local short = 0
  if level < 1 then short = (1 - level) / rate end
  local paused = redis.call('PTTL', key .. ':p')
  if paused > 0 then wait = math.max(wait, paused / 1000) end
  if urgent then
    if short > 0 then
      redis.call('SET', key .. ':h', '1', 'PX', math.ceil((short + margin) * 1000))
    end
  else
    local held = redis.call('PTTL', key .. ':h')
    if held > 0 then wait = math.max(wait, math.min(held / 1000, 1 / rate)) end
  end
  wait = math.max(wait, short)
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i + 1])
  local burst = tonumber(ARGV[2 * i + 2])
  redis.call('HSET', key, 't', levels[i] - 1, 's', now)
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
  if urgent then redis.call('DEL', key .. ':h') end
end
return '0'
"""


class RedisRateLimiter:
    """Buckets on Redis: several processes share each limit (a Lua script, server time)."""

    def __init__(self, redis: Any, *, prefix: str = "gongnon:rl") -> None:
        self.redis = redis
        self.prefix = prefix
        self._take = redis.register_script(_TAKE)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "gongnon:rl") -> RedisRateLimiter:
        from redis.asyncio import Redis

        return cls(Redis.from_url(url, socket_timeout=10, health_check_interval=30), prefix=prefix)

    def _key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    async def try_take(self, buckets: Sequence[Bucket], *, urgent: bool = False) -> float:
        args: list[Any] = ["1" if urgent else "0", repr(HOLD_MARGIN)]
        for bucket in buckets:
            args += [repr(float(bucket.rate)), repr(float(bucket.burst))]
        keys = [self._key(b.key) for b in buckets]
        return float(await self._take(keys=keys, args=args))

    async def pause(self, key: str, seconds: float) -> None:
        millis = max(1, math.ceil(seconds * 1000))
        pause_key = self._key(key) + ":p"
        # Keep the longer of an existing pause and this one.
        current = await self.redis.pttl(pause_key)
        if current is None or current < millis:
            await self.redis.set(pause_key, "1", px=millis)

    async def close(self) -> None:
        await self.redis.aclose()


# --- channel limits → buckets ----------------------------------------------------------


class Pacer:
    """Turns a channel's ``ChannelLimits`` into buckets and paces every send through them.

    Each limit is enforced at ``(1 - headroom)`` of its value with a burst of
    ``max(1, limit * headroom / 2)`` tokens, so that no sliding window of the platform's
    length ever holds more than the limit, even with a little network jitter.
    ``limits_of(channel)`` and ``is_group(channel, address)`` come from the channels' Senders.
    """

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        limits_of: Callable[[str], ChannelLimits | None],
        is_group: Callable[[str, str], bool] | None = None,
        headroom: float = 0.01,
        sleep: Callable[[float], Any] = asyncio.sleep,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = limiter
        self.limits_of = limits_of
        self.is_group = is_group or (lambda _channel, address: address.startswith("-"))
        self.headroom = headroom
        self.sleep = sleep
        self._now = now
        self._last_429: dict[str, tuple[float, str]] = {}

    def _bucket(self, key: str, per_second: float) -> Bucket:
        rate = per_second * (1.0 - self.headroom)
        return Bucket(key=key, rate=rate, burst=max(1.0, per_second * self.headroom / 2))

    def buckets(self, channel: str, address: str) -> list[Bucket]:
        limits = self.limits_of(channel)
        if limits is None:
            return []
        out = [self._bucket(channel, limits.per_second)]
        if limits.per_group_per_minute is not None and self.is_group(channel, address):
            out.append(self._bucket(f"{channel}:g:{address}", limits.per_group_per_minute / 60))
        elif limits.per_address_per_second is not None:
            out.append(self._bucket(f"{channel}:c:{address}", limits.per_address_per_second))
        return out

    async def try_take(self, channel: str, address: str, *, urgent: bool = False) -> float:
        buckets = self.buckets(channel, address)
        if not buckets:
            return 0.0
        return await self.limiter.try_take(buckets, urgent=urgent)

    async def acquire(self, channel: str, address: str, *, urgent: bool = False) -> float:
        buckets = self.buckets(channel, address)
        if not buckets:
            return 0.0
        return await acquire(self.limiter, buckets, urgent=urgent, sleep=self.sleep)

    def channel_interval(self, channel: str) -> float:
        limits = self.limits_of(channel)
        return 0.0 if limits is None else 1.0 / (limits.per_second * (1.0 - self.headroom))

    async def back_off(
        self, channel: str, address: str, retry_after: float, *, scope: str | None = None
    ) -> str:
        """Honour a 429: pause the chat, or the whole bot. Returns the scope paused.

        Telegram does not say which limit was hit. Unless the Sender knows (``scope``), the
        chat is paused; a second 429 on another chat of the channel within ``retry_after``
        means the bot's overall limit, and the whole channel is paused.
        """
        seconds = max(retry_after, 0.05)
        limits = self.limits_of(channel)
        if limits is None or (
            limits.per_address_per_second is None and limits.per_group_per_minute is None
        ):
            scope = "global"  # no bucket per chat to pause
        if scope is None:
            now = self._now()
            last = self._last_429.get(channel)
            self._last_429[channel] = (now, address)
            if last is not None and last[1] != address and now - last[0] <= seconds:
                scope = "global"
            else:
                scope = "chat"
        if scope == "global":
            await self.limiter.pause(channel, seconds)
        else:
            kind = "g" if self.is_group(channel, address) else "c"
            await self.limiter.pause(f"{channel}:{kind}:{address}", seconds)
        return scope
