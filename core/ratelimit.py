"""Sliding-window limits for outbound sends: in process memory, or on Redis shared by every process.

A limit is defined the way the platforms define it: at most ``count`` sends in *any* window of
``window`` seconds (Telegram: 30 in any second overall, 1 per chat, 20 in any minute per group).
Each limit keeps a log of its last sends; a send may go when the oldest of them has left the
window. Unlike a token bucket running a little under the rate, a send that woke up late leaves
room in the window, and the sends after it make that room up at once.

The platform counts a send when the request *arrives*, which we never see: it happens after we
take the place and before we get the answer. So a place is taken in two steps: ``try_take``
holds it *in flight*, and ``settle`` (after the answer, or the error) stamps it with that time.
A send in flight blocks its place until it is settled (or, for a process that died meanwhile,
until ``flight`` seconds after the take); a settled one until a window after the answer. Two
sends that share a place are therefore a full window apart *as the platform sees them*,
whatever the network, the event loop or the other process did in between: no jitter margin is
needed, and the cost is one round trip per window.

A send takes its place in *every* limit that applies to it (the bot's overall limit, the chat's,
the group's) atomically: all or none, so a refused send uses no room elsewhere. Urgent takers
(answers to a person) put a short *hold* on a limit they are waiting for, which bulk takers
respect, so an answer waits at most one send interval behind a push. A *pause* (the platform's
429 ``retry_after``) stops a limit for everyone until it runs out.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.ports import ChannelLimits

__all__ = [
    "Grant",
    "Limit",
    "MemoryRateLimiter",
    "Pacer",
    "RateLimiter",
    "RedisRateLimiter",
    "acquire",
]

log = logging.getLogger(__name__)

HOLD_MARGIN = 0.02  # seconds a hold outlives the wait it was set for
FLIGHT = 5.0  # seconds after which an unsettled take counts as settled (its process died)


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


@dataclass(frozen=True, slots=True)
class Grant:
    """A place in every limit (``wait == 0``; settle it after the send), or the seconds until
    there may be one."""

    wait: float
    ticket: str = ""
    limits: tuple[Limit, ...] = ()

    @property
    def granted(self) -> bool:
        return self.wait <= 0


class RateLimiter(Protocol):
    async def try_take(self, limits: Sequence[Limit], *, urgent: bool = False) -> Grant:
        """Take a place in flight in every limit's window, or in none."""
        ...

    async def try_take_many(
        self, requests: Sequence[Sequence[Limit]], *, patience: float = 0.0
    ) -> list[Grant]:
        """Bulk takes for several sends, in order, in one step: a grant or a wait for each.

        A send refused for at most ``patience`` seconds blocks the ones behind it (a line):
        they come back untried, with its wait. One refused for longer steps aside.
        """
        ...

    async def settle(self, grant: Grant) -> None:
        """The send is answered (or failed): its places count from now for one window."""
        ...

    async def release(self, grant: Grant) -> None:
        """The send never went out (its task was stopped first): give its places back."""
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
) -> Grant:
    """Wait until every limit has room and take it; settle the grant after the send."""
    while True:
        grant = await limiter.try_take(limits, urgent=urgent)
        if grant.granted:
            return grant
        await sleep(grant.wait)


# --- memory --------------------------------------------------------------------------


@dataclass(slots=True)
class _Log:
    window: float
    done: deque[float] = field(default_factory=deque)  # when settled sends were answered
    flying: dict[str, float] = field(default_factory=dict)  # ticket → when it was taken

    def wait(self, limit: Limit, now: float, flight: float) -> float:
        """Seconds until the window may have room for one more send (0.0: room now)."""
        done, window = self.done, limit.window
        while done and done[0] <= now - window:
            done.popleft()
        flying = self.flying  # in take order: the oldest first
        while flying and next(iter(flying.values())) <= now - flight - window:
            del flying[next(iter(flying))]
        excess = len(done) + len(self.flying) - limit.count
        if excess < 0:
            return 0.0
        if excess < len(done):
            return max(done[excess] + window - now, 1e-6)  # > 0 even when rounding says 0
        # Waiting for a send in flight: it cannot leave before a window from now.
        oldest = next(iter(flying.values()))
        return max(min(window, oldest + flight + window - now), 1e-6)

    def stale(self, now: float, flight: float) -> bool:
        if self.flying:
            return next(reversed(self.flying.values())) <= now - flight - self.window
        return not self.done or self.done[-1] <= now - self.window


