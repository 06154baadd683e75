"""The composition of the core: ``await bootstrap(settings)`` returns a wired ``Core``.

Nothing is built at import time. Channels register their ``Sender`` on the core before
``start()``; each feature's ``install(core)`` registers its handlers, subscribers, jobs, hooks
and health probes and returns its typed service, which the ``Core`` keeps as an attribute
(``core.webchat``, ``core.sync``, ``core.officials``, ``core.campaigns``, ``core.privacy``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from core import (
    handlers,
    limits,
    news,
    notifications,
    officials,
    people,
    sync,
    verification,
    web_retention,
    webchat,
)
from core.adapters.db import Database, migrate, require_schema_at_head
from core.adapters.repository import claim_once
from core.adapters.scheduler import Scheduler
from core.adapters.search import SqlTextIndex
from core.campaigns import feature as campaigns
from core.campaigns.handlers import QuietHours
from core.campaigns.service import CampaignService
from core.commands import Command, MarkUnreachable
from core.config import Settings
from core.deliberation import feature as deliberation
from core.deliberation import handlers as deliberation_handlers
from core.deliberation.handlers import ThresholdRule
from core.deliberation.views import DeliberationViews
from core.delivery import DeliveryEngine, DeliveryWorker, Outbound
from core.domain.participation import Level
from core.kernel import HealthProbe, Hook
from core.limits import Limits
from core.messagebus import MessageBus
from core.officials.service import Officials
from core.people.views import PeopleViews
from core.ports import Clock, Sender, StateStore, SystemClock
from core.privacy import feature as privacy
from core.privacy.service import PrivacyService
from core.similarity import SimilarProposals
from core.sync.service import SyncService
from core.unit_of_work import UnitOfWork
from core.verification.ports import Verifier
from core.views import Views
from core.webchat import WebChat

__all__ = ["Core", "bootstrap"]

log = logging.getLogger(__name__)


@dataclass(eq=False, kw_only=True)
class Core:
    """Everything the adapters need, wired once per process (it satisfies ``core.kernel.Kernel``).

    The feature services are set by ``bootstrap()`` right after the core is built: each
    feature registers on this core's bus and scheduler, so it needs the core first.
    """

    settings: Settings
    db: Database
    clock: Clock
    bus: MessageBus
    views: Views
    discussions: DeliberationViews
    state: StateStore
    scheduler: Scheduler
    delivery: DeliveryEngine  # the rate limits and pacer shared by ``outbound`` and the workers
    outbound: Outbound
    senders: dict[str, Sender]  # the same dict the delivery engine and ``outbound`` read
    similar: SimilarProposals  # similar proposals: intake, lookup, officials
    workers: list[DeliveryWorker] = field(default_factory=list)
    health: dict[str, HealthProbe] = field(default_factory=dict)  # /healthz checks by name
    limits: Limits = field(init=False)  # what one person may do per day / minute
    webchat: WebChat = field(init=False)
    sync: SyncService = field(init=False)
    officials: Officials = field(init=False)
    campaigns: CampaignService = field(init=False)
    people: PeopleViews = field(init=False)  # linked identities (core.people)
    privacy: PrivacyService = field(init=False)  # notice consent, my data, erasure, retention
    # raising a person to ``verified`` (e.g. an SMS code): set by the composition root when
    # one is configured (``bots/server.py``), else None and the chat offers none
    verifier: Verifier | None = None
    _start_hooks: list[Hook] = field(default_factory=list)
    _stop_hooks: list[Hook] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _started: bool = False

    # --- use ---------------------------------------------------------------------
    async def execute(self, command: Command) -> Any:
        return await self.bus.handle(command)

    async def once(self, key: str) -> bool:
        """True for the first caller of ``key`` across every process (a unique DB row)."""
        async with self.db.write() as session:
            return await claim_once(session, key, self.clock.now())

    async def mark_unreachable(self, channel: str, address: str, reason: str) -> None:
        await _mark_unreachable(self.bus, channel, address, reason)

    def register_sender(self, sender: Sender) -> None:
        self.senders[sender.channel] = sender

    def wake_workers(self) -> None:
        for worker in self.workers:
            worker.wake()

    # --- lifecycle ---------------------------------------------------------------
    def on_start(self, hook: Hook) -> None:
        """Run ``hook`` when the core starts (after its workers), in registration order."""
        self._start_hooks.append(hook)

    def on_stop(self, hook: Hook) -> None:
        """Run ``hook`` when the core stops, in reverse registration order."""
        self._stop_hooks.append(hook)

    def add_health(self, name: str, probe: HealthProbe) -> None:
        self.health[name] = probe

    async def start(self, *, workers: bool | None = None) -> None:
        if self._started:
            return
        self._started = True
        run_workers = self.settings.run_workers if workers is None else workers
        if run_workers:
            worker = self.delivery.worker(on_unreachable=self.mark_unreachable)
            self.workers.append(worker)
            self._tasks.append(asyncio.create_task(worker.run(), name="delivery-worker"))
            self.scheduler.start()
        for hook in self._start_hooks:
            await hook()

    async def stop(self) -> None:
        for hook in reversed(self._stop_hooks):
            try:
                await hook()
            except Exception:
                log.exception("stop hook failed")
        for worker in self.workers:
            worker.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.workers.clear()
        self.scheduler.shutdown()
        await self.bus.drain()
        await self.state.close()
        await self.db.dispose()
        self._started = False


async def _mark_unreachable(bus: MessageBus, channel: str, address: str, reason: str) -> None:
    await bus.handle(MarkUnreachable(channel=channel, address=address, reason=reason))


def _state_store(settings: Settings) -> StateStore:
    if settings.redis_url:
        from core.adapters.state_redis import RedisStateStore

        return RedisStateStore.from_url(settings.redis_url)
    from core.adapters.state_memory import MemoryStateStore

    return MemoryStateStore()


async def bootstrap(
    settings: Settings,
    *,
    clock: Clock | None = None,
    state: StateStore | None = None,
    run_migrations: bool = True,
) -> Core:
    """Open the database (migrating it), build the bus and install every feature."""
    clock = clock or SystemClock()
    db = Database(settings.effective_database_url)
    if run_migrations and settings.migrate_on_start:
        await migrate(db)
    elif run_migrations:
        await require_schema_at_head(db)
    bus = MessageBus(lambda: UnitOfWork(db, clock))
    senders: dict[str, Sender] = {}
    # Campaign pushes wait out quiet hours: the campaigns' service defers its tick and the
    # delivery workers hold push-kind rows, both by this one rule.
    quiet = QuietHours(start=settings.quiet_hours_start, end=settings.quiet_hours_end,
                       tz=settings.tz)
    delivery = DeliveryEngine(
        settings=settings, db=db, clock=clock, senders=senders,
        push_gate=lambda _item, now: quiet.until(now),
    )
    core = Core(
        settings=settings,
        db=db,
        clock=clock,
        bus=bus,
        views=Views(db),
        discussions=DeliberationViews(db),
        state=state or _state_store(settings),
        scheduler=Scheduler(settings.tz),
        delivery=delivery,
        outbound=Outbound(
            senders,
            on_unreachable=lambda channel, address, reason: _mark_unreachable(
                bus, channel, address, reason
            ),
            pacer=delivery.pacer,
        ),
        senders=senders,
        similar=SimilarProposals(index=SqlTextIndex(db)),
    )
    participation = Level(settings.participation_level)
    handlers.register(
        bus, tz=settings.tz, default_locale=settings.default_locale, participation=participation
    )
    deliberation_handlers.register(
        bus,
        threshold=ThresholdRule(
            supports=settings.support_threshold, days=settings.support_threshold_days
        ),
        participation=participation,
    )
    notifications.register(
        bus, wake=core.wake_workers, confirm_first=settings.forum_backend != "local"
    )
    core.limits = limits.install(core)
    core.webchat = webchat.install(core)
    web_retention.install(core, core.webchat)
    core.sync = sync.install(core)
    core.officials = officials.install(core, discussions=core.discussions)
    news.register(bus)
    core.on_stop(delivery.close)
    core.campaigns = campaigns.install(core, quiet=quiet)
    deliberation.install(core)
    core.people = people.install(core)  # linked identities: link codes, merges
    verification.install(core)  # SMS codes raising a person to verified (Verifier port)
    core.privacy = privacy.install(core, webchat=core.webchat)
    return core
