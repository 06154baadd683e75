"""What the composition root shares with the channel mounts: the app keys and the mount shape."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from bots.guard import ConnectionGuard
from conversations import Engine
from core.bootstrap import Core

__all__ = ["CORE", "ENGINE", "GUARD", "Mount"]

CORE: web.AppKey[Core] = web.AppKey("core", Core)
ENGINE: web.AppKey[Engine] = web.AppKey("engine", Engine)
GUARD: web.AppKey[ConnectionGuard] = web.AppKey("connection_guard", ConnectionGuard)  # serve()


class Mount(Protocol):
    """A channel in the one aiohttp server: ``routes(app)`` when the app is built, ``start``
    once the core and the engine exist, ``stop`` in reverse order at shutdown."""

    def routes(self, app: web.Application) -> None: ...

    async def start(self, app: web.Application, core: Core, engine: Engine) -> None: ...

    async def stop(self, app: web.Application) -> None: ...
