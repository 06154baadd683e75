"""What a feature is built on: the ``Kernel`` protocol the wired ``Core`` satisfies.

A feature's ``install(kernel)`` registers handlers and subscribers on the bus, jobs on the one
scheduler, start/stop hooks and health probes, and returns its typed service; ``bootstrap()``
keeps that service on the ``Core``. Features name this protocol, not ``core.bootstrap.Core``,
so no feature module imports the composition (no cycle, even for type checking).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from core.adapters.db import Database
from core.adapters.scheduler import Scheduler
from core.commands import Command
from core.config import Settings
from core.messagebus import MessageBus
from core.ports import Clock, Sender, StateStore
from core.views import Views

__all__ = ["HealthProbe", "Hook", "Kernel"]

Hook = Callable[[], Awaitable[None]]
"""A start or stop hook: run once when the core starts (in order) or stops (in reverse)."""

HealthProbe = Callable[[], Awaitable[dict[str, Any]]]
"""One entry of ``/healthz``: ``{"status": "ok" | "degraded" | "down", …}``."""


class Kernel(Protocol):
    """The shared parts every feature may use (read-only: features never replace them)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def bus(self) -> MessageBus: ...

    @property
    def views(self) -> Views: ...

    @property
    def state(self) -> StateStore: ...

    @property
    def scheduler(self) -> Scheduler: ...

    @property
    def senders(self) -> Mapping[str, Sender]:
        """Each channel's sender, registered by the channels before ``start()``."""
        ...

    @property
    def workers(self) -> Sequence[object]:
        """The delivery workers this process runs (empty in one-shot CLI commands)."""
        ...

    async def execute(self, command: Command) -> Any: ...

    async def once(self, key: str) -> bool: ...

    def wake_workers(self) -> None: ...

    def on_start(self, hook: Hook) -> None: ...

    def on_stop(self, hook: Hook) -> None: ...

    def add_health(self, name: str, probe: HealthProbe) -> None: ...
