"""The composition of the core: ``await bootstrap(settings)`` returns a wired ``Core``.

Nothing is built at import time. Channels register their ``Sender`` on the core before
``start()``; features register handlers, subscribers and scheduled jobs here.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from core import handlers, notifications
from core.adapters.db import Database, migrate, require_schema_at_head
from core.adapters.repository import claim_once
from core.adapters.scheduler import Scheduler
from core.adapters.search import SqlTextIndex
from core.commands import Command, MarkUnreachable
from core.config import Settings
from core.deliberation import handlers as deliberation_handlers
from core.deliberation.handlers import ThresholdRule
from core.deliberation.views import DeliberationViews
from core.delivery import DeliveryWorker, Outbound
from core.domain.participation import Level
from core.messagebus import MessageBus
from core.ports import Clock, Sender, StateStore, SystemClock
from core.similarity import SimilarProposals
from core.unit_of_work import UnitOfWork
from core.views import Views

__all__ = ["Core", "bootstrap"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Core:
    """Everything the adapters need, wired once per process."""

    settings: Settings
    db: Database
    clock: Clock
    bus: MessageBus
    views: Views
    discussions: DeliberationViews
    state: StateStore
    scheduler: Scheduler
    senders: dict[str, Sender] = field(default_factory=dict)
    outbound: Outbound = field(init=False)
    similar: SimilarProposals = field(init=False)  # similar proposals: intake, lookup, officials
    workers: list[DeliveryWorker] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)  # feature services by name
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _started: bool = False

    def __post_init__(self) -> None:
        self.outbound = Outbound(self.senders, on_unreachable=self.mark_unreachable)
        self.similar = SimilarProposals(index=SqlTextIndex(self.db))

    # --- use ---------------------------------------------------------------------
    async def execute(self, command: Command) -> Any:
        return await self.bus.handle(command)

    async def once(self, key: str) -> bool:
        """True for the first caller of ``key`` across every process (a unique DB row)."""
        async with self.db.write() as session:
            return await claim_once(session, key, self.clock.now())

    async def mark_unreachable(self, channel: str, address: str, reason: str) -> None:
        await self.execute(MarkUnreachable(channel=channel, address=address, reason=reason))

    def register_sender(self, sender: Sender) -> None:
        self.senders[sender.channel] = sender

    def wake_workers(self) -> None:
        for worker in self.workers:
            worker.wake()

    # --- lifecycle ---------------------------------------------------------------
    async def start(self, *, workers: bool | None = None) -> None:
        if self._started:
            return
        self._started = True
        run_workers = self.settings.run_workers if workers is None else workers
        if run_workers:
            worker = DeliveryWorker(
                db=self.db,
                senders=self.senders,
                clock=self.clock,
                max_attempts=self.settings.delivery_max_attempts,
                on_unreachable=self.mark_unreachable,
                **self.extras.get("delivery_worker_options", {}),
            )
            self.workers.append(worker)
            self._tasks.append(asyncio.create_task(worker.run(), name="delivery-worker"))
            self.scheduler.start()
        for hook in self.extras.get("on_start", []):
            await hook()

    async def stop(self) -> None:
        for hook in reversed(self.extras.get("on_stop", [])):
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

    def on_start(self, hook: Any) -> None:
        self.extras.setdefault("on_start", []).append(hook)

    def on_stop(self, hook: Any) -> None:
        self.extras.setdefault("on_stop", []).append(hook)


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
    """Open the database (migrating it), build the bus and register every feature."""
    clock = clock or SystemClock()
    db = Database(settings.effective_database_url)
    if run_migrations and settings.migrate_on_start:
        await migrate(db)
    elif run_migrations:
        await require_schema_at_head(db)
    bus = MessageBus(lambda: UnitOfWork(db, clock))
    core = Core(
        settings=settings,
        db=db,
        clock=clock,
        bus=bus,
        views=Views(db),
        discussions=DeliberationViews(db),
        state=state or _state_store(settings),
        scheduler=Scheduler(settings.tz),
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
    for feature in _features():
        feature(core)
    return core


def _features() -> list[Any]:
    """Each feature module exposes ``install(core)``: handlers, subscribers, jobs."""
    import importlib

    names = [
        # one line per feature module; each exposes install(core) -> None
        "core.limits",
        "core.webchat",
        "core.sync",
        "core.officials",
        "core.delivery",
        "core.news",  # notifications kept for channels that cannot push, handed over at contact
        "core.campaigns",  # after core.delivery: adds a quiet-hours gate to its worker options
        "core.deliberation",
    ]
    return [importlib.import_module(name).install for name in names]
