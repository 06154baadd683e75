"""A fake Slack Web API (aiohttp on port 0) and signed request builders for Slack's callbacks.

It answers ``/api/<method>`` the way Slack does (arguments from the query string, a form body or
a JSON body; ``Authorization: Bearer``), checks Block Kit limits (≤ 50 blocks, section text ≤
3000 characters), implements ``files_upload_v2`` (``files.getUploadURLExternal`` returning an
upload URL on the fake itself, the upload POST, ``files.completeUploadExternal``), records
``response_url`` posts, records every call, and can answer 429 with ``Retry-After`` or 5xx.

Use::

    async with FakeSlack() as slack:
        settings = ...(slack_api_url=slack.api_url)
        ...
        posts = slack.calls_of("chat.postMessage")
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = [
    "Call",
    "FakeSlack",
    "block_actions",
    "event_callback",
    "sign",
    "slash_command",
    "view_submission",
]

TOKEN = "xoxb-test-token"  # noqa: S105
SECRET = "test-signing-secret"  # noqa: S105


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    args: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class _Failure:
    status: int
    retry_after: int | None
    error: str
    after: int = 0  # successful calls to let through first


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class FakeSlack:
    def __init__(self, *, token: str = TOKEN, bot_user_id: str = "UBOT") -> None:
        self.token = token
        self.bot_user_id = bot_user_id
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) → message
        self.uploads: dict[str, bytes] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self._failures: dict[str, list[_Failure]] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.root = ""

    # --- lifecycle ---------------------------------------------------------------
    async def __aenter__(self) -> FakeSlack:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{name}", self._response_url)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.root = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"{self.root}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.root}/response/{name}"

    # --- control and inspection ----------------------------------------------------
    def fail(self, method: str, *, status: int = 429, retry_after: int | None = 0,
             times: int = 1, error: str = "ratelimited", after: int = 0) -> None:
        """After ``after`` good calls, the next ``times`` calls of ``method`` answer ``status``
        (429 with Retry-After)."""
        self._failures.setdefault(method, []).extend(
            _Failure(status, retry_after, error, after if i == 0 else 0) for i in range(times)
        )

    def calls_of(self, method: str) -> list[dict[str, Any]]:
        return [c.args for c in self.calls if c.method == method]

    async def wait_for(
        self, method: str, count: int = 1, within: float = 5.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + within
        while len(self.calls_of(method)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"expected {count} {method} calls, got {len(self.calls_of(method))}: "
                    f"{[c.method for c in self.calls]}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass
        return self.calls_of(method)

    def _record(self, method: str, args: dict[str, Any]) -> None:
        self.calls.append(Call(method, args))
        self._changed.set()

    # --- the Web API -------------------------------------------------------------
    async def _args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            args.update(await request.json())
        elif request.can_read_body:
            args.update(dict(await request.post()))
        return {k: _decode(v) for k, v in args.items()}

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._args(request)
        self._record(method, args)
        failures = self._failures.get(method)
        if failures and failures[0].after > 0:
            failures[0].after -= 1
        elif failures:
            failure = failures.pop(0)
            retry = failure.retry_after
            headers = {} if retry is None else {"Retry-After": str(retry)}
            return web.json_response({"ok": False, "error": failure.error}, status=failure.status,
                                     headers=headers)
        auth = request.headers.get("Authorization", "")
        if not hmac.compare_digest(auth, f"Bearer {self.token}"):
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        return web.json_response(handler(args))

    def _ts(self) -> str:
        n = next(self._ids)
        return f"{1_780_000_000 + n}.{n:06d}"

    @staticmethod
    def _blocks_problem(args: dict[str, Any]) -> str | None:
        blocks = args.get("blocks")
        if blocks is None:
            return None if args.get("text") else "no_text"
        if not isinstance(blocks, list) or len(blocks) > 50:
            return "invalid_blocks"
        for block in blocks:
            text = (block.get("text") or {}).get("text", "")
            if block.get("type") == "section" and len(text) > 3000:
                return "invalid_blocks"
            if block.get("type") == "header" and len(text) > 150:
                return "invalid_blocks"
            if block.get("type") == "actions" and len(block.get("elements", [])) > 25:
                return "invalid_blocks"
        return None

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://gongnon.slack.com/", "team": "Gongnon",
                "user": "gongnon", "team_id": "T0001", "user_id": self.bot_user_id,
                "bot_id": "B0001", "is_enterprise_install": False}

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if problem := self._blocks_problem(args):
            return {"ok": False, "error": problem}
        ts = self._ts()
        message = {"type": "message", "text": args.get("text", ""), "blocks": args.get("blocks"),
                   "ts": ts, "thread_ts": args.get("thread_ts"), "bot_id": "B0001"}
        self.messages[(str(channel), ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        key = (str(args.get("channel")), str(args.get("ts")))
        if key not in self.messages:
            return {"ok": False, "error": "message_not_found"}
        if problem := self._blocks_problem(args):
            return {"ok": False, "error": problem}
        self.messages[key].update(text=args.get("text", ""), blocks=args.get("blocks"))
        return {"ok": True, "channel": key[0], "ts": key[1], "text": args.get("text", "")}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel") or not args.get("user"):
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "message_ts": self._ts()}

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if not args.get("trigger_id") or not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        if len(view.get("title", {}).get("text", "")) > 24 or len(view.get("blocks", [])) > 100:
            return {"ok": False, "error": "invalid_arguments"}
        view_id = f"V{next(self._ids):08d}"
        stored = {**view, "id": view_id, "hash": f"h{view_id}", "state": {"values": {}}}
        self.views[view_id] = stored
        return {"ok": True, "view": stored}

    def _m_views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id = str(args.get("view_id", ""))
        if view_id not in self.views or not isinstance(args.get("view"), dict):
            return {"ok": False, "error": "not_found"}
        self.views[view_id] = {**self.views[view_id], **args["view"]}
        return {"ok": True, "view": self.views[view_id]}

    def _m_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("filename") or not str(args.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ids):08d}"
        self.uploads.setdefault(file_id, b"")
        return {"ok": True, "upload_url": f"{self.root}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args.get("files")
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        out = []
        for item in files:
            data = self.uploads.get(str(item.get("id")))
            if not data:
                return {"ok": False, "error": "file_not_found"}
            out.append({"id": item["id"], "title": item.get("title"), "size": len(data),
                        "mimetype": "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "",
                        "channels": [args["channel_id"]] if args.get("channel_id") else []})
        return {"ok": True, "files": out}

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if file_id not in self.uploads:
            return web.Response(status=404, text="unknown upload")
        data = await request.read()
        self.uploads[file_id] = data
        self._record("upload", {"file_id": file_id, "size": len(data)})
        return web.Response(text=f"OK - {len(data)}")

    async def _response_url(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self._record("response_url", {"name": request.match_info["name"], **payload})
        return web.Response(text="ok")


# --- signed requests from "Slack" ----------------------------------------------------
def sign(body: str, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 signature headers for ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def slash_command(*, text: str, user: str, response_url: str, channel: str = "CTRIAGE",
                  trigger_id: str = "trig.1") -> tuple[str, str]:
    """(form body, content type) of a ``/gongnon`` invocation."""
    form = {
        "token": "legacy", "team_id": "T0001", "team_domain": "gongnon", "channel_id": channel,
        "channel_name": "triage", "user_id": user, "user_name": "official", "command": "/gongnon",
        "text": text, "api_app_id": "A0001", "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": trigger_id,
    }
    return urllib.parse.urlencode(form), "application/x-www-form-urlencoded"


def _interactive(payload: dict[str, Any]) -> tuple[str, str]:
    body = urllib.parse.urlencode({"payload": json.dumps(payload, ensure_ascii=False)})
    return body, "application/x-www-form-urlencoded"


def block_actions(*, action_id: str, value: str, user: str, channel: str = "CTRIAGE",
                  message_ts: str = "1780000001.000001", response_url: str = "",
                  trigger_id: str = "trig.2") -> tuple[str, str]:
    return _interactive({
        "type": "block_actions",
        "user": {"id": user, "username": "official", "name": "official", "team_id": "T0001"},
        "api_app_id": "A0001", "token": "legacy",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                      "is_ephemeral": False},
        "trigger_id": trigger_id,
        "team": {"id": "T0001", "domain": "gongnon"},
        "channel": {"id": channel, "name": "triage"},
        "message": {"type": "message", "ts": message_ts, "text": "..."},
        "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": f"triage:{value}", "value": value,
                     "type": "button", "text": {"type": "plain_text", "text": "..."},
                     "action_ts": "1780000002.000001"}],
    })


def view_submission(*, view: dict[str, Any], user: str, values: dict[str, dict[str, Any]],
                    view_id: str | None = None) -> tuple[str, str]:
    """A modal (as opened) submitted with ``values``: ``{block_id: {"value": {...}}}``."""
    submitted = {**view, "id": view_id or view.get("id", "V00000001"),
                 "state": {"values": values}, "team_id": "T0001", "app_id": "A0001"}
    return _interactive({
        "type": "view_submission", "team": {"id": "T0001", "domain": "gongnon"},
        "user": {"id": user, "username": "official", "name": "official", "team_id": "T0001"},
        "api_app_id": "A0001", "token": "legacy", "trigger_id": "trig.3", "view": submitted,
        "response_urls": [],
    })


def event_callback(*, event: dict[str, Any], event_id: str) -> tuple[str, str]:
    body = {
        "token": "legacy", "team_id": "T0001", "api_app_id": "A0001", "event": event,
        "type": "event_callback", "event_id": event_id, "event_time": int(time.time()),
        "authorizations": [{"team_id": "T0001", "user_id": "UBOT", "is_bot": True}],
    }
    return json.dumps(body, ensure_ascii=False), "application/json"
