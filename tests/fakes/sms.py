"""A fake HTTP SMS API on port 0 (the shape ``bots/sms`` speaks): keeps what it was sent."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["FakeSms"]


@dataclass
class FakeSms:
    token: str = "sms-token"
    sent: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0
    _runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application(client_max_size=16 * 1024)
        app.router.add_post("/v1/messages", self._send)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}/v1/messages"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _send(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not hmac.compare_digest(auth.encode(), f"Bearer {self.token}".encode()):
            return web.json_response({"error": "unauthorized"}, status=401)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response({"error": "unavailable"}, status=503)
        body = await request.json()
        if not isinstance(body, dict) or not {"from", "to", "text"} <= body.keys():
            return web.json_response({"error": "bad request"}, status=400)
        if not str(body["to"]).startswith("+") or len(str(body["text"])) > 90 * 3:
            return web.json_response({"error": "bad number or text"}, status=400)
        self.sent.append(body)
        return web.json_response({"id": f"m{len(self.sent)}"}, status=202)

    def last_code(self, to: str) -> str:
        import re

        for message in reversed(self.sent):
            if message["to"] == to:
                found = re.search(r"\b(\d{6})\b", message["text"])
                assert found
                return found.group(1)
        raise AssertionError(f"nothing sent to {to}")
