"""The Slack mount: Bolt's ``AsyncApp`` at ``POST /slack/events`` in the one aiohttp server."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bots.slack.campaigns import CampaignDesk
from bots.slack.listeners import SlackListeners
from bots.slack.sender import SlackBoard, build_client
from core.bootstrap import Core
from core.config import Settings

__all__ = ["SlackMount"]

log = logging.getLogger(__name__)
BODY_MAX = 1024 * 1024  # Slack's payloads are small; refuse anything bigger before reading


class SlackMount:
    """``routes(app)`` at build time; ``start`` builds Bolt, the Web API client and the board."""

    path = "/slack/events"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bolt: AsyncApp | None = None
        self.listeners: SlackListeners | None = None
        self.board: SlackBoard | None = None
        self._session: aiohttp.ClientSession | None = None

    def routes(self, app: web.Application) -> None:
        app.router.add_post(self.path, self.handle)

    async def start(self, app: web.Application, core: Core, engine: Any = None) -> None:
        assert self.settings.slack_signing_secret is not None
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        client = build_client(self.settings, self._session)
        self.board = SlackBoard(client=client, settings=self.settings)
        core.officials.attach_board(self.board)
        bolt = AsyncApp(
            client=client,
            signing_secret=self.settings.slack_signing_secret.get_secret_value(),
            name="gongnon",
            logger=logging.getLogger("bots.slack.bolt"),
        )
        self.listeners = SlackListeners(core=core, client=client)
        self.listeners.register(bolt)
        CampaignDesk.attach(bolt, core=core, client=client, spawn=self.listeners.spawn)
        self.bolt = bolt

    async def stop(self, app: web.Application) -> None:
        if self.listeners is not None:
            await self.listeners.drain()
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.bolt = None

    async def handle(self, request: web.Request) -> web.Response:
        if self.bolt is None:
            return web.Response(status=503, text="starting")
        if (request.content_length or 0) > BODY_MAX:
            return web.Response(status=413, text="too large")
        response = await self.bolt.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(response)
