"""Limits on what one person or one client address may do, behind the rate-limit port.

Proposals per person per day, comments (feedback, opinions, statements) per person per
minute, new web sessions per client address per minute and per hour, and new web sessions from
all addresses together per minute (a flood from many addresses; conversations already open go
on). Each is a sliding window of ``core.ratelimit`` (in process memory, or on Redis shared by
every process when ``GONGNON_REDIS_URL`` is set): a place is taken and settled at once, so it
counts for one window from now.

They apply to what a person does in a conversation: flows run such commands with
``Ctx.execute``, which checks here first. (Trusted callers of ``core.execute``, e.g. imports
and officials, are not limited.) A refused command raises ``Limited``, a ``DomainError``
whose catalog key says politely, in the person's language, what the limit is and when to try
again; the conversation engine keeps the person's draft (it restores the state from before the
turn). A limiter that cannot be reached lets the action through (logged): protection must not
take the service down.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.commands import AddFeedback, Command, SubmitProposal
from core.deliberation.commands import AddStatement
from core.domain.errors import DomainError
from core.i18n import t
from core.kernel import Kernel
from core.people.commands import RedeemLinkCode
from core.ratelimit import Limit, MemoryRateLimiter, RateLimiter, RedisRateLimiter

if TYPE_CHECKING:
    from core.config import Settings

__all__ = ["Limited", "Limits", "SessionRoom", "install", "wait_text"]

log = logging.getLogger(__name__)

DAY = 86400.0
HOUR = 3600.0
MINUTE = 60.0
LINK_GUESSES_PER_PERSON = 5  # link codes typed per person in 10 minutes
LINK_GUESSES_ALL = 120  # link codes typed by everyone in a minute


class Limited(DomainError):
    """Refused by a limit. ``key`` names the catalog text; ``wait`` is seconds until room."""

    def __init__(self, key: str, *, wait: float, **params: object) -> None:
        super().__init__(key, **params)
        self.key = key
        self.wait = wait

    def params_for(self, locale: str) -> dict[str, object]:
        return {**self.params, "wait": wait_text(self.wait, locale)}


def wait_text(seconds: float, locale: str) -> str:
    """"3 minutes", "1 hour", "약 2시간": a wait in the largest whole unit, rounded up."""
    seconds = max(1.0, seconds)
    if seconds < MINUTE:
        n, unit = math.ceil(seconds), "seconds"
    elif seconds < HOUR:
        n, unit = math.ceil(seconds / MINUTE), "minutes"
    else:
        n, unit = math.ceil(seconds / HOUR), "hours"
    form = "one" if n == 1 else "other"
    return t(f"limits.unit.{unit}_{form}", locale, n=n)


@dataclass(frozen=True, slots=True)
class Rule:
    """``count`` per ``window`` seconds for a kind of action (the limiter key's prefix)."""

    kind: str
    count: int
    window: float

    def limit(self, who: str) -> Limit:
        return Limit(key=f"{self.kind}:{who}", count=self.count, window=self.window)


@dataclass(frozen=True, slots=True)
class SessionRoom:
    """Whether a new web session may start: ``wait`` seconds (0.0: now); ``everyone`` when the
    cap on all addresses together refused it rather than the address's own limits."""

    wait: float = 0.0
    everyone: bool = False

    @property
    def allowed(self) -> bool:
        return self.wait <= 0


class Limits:
    """Takes places in the limits of one action; ``0.0`` means allowed, else seconds to wait."""

    def __init__(self, limiter: RateLimiter, *, settings: Settings) -> None:
        self.limiter = limiter
        self.proposals = Rule("proposals", settings.proposals_per_day, DAY)
        self.comments = Rule("comments", settings.comments_per_minute, MINUTE)
        self.sessions_minute = Rule("sessions:m", settings.web_sessions_per_address_per_minute,
                                    MINUTE)
        self.sessions_hour = Rule("sessions:h", settings.web_sessions_per_address_per_hour, HOUR)
        self.sessions_all = Rule("sessions:all", settings.web_sessions_per_minute, MINUTE)
        # link-code guesses (core.people): per person, and for everyone (many fresh sessions)
        self.link_person = Rule("link", LINK_GUESSES_PER_PERSON, 10 * MINUTE)
        self.link_all = Rule("link:all", LINK_GUESSES_ALL, MINUTE)

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        limiter: RateLimiter
        if settings.redis_url:
            limiter = RedisRateLimiter.from_url(
                settings.redis_url, prefix=f"{settings.delivery_redis_prefix}:limits"
            )
        else:
            limiter = MemoryRateLimiter()
        return cls(limiter, settings=settings)

    async def take(self, *limits: Limit) -> float:
        """A place in every limit (all or none); seconds to wait when there is none."""
        try:
            grant = await self.limiter.try_take(limits)
            if grant.granted:
                await self.limiter.settle(grant)
                return 0.0
            return grant.wait
        except Exception as exc:  # noqa: BLE001 - open rather than down; said once per failure
            log.warning("limits: the rate limiter failed (%s); allowing", type(exc).__name__)
            return 0.0

    async def new_session(self, address: str) -> SessionRoom:
        """A new web session from ``address``: allowed, or how long to wait and why.

        The address's own limits are asked first, so an address over them takes no place in
        the cap on everyone; a place it took is given back when that cap is full.
        """
        own = (self.sessions_minute.limit(address), self.sessions_hour.limit(address))
        try:
            grant = await self.limiter.try_take(own)
            if not grant.granted:
                return SessionRoom(grant.wait)
            overall = await self.limiter.try_take((self.sessions_all.limit("all"),))
            if not overall.granted:
                await self.limiter.release(grant)
                return SessionRoom(overall.wait, everyone=True)
            await self.limiter.settle(grant)
            await self.limiter.settle(overall)
        except Exception as exc:  # noqa: BLE001 - open rather than down, as in take()
            log.warning("limits: the rate limiter failed (%s); allowing", type(exc).__name__)
        return SessionRoom()

    async def check(self, command: Command) -> None:
        """Raise ``Limited`` when ``command`` is over its person's limit."""
        if isinstance(command, SubmitProposal):
            rule, key = self.proposals, "limits.proposals_per_day"
        elif isinstance(command, AddFeedback | AddStatement) and command.person_id is not None:
            rule, key = self.comments, "limits.comments_per_minute"
        elif isinstance(command, RedeemLinkCode):
            wait = await self.take(
                self.link_person.limit(str(command.person_id)), self.link_all.limit("all")
            )
            if wait > 0:
                raise Limited("limits.link_guesses", wait=wait)
            return
        else:
            return
        wait = await self.take(rule.limit(str(command.person_id)))
        if wait > 0:
            raise Limited(key, wait=wait, count=rule.count)

    async def close(self) -> None:
        await self.limiter.close()


def install(core: Kernel) -> Limits:
    """Build the limits (kept as ``core.limits``; conversations check them through
    ``Ctx.execute``); close them on stop."""
    limits = Limits.from_settings(core.settings)
    core.on_stop(limits.close)
    return limits