class MemoryRateLimiter:
    """Limits in one process (the embedded mode). ``now`` is a monotonic clock in seconds."""

    def __init__(
        self, *, now: Callable[[], float] = time.monotonic, flight: float = FLIGHT
    ) -> None:
        self._now = now
        self.flight = flight
        self._logs: dict[str, _Log] = {}
        self._pauses: dict[str, float] = {}
        self._holds: dict[str, float] = {}
        self._ops = 0
        self._tickets = itertools.count()

    def _blocked(self, limit: Limit, now: float, urgent: bool) -> float:
        wait = self._pauses.get(limit.key, 0.0) - now
        if not urgent:
            hold = self._holds.get(limit.key, 0.0) - now
            if hold > 0:
                wait = max(wait, min(hold, limit.interval))
        return max(wait, 0.0)

    async def try_take(self, limits: Sequence[Limit], *, urgent: bool = False) -> Grant:
        now = self._now()
        self._sweep(now)
        wait = 0.0
        for limit in limits:
            log = self._logs.get(limit.key)
            short = 0.0 if log is None else log.wait(limit, now, self.flight)
            if urgent and short > 0:
                self._holds[limit.key] = now + short + HOLD_MARGIN
            wait = max(wait, short, self._blocked(limit, now, urgent))
        if wait > 0:
            return Grant(wait)
        ticket = str(next(self._tickets))
        for limit in limits:
            log = self._logs.get(limit.key)
            if log is None:
                log = self._logs[limit.key] = _Log(limit.window)
            log.window = limit.window
            log.flying[ticket] = now
            if urgent:
                self._holds.pop(limit.key, None)
        return Grant(0.0, ticket, tuple(limits))

    async def try_take_many(
        self, requests: Sequence[Sequence[Limit]], *, patience: float = 0.0
    ) -> list[Grant]:
        grants: list[Grant] = []
        for limits in requests:
            grant = await self.try_take(limits)
            grants.append(grant)
            if 0 < grant.wait <= patience:
                grants += [grant] * (len(requests) - len(grants))
                break
        return grants

    async def settle(self, grant: Grant) -> None:
        now = self._now()
        for limit in grant.limits:
            log = self._logs.get(limit.key)
            if log is not None and log.flying.pop(grant.ticket, None) is not None:
                log.done.append(now)
                while len(log.done) > limit.count:
                    log.done.popleft()

    async def release(self, grant: Grant) -> None:
        for limit in grant.limits:
            log = self._logs.get(limit.key)
            if log is not None:
                log.flying.pop(grant.ticket, None)

    async def pause(self, key: str, seconds: float) -> None:
        until = self._now() + seconds
        self._pauses[key] = max(until, self._pauses.get(key, 0.0))

    def _sweep(self, now: float) -> None:
        """Forget logs whose every send has left the window, so memory stays flat."""
        self._ops += 1
        if self._ops % 4096:
            return
        for key in [k for k, log in self._logs.items() if log.stale(now, self.flight)]:
            del self._logs[key]
        for table in (self._pauses, self._holds):
            for key in [k for k, until in table.items() if until <= now]:
                del table[key]

    def __len__(self) -> int:
        return len(self._logs)

    async def close(self) -> None:
        self._logs.clear()


# --- Redis ---------------------------------------------------------------------------

