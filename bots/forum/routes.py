"""The forum's inbound webhook: ``POST /forum/webhook``, HMAC-signed, answered at once."""

from __future__ import annotations

import logging

from aiohttp import web

from bots.appkeys import CORE
from conversations import Engine
from core.bootstrap import Core
from core.config import Settings
from core.sync.inbound import SIGNATURE_HEADER, TIMESTAMP_HEADER

__all__ = ["BODY_MAX", "ForumMount"]

log = logging.getLogger(__name__)

BODY_MAX = 256 * 1024


class ForumMount:
    """Mounted when ``GONGNON_FORUM_BACKEND`` is not ``local``; the core does the checking."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/forum/webhook", self.webhook)

    async def start(self, app: web.Application, core: Core, engine: Engine) -> None:
        if self.settings.forum_webhook_secret is None:
            log.warning("GONGNON_FORUM_WEBHOOK_SECRET is not set: the forum webhook answers 503")

    async def stop(self, app: web.Application) -> None:
        return None

    async def webhook(self, request: web.Request) -> web.Response:
        core = request.app.get(CORE)
        if core is None:
            return web.json_response({"error": "starting"}, status=503)
        sync = core.sync
        if request.content_length is not None and request.content_length > BODY_MAX:
            return web.json_response({"error": "too_large"}, status=413)
        body = await request.content.read(BODY_MAX + 1)
        if len(body) > BODY_MAX:
            return web.json_response({"error": "too_large"}, status=413)
        answer = await sync.inbound.receive(
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            signature=request.headers.get(SIGNATURE_HEADER),
            body=body,
        )
        return web.json_response(answer.body, status=answer.status)
