"""Sliding-window limits for outbound sends: in process memory, or on Redis shared by every process.

A limit is defined the way the platforms define it: at most ``count`` sends in *any* window of
``window`` seconds (Telegram: 30 in any second overall, 1 per chat, 20 in any minute per group).
Each limit keeps a log of its last ``count`` send times; a send may go when the oldest of them has
left the window. Unlike a token bucket running a little under the rate, a send that woke up late
leaves room in the window, and the sends after it make that room up at once — the window still
never holds more than ``count``.

A send takes its place in *every* limit that applies to it (the bot's overall limit, the chat's,
the group's) atomically: all or none, so a refused send uses no room elsewhere. Urgent takers
(answers to a person) put a short *hold* on a limit they are waiting for, which bulk takers
respect, so an answer waits at most one send interval behind a push. A *pause* (the platform's
429 ``retry_after``) stops a limit for everyone until it runs out.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.ports import ChannelLimits

__all__ = [
    "Limit",
    "MemoryRateLimiter",
    "Pacer",
    "RateLimiter",
    "RedisRateLimiter",
    "acquire",
]

HOLD_MARGIN = 0.02  # seconds a hold outlives the wait it was set for


@dataclass(frozen=True, slots=True, kw_only=True)
class Limit:
    """At most ``count`` sends in any window of ``window`` seconds."""

    key: str
    count: int
    window: float = 1.0

    @property
    def interval(self) -> float:
        """The mean time between sends at the full rate."""
        return self.window / self.count


class RateLimiter(Protocol):
    async def try_take(self, limits: Sequence[Limit], *, urgent: bool = False) -> float:
        """Take a place in every limit's window, or in none: 0.0 if taken, else seconds to wait."""
        ...

    async def pause(self, key: str, seconds: float) -> None:
        """Refuse every take from limit ``key`` for ``seconds`` (a platform's 429)."""
        ...

    async def close(self) -> None: ...


async def acquire(
    limiter: RateLimiter,
    limits: Sequence[Limit],
    *,
    urgent: bool = False,
    sleep: Callable[[float], Any] = asyncio.sleep,
) -> float:
    """Wait until every limit has room; returns the seconds spent waiting."""
    waited = 0.0
    while True:
        wait = await limiter.try_take(limits, urgent=urgent)
        if wait <= 0:
            return waited
        await sleep(wait)
        waited += wait


# --- memory --------------------------------------------------------------------------


@dataclass(slots=True)
class _Log:
    window: float
    stamps: deque[float] = field(default_factory=deque)

    def wait(self, limit: Limit, now: float) -> float:
        """Seconds until the window has room for one more send (0.0: room now)."""
        stamps = self.stamps
        edge = now - limit.window
        while stamps and stamps[0] <= edge:
            stamps.popleft()
        excess = len(stamps) - limit.count
        if excess < 0:
            return 0.0
        return max(stamps[excess] + limit.window - now, 1e-6)  # > 0 even when rounding says 0


