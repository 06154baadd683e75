"""A fake forum speaking docs/forum-openapi.yaml on port 0: idempotent writes, faults, webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientSession, web

__all__ = ["FakeForum", "ForumRecord"]


@dataclass
class ForumRecord:
    """One proposal as the forum stores it."""

    id: str
    external_ref: str
    title: str
    body: str
    category: str
    region: str | None
    author_ref: str
    status: str = "received"
    version: int = 1
    supports: list[str] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class FakeForum:
    """``await start()`` → base URL. Faults: ``go_down``/``come_up``, ``fail_next``, ``delay``."""

    def __init__(
        self, *, token: str = "forum-token", webhook_secret: str | None = None,
        webhook_url: str | None = None,
    ) -> None:
        self.token = token
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.proposals: dict[str, ForumRecord] = {}
        self.writes: list[tuple[str, str, str]] = []  # (op, external_ref, detail), once per key
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, key), every call
        self.events: list[dict[str, Any]] = []
        self.faults: deque[str] = deque()
        self.delay = 0.0
        self.stalled = asyncio.Event()
        self.release = asyncio.Event()
        self._keys: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self._seq = 0
        self.down = False
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port = 0

    # --- lifecycle -----------------------------------------------------------------
    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_post("/proposals", self._create)
        app.router.add_get("/proposals/{id}", self._get)
        app.router.add_post("/proposals/{id}/feedback", self._feedback)
        app.router.add_post("/proposals/{id}/supports", self._support)
        app.router.add_post("/proposals/{id}/withdraw", self._withdraw)
        app.router.add_post("/proposals/{id}/anonymise", self._anonymise)
        app.router.add_post("/proposals/{id}/status", self._status)
        app.router.add_get("/changes", self._changes)
        return app

    async def start(self) -> str:
        self._runner = web.AppRunner(
            self._app(), handle_signals=False, shutdown_timeout=0.2, access_log=None
        )
        await self._runner.setup()
        await self.come_up()
        return self.url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def come_up(self) -> None:
        assert self._runner is not None
        self.down = False
        self._site = web.TCPSite(
            self._runner, "127.0.0.1", self.port, reuse_address=True
        )
        await self._site.start()
        if not self.port:
            self.port = self._runner.addresses[0][1]

    async def go_down(self) -> None:
        """Stop listening and drop open connections until ``come_up``."""
        self.down = True
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def fail_next(self, *kinds: str) -> None:
        """Queue faults for the next writes: ``500``, ``timeout`` (done, answer late),
        ``stall`` (done, answer only after ``release``), ``slow``."""
        self.faults.extend(kinds)

    # --- plumbing ------------------------------------------------------------------
    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.down:  # a kept-alive connection: hang up like a dead server
            if request.transport is not None:
                request.transport.close()
            raise ConnectionResetError("forum is down")
        key = request.headers.get("Idempotency-Key")
        self.requests.append((request.method, request.path, key))
        expected = f"Bearer {self.token}"
        if not hmac.compare_digest(request.headers.get("Authorization", ""), expected):
            return web.json_response({"error": "unauthorized"}, status=401)
        if self.delay:
            await asyncio.sleep(self.delay)
        return await handler(request)

    async def _write(self, request: web.Request, op: Any) -> web.Response:
        """Idempotency-Key handling around one write: a repeated key answers the first result."""
        key = request.headers.get("Idempotency-Key")
        if not key:
            return web.json_response({"error": "idempotency_key_required"}, status=400)
        raw = await request.read()
        fingerprint = hashlib.sha256(request.path.encode() + b"|" + raw).hexdigest()
        fault = self.faults.popleft() if self.faults else None
        if fault == "500":
            return web.json_response({"error": "internal"}, status=500)
        if key in self._keys:
            seen, status, body = self._keys[key]
            if seen != fingerprint:
                return web.json_response({"error": "idempotency_key_reused"}, status=422)
            return web.json_response(body, status=200, headers={"Idempotent-Replayed": "true"})
        try:
            payload = json.loads(raw or b"{}")
        except ValueError:
            return web.json_response({"error": "bad_json"}, status=400)
        status, body = await op(request, payload)
        if status < 400:
            self._keys[key] = (fingerprint, status, body)
        if fault == "timeout":
            await asyncio.sleep(30)  # done, but the answer never arrives in time
        if fault == "slow":
            await asyncio.sleep(0.2)
        if fault == "stall":
            self.stalled.set()
            await self.release.wait()
        return web.json_response(body, status=status)

    def _record(self, request: web.Request) -> ForumRecord | None:
        return self.proposals.get(request.match_info["id"])

    def _event(self, record: ForumRecord, kind: str, **data: Any) -> dict[str, Any]:
        record.version += 1
        self._seq += 1
        event = {
            "id": f"evt_{self._seq}",
            "type": kind,
            "proposal_id": record.id,
            "external_ref": record.external_ref,
            "version": record.version,
            "occurred_at": _now(),
            **{k: v for k, v in data.items() if v is not None},
        }
        self.events.append(event)
        if kind == "status_changed":
            record.history.append(event)
        return event

    # --- the contract ----------------------------------------------------------------
    async def _create(self, request: web.Request) -> web.Response:
        async def op(_req: web.Request, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            missing = [k for k in ("external_ref", "title", "body", "category", "author_ref")
                       if not p.get(k)]
            if missing:
                return 400, {"error": "missing", "fields": missing}
            forum_id = f"F-{len(self.proposals) + 1}"
            record = ForumRecord(
                id=forum_id, external_ref=p["external_ref"], title=p["title"], body=p["body"],
                category=p["category"], region=p.get("region"), author_ref=p["author_ref"],
            )
            self.proposals[forum_id] = record
            self.writes.append(("create", record.external_ref, forum_id))
            return 201, self._proposal_json(record)

        return await self._write(request, op)

    async def _feedback(self, request: web.Request) -> web.Response:
        async def op(req: web.Request, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            record = self._record(req)
            if record is None:
                return 404, {"error": "not_found"}
            if not p.get("body") or not p.get("author_ref"):
                return 400, {"error": "missing"}
            comment_id = f"C-{sum(len(r.comments) for r in self.proposals.values()) + 1}"
            record.comments.append({"id": comment_id, "body": p["body"],
                                    "author_ref": p["author_ref"]})
            self.writes.append(("feedback", record.external_ref, p["body"]))
            self._event(record, "comment_added", comment_id=comment_id, body=p["body"],
                        author_ref=p["author_ref"])
            return 201, {"id": comment_id, "proposal_id": record.id}

        return await self._write(request, op)

    async def _support(self, request: web.Request) -> web.Response:
        async def op(req: web.Request, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            record = self._record(req)
            if record is None:
                return 404, {"error": "not_found"}
            if not p.get("author_ref"):
                return 400, {"error": "missing"}
            if p["author_ref"] not in record.supports:
                record.supports.append(p["author_ref"])
            self.writes.append(("support", record.external_ref, p["author_ref"]))
            return 201, {"proposal_id": record.id, "support_count": len(record.supports)}

        return await self._write(request, op)

    async def _withdraw(self, request: web.Request) -> web.Response:
        async def op(req: web.Request, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            record = self._record(req)
            if record is None:
                return 404, {"error": "not_found"}
            if p.get("author_ref") != record.author_ref:
                return 403, {"error": "not_the_author"}
            record.status = "withdrawn"
            self.writes.append(("withdraw", record.external_ref, ""))
            self._event(record, "status_changed", status="withdrawn")
            return 200, self._proposal_json(record)

        return await self._write(request, op)

    async def _status(self, request: web.Request) -> web.Response:
        """An official's status change from Gongnon: compare-and-set on ``from_status``."""

        async def op(req: web.Request, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            record = self._record(req)
            if record is None:
                return 404, {"error": "not_found"}
            if not p.get("status"):
                return 400, {"error": "missing", "fields": ["status"]}
            if p.get("from_status") != record.status:
                return 409, {"error": "conflict",
                             "current": {"status": record.status, "version": record.version}}
            record.status = str(p["status"])
            self.writes.append(("status", record.external_ref, record.status))
            event = self._event(record, "status_changed", status=record.status,
                                reason=p.get("reason") or None,
                                expected_date=p.get("expected_date"))
            return 200, {"id": record.id, "status": record.status, "version": event["version"]}

        return await self._write(request, op)

    async def _anonymise(self, request: web.Request) -> web.Response:
        async def op(req: web.Request, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            record = self._record(req)
            if record is None:
                return 404, {"error": "not_found"}
            ref = p.get("author_ref")
            if not ref:
                return 400, {"error": "missing"}
            anonymous = "gongnon:anonymous"
            if record.author_ref == ref:
                record.author_ref = anonymous
            record.supports = [anonymous if s == ref else s for s in record.supports]
            for comment in record.comments:
                if comment.get("author_ref") == ref:
                    comment["author_ref"] = anonymous
            self.writes.append(("anonymise", record.external_ref, ref))
            return 200, self._proposal_json(record)

        return await self._write(request, op)

    def _proposal_json(self, record: ForumRecord) -> dict[str, Any]:
        return {
            "id": record.id, "external_ref": record.external_ref, "status": record.status,
            "version": record.version, "support_count": len(record.supports),
            "history": list(record.history),
        }

    async def _get(self, request: web.Request) -> web.Response:
        record = self._record(request)
        if record is None:
            return web.json_response({"error": "not_found"}, status=404)
        return web.json_response(self._proposal_json(record))

    async def _changes(self, request: web.Request) -> web.Response:
        try:
            start = int(request.query.get("cursor") or 0)
            limit = max(1, min(int(request.query.get("limit") or 100), 500))
        except ValueError:
            return web.json_response({"error": "bad_cursor"}, status=400)
        page = self.events[start:start + limit]
        end = start + len(page)
        return web.json_response(
            {"changes": page, "next_cursor": str(end), "has_more": end < len(self.events)}
        )

    # --- what officials do on the forum ----------------------------------------------
    def change_status(
        self, forum_id: str, status: str, reason: str = "", expected_date: str | None = None
    ) -> dict[str, Any]:
        record = self.proposals[forum_id]
        record.status = status
        return self._event(record, "status_changed", status=status, reason=reason or None,
                           expected_date=expected_date)

    def answer(self, forum_id: str, body: str) -> dict[str, Any]:
        record = self.proposals[forum_id]
        self._seq += 1
        return self._event(record, "answered", body=body, comment_id=f"A-{self._seq}")

    def comment(self, forum_id: str, body: str, author_ref: str = "forum:user-7") -> dict[str, Any]:
        record = self.proposals[forum_id]
        comment_id = f"C-{sum(len(r.comments) for r in self.proposals.values()) + 1}"
        record.comments.append({"id": comment_id, "body": body, "author_ref": author_ref})
        return self._event(record, "comment_added", comment_id=comment_id, body=body,
                           author_ref=author_ref)

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        assert self.webhook_secret is not None
        ts = str(int(time.time()) if timestamp is None else timestamp)
        mac = hmac.new(self.webhook_secret.encode(), ts.encode() + b"." + body, hashlib.sha256)
        return {"X-Gongnon-Timestamp": ts, "X-Gongnon-Signature": "v1=" + mac.hexdigest(),
                "Content-Type": "application/json"}

    async def deliver(
        self, event: dict[str, Any], *, times: int = 1, headers: dict[str, str] | None = None
    ) -> list[int]:
        """POST ``event`` to the webhook URL ``times`` times (the same signed bytes each time)."""
        assert self.webhook_url is not None
        body = json.dumps(event).encode()
        sent = headers if headers is not None else self.sign(body)
        statuses: list[int] = []
        async with ClientSession() as session:
            for _ in range(times):
                async with session.post(self.webhook_url, data=body, headers=sent) as resp:
                    statuses.append(resp.status)
        return statuses