# Per limit ``k``: ``k`` (sorted set: settled sends by answer time), ``k:f`` (sorted set: sends
# in flight by take time), ``k:p`` (a pause, PX) and ``k:h`` (an urgent hold, PX). Time comes
# from the server (redis.call('TIME')) so every process agrees on it.
# One call takes for one or several sends, in order. KEYS: each send's limits, one after the
# other. ARGV: urgent (0/1), hold margin (s), flight (s), patience (s), then per send: its
# ticket, its number of limits, and count, window per limit. Returns a wait per send ('0':
# taken); after a send refused for at most ``patience`` the answer stops (the rest wait).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local urgent = ARGV[1] == '1'
local margin = tonumber(ARGV[2])
local flight = tonumber(ARGV[3])
local patience = tonumber(ARGV[4])
local out = {}
local cleaned = {}
local k = 1
local a = 5
while a <= #ARGV do
  local ticket = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  local wait = 0
  for j = 0, n - 1 do
    local key = KEYS[k + j]
    local count = tonumber(ARGV[a + 2 * j])
    local window = tonumber(ARGV[a + 2 * j + 1])
    local fkey = key .. ':f'
    if not cleaned[key] then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
      redis.call('ZREMRANGEBYSCORE', fkey, '-inf', now - flight - window)
      cleaned[key] = true
    end
    local done = redis.call('ZCARD', key)
    local excess = done + redis.call('ZCARD', fkey) - count
    local short = 0
    if excess >= 0 then
      if excess < done then
        local edge = redis.call('ZRANGE', key, excess, excess, 'WITHSCORES')
        short = tonumber(edge[2]) + window - now
      else
        local edge = redis.call('ZRANGE', fkey, 0, 0, 'WITHSCORES')
        short = math.min(window, tonumber(edge[2]) + flight + window - now)
      end
      short = math.max(short, 0.000001)
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
  if wait > 0 then
    out[#out + 1] = tostring(wait)
    if wait <= patience then
      return out
    end
  else
    for j = 0, n - 1 do
      local key = KEYS[k + j]
      local window = tonumber(ARGV[a + 2 * j + 1])
      redis.call('ZADD', key .. ':f', now, ticket)
      redis.call('PEXPIRE', key .. ':f', math.ceil((flight + window) * 1000) + 1000)
      if urgent then redis.call('DEL', key .. ':h') end
    end
    out[#out + 1] = '0'
  end
  k = k + n
  a = a + 2 * n
end
return out
"""

# KEYS: the limits of one grant. ARGV: ticket, then window per key.
_SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for i, key in ipairs(KEYS) do
  if redis.call('ZREM', key .. ':f', ARGV[1]) == 1 then
    redis.call('ZADD', key, now, ARGV[1])
    redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[i + 1]) * 1000) + 1000)
  end
end
return 1
"""


class RedisRateLimiter:
    """Limits on Redis: several processes share each window (Lua scripts, server time)."""

    def __init__(self, redis: Any, *, prefix: str = "gongnon:rl", flight: float = FLIGHT) -> None:
        self.redis = redis
        self.prefix = prefix
        self.flight = flight
        self._take = redis.register_script(_TAKE)
        self._settle = redis.register_script(_SETTLE)
        self._tickets = itertools.count()
        self._me = uuid.uuid4().hex[:12]  # tickets are unique across processes

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "gongnon:rl") -> RedisRateLimiter:
        from redis.asyncio import Redis

        return cls(Redis.from_url(url, socket_timeout=10, health_check_interval=30), prefix=prefix)

    def _key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    async def try_take(self, limits: Sequence[Limit], *, urgent: bool = False) -> Grant:
        return (await self._take_many([limits], urgent=urgent, patience=0.0))[0]

    async def try_take_many(
        self, requests: Sequence[Sequence[Limit]], *, patience: float = 0.0
    ) -> list[Grant]:
        return await self._take_many(requests, urgent=False, patience=patience)

    async def _take_many(
        self, requests: Sequence[Sequence[Limit]], *, urgent: bool, patience: float
    ) -> list[Grant]:
        if not requests:
            return []
        keys: list[str] = []
        args: list[Any] = ["1" if urgent else "0", repr(HOLD_MARGIN), repr(self.flight)]
        args.append(repr(float(patience)))
        tickets: list[str] = []
        for limits in requests:
            ticket = f"{self._me}:{next(self._tickets)}"
            tickets.append(ticket)
            args += [ticket, str(len(limits))]
            for limit in limits:
                keys.append(self._key(limit.key))
                args += [str(int(limit.count)), repr(float(limit.window))]
        answers = await self._take(keys=keys, args=args)
        grants: list[Grant] = []
        for limits, ticket, answer in zip(requests, tickets, answers, strict=False):
            wait = float(answer)
            grants.append(Grant(wait) if wait > 0 else Grant(0.0, ticket, tuple(limits)))
        if len(grants) < len(requests):  # the rest waits behind the last one
            grants += [grants[-1]] * (len(requests) - len(grants))
        return grants

    async def settle(self, grant: Grant) -> None:
        if not grant.limits:
            return
        keys = [self._key(limit.key) for limit in grant.limits]
        windows = [repr(float(limit.window)) for limit in grant.limits]
        await self._settle(keys=keys, args=[grant.ticket, *windows])

    async def release(self, grant: Grant) -> None:
        if not grant.limits:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            for limit in grant.limits:
                pipe.zrem(self._key(limit.key) + ":f", grant.ticket)
            await pipe.execute()

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

    "N per second" becomes at most N sends in any window of one second (and "N per minute" the
    same over a minute): the platform's own definition. ``headroom`` lengthens every window by
    that fraction, for a platform that counts more strictly than it says. ``limits_of(channel)``
    comes from the channel's Sender, and its ``for_address(address)`` says which limits one
    address has (core never looks inside an address). Settle every grant after its send
    (``settle``).
    """

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        limits_of: Callable[[str], ChannelLimits | None],
        headroom: float = 0.0,
        sleep: Callable[[float], Any] = asyncio.sleep,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = limiter
        self.limits_of = limits_of
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
        for rate in limits.for_address(address):
            out.append(self.limit(f"{channel}:{rate.scope}:{address}", rate.count, rate.period))
        return out

    async def try_take(self, channel: str, address: str, *, urgent: bool = False) -> Grant:
        limits = self.limits(channel, address)
        if not limits:
            return Grant(0.0)
        return await self.limiter.try_take(limits, urgent=urgent)

    async def try_take_many(
        self, channel: str, addresses: Sequence[str], *, patience: float = 0.0
    ) -> list[Grant]:
        """Bulk takes for sends to several addresses of one channel, in order (see
        ``RateLimiter.try_take_many``)."""
        requests = [self.limits(channel, address) for address in addresses]
        if not requests or not requests[0]:
            return [Grant(0.0) for _ in addresses]
        return await self.limiter.try_take_many(requests, patience=patience)

    async def acquire(self, channel: str, address: str, *, urgent: bool = False) -> Grant:
        limits = self.limits(channel, address)
        if not limits:
            return Grant(0.0)
        return await acquire(self.limiter, limits, urgent=urgent, sleep=self.sleep)

    async def settle(self, grant: Grant) -> None:
        """The send under this grant is answered (or failed): start its windows now.

        Never raises: the send has happened, and a limiter that cannot be reached (Redis)
        keeps the places in flight until ``FLIGHT`` runs out, which errs on the safe side.
        """
        if grant.limits:
            try:
                await self.limiter.settle(grant)
            except Exception:
                log.warning("rate limiter: settling a send failed; its places time out")

    async def release(self, grant: Grant) -> None:
        """The send under this grant never went out: its places are free again (best effort)."""
        if grant.limits:
            try:
                await self.limiter.release(grant)
            except Exception:
                log.warning("rate limiter: giving back a place failed; it times out")

    def channel_interval(self, channel: str) -> float:
        limits = self.limits_of(channel)
        return 0.0 if limits is None else self.limit(channel, limits.per_second).interval

    async def back_off(
        self, channel: str, address: str, retry_after: float, *, scope: str | None = None
    ) -> str:
        """Honour a 429: pause the chat, or the whole bot. Returns the scope paused.

        A platform may not say which limit was hit. Unless the Sender knows (``scope``), the
        address is paused (each of its limits); a second 429 on another address of the channel
        within ``retry_after`` means the bot's overall limit, and the whole channel is paused.
        """
        seconds = max(retry_after, 0.05)
        limits = self.limits_of(channel)
        rates = limits.for_address(address) if limits is not None else ()
        if not rates:
            scope = "global"  # no limit per address to pause
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
            for rate in rates:
                await self.limiter.pause(f"{channel}:{rate.scope}:{address}", seconds)
        return scope