class MemoryRateLimiter:
    """Limits in one process (the embedded mode). ``now`` is a monotonic clock in seconds."""

    def __init__(self, *, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._logs: dict[str, _Log] = {}
        self._pauses: dict[str, float] = {}
        self._holds: dict[str, float] = {}
        self._ops = 0

    def _blocked(self, limit: Limit, now: float, urgent: bool) -> float:
        wait = self._pauses.get(limit.key, 0.0) - now
        if not urgent:
            hold = self._holds.get(limit.key, 0.0) - now
            if hold > 0:
                wait = max(wait, min(hold, limit.interval))
        return max(wait, 0.0)

    async def try_take(self, limits: Sequence[Limit], *, urgent: bool = False) -> float:
        now = self._now()
        self._sweep(now)
        wait = 0.0
        for limit in limits:
            log = self._logs.get(limit.key)
            short = 0.0 if log is None else log.wait(limit, now)
            if urgent and short > 0:
                self._holds[limit.key] = now + short + HOLD_MARGIN
            wait = max(wait, short, self._blocked(limit, now, urgent))
        if wait > 0:
            return wait
        for limit in limits:
            log = self._logs.get(limit.key)
            if log is None:
                log = self._logs[limit.key] = _Log(limit.window)
            log.window = limit.window
            log.stamps.append(now)
            while len(log.stamps) > limit.count:
                log.stamps.popleft()
            if urgent:
                self._holds.pop(limit.key, None)
        return 0.0

    async def pause(self, key: str, seconds: float) -> None:
        until = self._now() + seconds
        self._pauses[key] = max(until, self._pauses.get(key, 0.0))

    def _sweep(self, now: float) -> None:
        """Forget logs whose every send has left the window, so memory stays flat."""
        self._ops += 1
        if self._ops % 4096:
            return
        stale = [
            key
            for key, log in self._logs.items()
            if not log.stamps or log.stamps[-1] <= now - log.window
        ]
        for key in stale:
            del self._logs[key]
        for table in (self._pauses, self._holds):
            for key in [k for k, until in table.items() if until <= now]:
                del table[key]

    def __len__(self) -> int:
        return len(self._logs)

    async def close(self) -> None:
        self._logs.clear()


# --- Redis ---------------------------------------------------------------------------

# KEYS: one sorted set per limit (members: sends, scores: their times). ARGV: urgent (0/1),
# hold margin (s), then count, window per key. Beside each limit ``k`` live ``k:p`` (a pause,
# PX) and ``k:h`` (an urgent hold, PX). Time comes from the server (redis.call('TIME')) so every
# process agrees on it. A member is the time and the set's size then: unique within the window.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local urgent = ARGV[1] == '1'
local margin = tonumber(ARGV[2])
local wait = 0
local sizes = {}
for i, key in ipairs(KEYS) do
  local count = tonumber(ARGV[2 * i + 1])
  local window = tonumber(ARGV[2 * i + 2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local n = redis.call('ZCARD', key)
  sizes[i] = n
  local short = 0
  if n >= count then
    local edge = redis.call('ZRANGE', key, n - count, n - count, 'WITHSCORES')
    short = math.max(tonumber(edge[2]) + window - now, 0.000001)
  end
  local paused = redis.call('PTTL', key .. ':p')
  if paused > 0 then wait = math.max(wait, paused / 1000) end
  if urgent then
    if short > 0 then
      redis.call('SET', key .. ':h', '1', 'PX', math.ceil((short + margin) * 1000))
    end
  else
    local held = redis.call('PTTL', key .. ':h')
    if held > 0 then wait = math.max(wait, math.min(held / 1000, window / count)) end
  end
  wait = math.max(wait, short)
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i + 2])
  redis.call('ZADD', key, now, t[1] .. '.' .. t[2] .. '#' .. sizes[i])
  redis.call('PEXPIRE', key, math.ceil(window * 1000) + 1000)
  if urgent then redis.call('DEL', key .. ':h') end
end
return '0'
"""


class RedisRateLimiter:
    """Limits on Redis: several processes share each window (a Lua script, server time)."""

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

    async def try_take(self, limits: Sequence[Limit], *, urgent: bool = False) -> float:
        args: list[Any] = ["1" if urgent else "0", repr(HOLD_MARGIN)]
        for limit in limits:
            args += [str(int(limit.count)), repr(float(limit.window))]
        keys = [self._key(limit.key) for limit in limits]
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


# --- channel limits → windows ----------------------------------------------------------


class Pacer:
    """Turns a channel's ``ChannelLimits`` into windowed limits and paces every send through them.

    "N per second" becomes at most N sends in any window of ``(1 + headroom)`` seconds (and "N
    per minute" the same over a minute): the platform's own definition, with the window a little
    longer than the platform's so that network jitter between our clock and its own cannot put
    N + 1 sends into one of its windows. A group is a chat too: it gets the chat's 1/s besides
    the group's 20/min. ``limits_of(channel)`` and ``is_group(channel, address)`` come from the
    channels' Senders.
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

    def limit(self, key: str, count: float, period: float = 1.0) -> Limit:
        """``count`` sends per ``period`` seconds (a fraction rounds down: 0.5/s → 1 per 2 s)."""
        whole = max(1, math.floor(count + 1e-9))
        return Limit(key=key, count=whole, window=period * whole / count * (1.0 + self.headroom))

    def limits(self, channel: str, address: str) -> list[Limit]:
        limits = self.limits_of(channel)
        if limits is None:
            return []
        out = [self.limit(channel, limits.per_second)]
        if limits.per_group_per_minute is not None and self.is_group(channel, address):
            out.append(self.limit(f"{channel}:g:{address}", limits.per_group_per_minute, 60.0))
        if limits.per_address_per_second is not None:
            out.append(self.limit(f"{channel}:c:{address}", limits.per_address_per_second))
        return out

    async def try_take(self, channel: str, address: str, *, urgent: bool = False) -> float:
        limits = self.limits(channel, address)
        if not limits:
            return 0.0
        return await self.limiter.try_take(limits, urgent=urgent)

    async def acquire(self, channel: str, address: str, *, urgent: bool = False) -> float:
        limits = self.limits(channel, address)
        if not limits:
            return 0.0
        return await acquire(self.limiter, limits, urgent=urgent, sleep=self.sleep)

    def channel_interval(self, channel: str) -> float:
        limits = self.limits_of(channel)
        return 0.0 if limits is None else self.limit(channel, limits.per_second).interval

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
            scope = "global"  # no limit per chat to pause
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
            group = (
                limits is not None
                and limits.per_group_per_minute is not None
                and self.is_group(channel, address)
            )
            kind = "g" if group else "c"
            await self.limiter.pause(f"{channel}:{kind}:{address}", seconds)
        return scope
