"""The web chat mount: the page at ``/``, the JSON API under ``/webchat`` and its SSE stream."""

from __future__ import annotations

import asyncio
import html
import json
import logging
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from bots.guard import client_address, descriptor_budget, networks
from bots.web.parse import (
    BadInput,
    clean_text,
    parse_json,
    parse_last_event_id,
    parse_message,
    parse_session,
)
from bots.web.render import error_body, render_replies, sse_event
from bots.web.sender import WebSender
from bots.web.streams import StreamCaps, StreamsFull
from conversations import Engine
from conversations.incoming import Command, Inbound, Incoming, Photo, Picked
from core.bootstrap import Core
from core.config import Settings
from core.domain.errors import DomainError
from core.i18n import LOCALES, catalog, normalise_locale, t
from core.limits import Limits
from core.webchat import CHANNEL, UploadRejected, WebChat, WebSession

__all__ = ["WebMount"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
JSON_MAX = 256 * 1024
RETRY_MS = 3000
UPLOAD_MIN_RATE = 64 * 1024  # bytes/s a photo upload is given time for
SESSION_HEADER = "X-Gongnon-Session"  # the upload's session, read before its body
LOCALE: web.RequestKey[str] = web.RequestKey("webchat_locale", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _json_response(data: Any, *, status: int = 200, headers: Any = None) -> web.Response:
    """JSON with Korean kept as UTF-8 rather than ``\\uXXXX`` escapes (half the bytes)."""
    return web.Response(
        text=json.dumps(data, ensure_ascii=False), status=status, headers=headers,
        content_type="application/json",
    )


def _page_texts(locale: str) -> dict[str, str]:
    prefix = "web.page."
    return {k[len(prefix) :]: v for k, v in catalog(locale).items() if k.startswith(prefix)}


class WebMount:
    """Serves the chat; ``start`` wires it to the core (sender, service) and the engine."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._chat: WebChat | None = None
        self._engine: Engine | None = None
        self._core: Core | None = None
        self._template: str | None = None
        self.trusted = networks(settings.trusted_proxies)
        budget = descriptor_budget(
            reserve=settings.web_fd_reserve, streams_max=settings.web_streams_max
        )
        self.streams = StreamCaps(
            per_session=settings.web_streams_per_session,
            per_address=settings.web_streams_per_address,
            total=budget.streams,
        )
        self._limits: Limits | None = None

    def __repr__(self) -> str:
        return "WebMount()"

    # --- wiring ------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self._guard("page", self.page))
        app.router.add_static("/webchat/static/", STATIC, name="webchat-static")
        app.router.add_post("/webchat/session", self._guard("session", self.session))
        app.router.add_post("/webchat/message", self._guard("message", self.message))
        app.router.add_post("/webchat/upload", self._guard("upload", self.upload))
        app.router.add_get("/webchat/events", self._guard("events", self.events))
        app.router.add_get("/webchat/files/{id}", self._guard("file", self.file))
        app.router.add_get("/webchat/mydata", self._guard("mydata", self.mydata))
        app.on_shutdown.append(self._on_shutdown)

    async def start(self, app: web.Application, core: Core, engine: Engine) -> None:
        self._chat = core.webchat
        self._engine = engine
        self._core = core
        self._limits = core.limits
        core.register_sender(WebSender(chat=self._chat))
        core.add_health("webstreams", self._stream_stats)

    async def stop(self, app: web.Application) -> None:
        if self._chat is not None:
            self._chat.close_streams()

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.stop(app)  # open streams end before the server waits for handlers

    async def _stream_stats(self) -> dict[str, Any]:
        return {"status": "ok", **self.streams.stats()}

    @property
    def chat(self) -> WebChat:
        if self._chat is None:
            raise web.HTTPServiceUnavailable()
        return self._chat

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise web.HTTPServiceUnavailable()
        return self._engine

    # --- the error boundary ----------------------------------------------------------
    def _guard(self, name: str, handler: Handler) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except BadInput as exc:
                text = t(exc.key, self._locale(request), **exc.params)
                response = self._error(request, exc.code, text, exc.status)
                if exc.retry_after is not None:
                    response.headers["Retry-After"] = str(exc.retry_after)
                return response
            except DomainError as exc:
                locale = self._locale(request)
                text = t(exc.key, locale, **exc.params_for(locale))
                return self._error(request, "rejected", text, 422)
            except web.HTTPException:
                raise
            except Exception as exc:
                # The traceback's frames only: exception messages may carry what people typed.
                log.error("webchat %s failed: %s\n%s", name, type(exc).__name__,
                          "".join(traceback.format_tb(exc.__traceback__)))
                text = t("web.error.generic", self._locale(request))
                return self._error(request, "generic", text, 500)

        return run

    def _error(self, request: web.Request, code: str, message: str, status: int) -> web.Response:
        return _json_response(error_body(code, message), status=status, headers=API_HEADERS)

    def _locale(self, request: web.Request) -> str:
        """The session's language when known, else the request's hint, else the default."""
        known = request.get(LOCALE)
        if isinstance(known, str):
            return known
        hint = request.query.get("lang") or request.headers.get("Accept-Language") or ""
        return normalise_locale(hint.split(",")[0].strip(), self.settings.default_locale)

    # --- helpers -----------------------------------------------------------------------
    async def _json(self, request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
        if request.content_length is not None and request.content_length > JSON_MAX:
            raise BadInput("too_long", status=413, max=JSON_MAX, length=request.content_length)
        raw = await self._timed(request.read())
        if len(raw) > JSON_MAX:
            raise BadInput("too_long", status=413, max=JSON_MAX, length=len(raw))
        data = parse_json(raw, allow_empty=allow_empty)
        locale = data.get("locale")
        if isinstance(locale, str) and locale in LOCALES:
            request[LOCALE] = locale
        return data

    async def _timed(self, read: Awaitable[Any], *, at_least: float = 0.0) -> Any:
        """A body read that a slow client cannot stretch past ``web_body_timeout_seconds``
        (or ``at_least`` seconds, for a photo on a slow line)."""
        try:
            async with asyncio.timeout(max(at_least, self.settings.web_body_timeout_seconds)):
                return await read
        except TimeoutError:
            raise BadInput("slow_body", status=408) from None

    async def _session_for(self, request: web.Request, token: str | None) -> WebSession:
        if not token:
            raise BadInput("missing_session")
        found = await self.chat.find_session(token)
        if found is None:
            raise BadInput("unknown_session", status=401)
        request[LOCALE] = found.locale
        return found

    async def _turn(self, web_session: WebSession, payload: Incoming) -> list[dict[str, Any]]:
        inbound = Inbound(
            channel=CHANNEL,
            user_id=web_session.id,
            address=web_session.address,
            payload=payload,
            locale=web_session.locale,
        )
        replies = await self.engine.handle(inbound)
        await self.chat.touch(web_session)
        return render_replies(replies)

    # --- the page ------------------------------------------------------------------------
    async def page(self, request: web.Request) -> web.StreamResponse:
        locale = normalise_locale(request.query.get("lang"), self.settings.default_locale)
        if self._template is None:
            self._template = await asyncio.to_thread(
                (STATIC / "index.html").read_text, encoding="utf-8"
            )
        texts = {loc: _page_texts(loc) for loc in LOCALES}
        body = self._template
        for key, value in texts[locale].items():
            body = body.replace("{{" + key + "}}", html.escape(value))
        blob = json.dumps(texts, ensure_ascii=False).replace("<", "\\u003c")
        body = body.replace("{{lang}}", locale).replace("{{texts_json}}", blob)
        return web.Response(text=body, content_type="text/html", headers=PAGE_HEADERS)

    # --- the JSON API --------------------------------------------------------------------
    async def session(self, request: web.Request) -> web.StreamResponse:
        """Open (or resume) a session and answer with the greeting."""
        req = parse_session(await self._json(request, allow_empty=True))
        locale = req.locale if req.locale in LOCALES else None
        if req.token:
            token = req.token
            web_session = await self._session_for(request, token)
        else:
            hint = locale or self._locale(request)
            if self._limits is not None:
                room = await self._limits.new_session(client_address(request, self.trusted))
                if not room.allowed:
                    request[LOCALE] = normalise_locale(hint, self.settings.default_locale)
                    code = "sessions_busy" if room.everyone else "too_many_sessions"
                    raise BadInput(code, status=429, retry_after=room.wait)
            token, web_session = await self.chat.open_session(locale=hint)
            request[LOCALE] = web_session.locale
        replies: list[dict[str, Any]] = []
        switched = bool(locale and locale != web_session.locale)
        if locale and switched:
            # The engine's language flow stores the choice and answers in the new language.
            web_session = await self.chat.set_locale(web_session, locale)
            request[LOCALE] = locale
            replies += await self._turn(web_session, Picked(f"lang:{locale}"))
        if not req.token or req.start or (req.greet and not switched):
            replies += await self._turn(web_session, Command("start", req.start))
        return _json_response(
            {"session": token, "locale": web_session.locale, "replies": replies},
            headers=API_HEADERS,
        )

    async def message(self, request: web.Request) -> web.StreamResponse:
        data = await self._json(request)
        token = data.get("session")
        # The session first: its language is the language of any complaint about the rest.
        web_session = await self._session_for(request, token if isinstance(token, str) else None)
        req = parse_message(data)
        replies = await self._turn(web_session, req.payload)
        return _json_response({"replies": replies}, headers=API_HEADERS)

    async def upload(self, request: web.Request) -> web.StreamResponse:
        """A photo (multipart: ``file``, optional ``caption``) for the conversation.

        Nothing of the body is read before the session (``X-Gongnon-Session``; or a first
        ``session`` part, for older pages) is known, the conversation is at a step that asks for
        a photo (else 409) and the person's quota has room; the size is checked while the file
        streams in. Only a re-encoded copy is kept (``WebChat.save_upload``).
        """
        if not request.content_type.startswith("multipart/"):
            raise BadInput("upload_missing")
        limit = self.chat.upload_max_bytes
        max_mb = round(limit / 1024 / 1024, 1)
        reader = await request.multipart()
        token = request.headers.get(SESSION_HEADER)
        if token is None:
            first = await self._timed(reader.next())
            if not isinstance(first, BodyPartReader) or first.name != "session":
                raise BadInput("missing_session")
            token = (await self._timed(self._read_capped(first, 300))).decode("utf-8", "replace")
        web_session = await self._session_for(request, token)
        await self._photo_expected(web_session)
        if request.content_length is not None and request.content_length > limit + 64 * 1024:
            raise BadInput("upload_too_large", status=413, max_mb=max_mb)
        try:
            await self.chat.check_quota(web_session.id)
            # A photo at the largest size still arrives over a slow mobile line (64 KiB/s).
            fields, data = await self._timed(
                self._parts(reader, limit), at_least=limit / UPLOAD_MIN_RATE
            )
            if not data:
                raise BadInput("upload_missing")
            ref = await self.chat.save_upload(web_session, data)
        except UploadRejected as exc:
            status = {"too_large": 413, "quota": 413}.get(exc.code, 415)
            raise BadInput(f"upload_{exc.code}", status=status, max_mb=max_mb) from exc
        caption = clean_text(fields.get("caption", "")).strip()[:1000] or None
        replies = await self._turn(web_session, Photo(ref, caption))
        return _json_response({"replies": replies, "ref": ref}, headers=API_HEADERS)

    async def _photo_expected(self, web_session: WebSession) -> None:
        """409 unless the person's conversation is at a step that asks for a photo."""
        if not await self.engine.accepts_photo(CHANNEL, web_session.id):
            raise BadInput("upload_unexpected", status=409)

    async def _parts(self, reader: Any, limit: int) -> tuple[dict[str, str], bytes | None]:
        fields: dict[str, str] = {}
        data: bytes | None = None
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            name = part.name or ""
            if name == "file" and data is None:
                data = await self._read_capped(part, limit)
            elif name == "caption" and name not in fields:
                fields[name] = (await self._read_capped(part, 6000)).decode("utf-8", "replace")
            else:
                await part.release()
        return fields, data

    async def _read_capped(self, part: Any, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while chunk := await part.read_chunk(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise BadInput("upload_too_large", status=413,
                               max_mb=round(limit / 1024 / 1024, 1))
            chunks.append(chunk)
        return b"".join(chunks)

    async def file(self, request: web.Request) -> web.StreamResponse:
        """An uploaded photo, to the session that uploaded it only."""
        web_session = await self._session_for(request, request.query.get("session"))
        found = await self.chat.upload(f"{CHANNEL}:{request.match_info['id']}")
        if found is None or found[2] != web_session.id or not found[0].is_file():
            raise BadInput("not_found", status=404)
        path, content_type, _owner = found
        return web.FileResponse(path, headers={"Content-Type": content_type, **API_HEADERS})

    async def mydata(self, request: web.Request) -> web.StreamResponse:
        """"My data" as a JSON file, made now, for the person behind this session only."""
        web_session = await self._session_for(request, request.query.get("session"))
        core = self._core
        if core is None:
            raise web.HTTPServiceUnavailable()
        known = await core.views.identity(CHANNEL, web_session.id)
        raw = await core.privacy.download_of(known.person_id) if known is not None else None
        if raw is None:
            raise BadInput("not_found", status=404)
        return web.Response(
            body=raw,
            content_type="application/json",
            charset="utf-8",
            headers={
                **API_HEADERS,
                "Content-Disposition": 'attachment; filename="gongnon-mydata.json"',
            },
        )

    # --- server-sent events ----------------------------------------------------------------
    async def events(self, request: web.Request) -> web.StreamResponse:
        """Pushed messages, oldest first, resumable with ``Last-Event-ID`` (or ``?after=``)."""
        web_session = await self._session_for(request, request.query.get("session"))
        cursor = parse_last_event_id(
            request.headers.get("Last-Event-ID"), request.query.get("after")
        )
        if cursor is None:
            cursor = web_session.delivered_up_to
        try:
            with self.streams.hold(web_session.id, client_address(request, self.trusted)):
                return await self._stream(request, web_session, cursor)
        except StreamsFull as exc:
            raise BadInput("too_many_streams", status=429, retry_after=exc.retry_after) from None

    async def _stream(
        self, request: web.Request, web_session: WebSession, cursor: int
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
                "X-Content-Type-Options": "nosniff",
            }
        )
        await response.prepare(request)
        try:
            await response.write(f"retry: {RETRY_MS}\n: connected\n\n".encode())
            await self._pump(request, response, web_session.address, cursor)
        except ConnectionError:
            pass  # the browser went away; it resumes from its Last-Event-ID
        except Exception as exc:  # noqa: BLE001 - one line, never a traceback per stream
            log.warning("webchat stream ended: %s", type(exc).__name__)
        return response

    async def _pump(
        self, request: web.Request, response: web.StreamResponse, address: str, cursor: int
    ) -> None:
        chat = self.chat
        loop = asyncio.get_running_loop()
        heartbeat = self.settings.web_sse_heartbeat_seconds
        poll = self.settings.web_sse_poll_seconds
        last_write = loop.time()
        woken = True
        while not chat.closing:
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            # The inbox is read when woken (a push here, or the process's poller saw one
            # elsewhere) and at each heartbeat: not every stream every ``poll`` seconds.
            items = await chat.items_after(address, cursor) if woken else []
            for item in items:
                await response.write(sse_event(item.id, [item.reply]))
                cursor = item.id
            if items:
                # Shielded: a browser leaving right after reading must not undo the record.
                await asyncio.shield(chat.mark_delivered(address, cursor))
                last_write = loop.time()
                continue
            idle = loop.time() - last_write
            if idle >= heartbeat:
                await response.write(b": ping\n\n")
                last_write = loop.time()
                idle = 0.0
            woken = await chat.wait(address, seconds=max(0.05, heartbeat - idle), poll=poll)
            woken = woken or loop.time() - last_write >= heartbeat
