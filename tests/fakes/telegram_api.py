"""A fake Telegram Bot API: an aiohttp app on port 0 speaking the real wire format.

It answers ``/bot<token>/<method>`` (form-encoded or multipart bodies, as python-telegram-bot and
aiogram send them) with Bot API-shaped JSON built from PTB objects' ``to_dict()``, serves files at
``/file/bot<token>/<path>``, records every call, long-polls ``getUpdates``, delivers updates to a
registered webhook, parses ``parse_mode=HTML`` like Telegram does (bad markup is a 400 "can't parse
entities"), and can inject 429/403/5xx answers or enforce rate limits (``TelegramLimits``).

Use::

    async with FakeTelegram(limits=TelegramLimits(global_per_s=30, per_chat_per_s=1)) as tg:
        bot_base_url = tg.api_base       # "http://127.0.0.1:PORT/bot"
        ...
        assert tg.violations == 0
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import itertools
import json
import math
import re
import secrets
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web
from telegram import (
    CallbackQuery,
    Chat,
    ChatMemberBanned,
    ChatMemberMember,
    ChatMemberUpdated,
    Document,
    File,
    InlineKeyboardMarkup,
    Location,
    Message,
    MessageEntity,
    PhotoSize,
    Sticker,
    User,
    Voice,
    WebhookInfo,
)

__all__ = [
    "Call",
    "FakeTelegram",
    "SentMessage",
    "TelegramLimits",
    "parse_html",
    "utf16_len",
]

# Methods that put a message in a chat: these are rate-limited and counted in ``sent``.
SEND_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "sendlocation",
        "editmessagetext",
        "editmessagecaption",
        "editmessagereplymarkup",
        "copymessage",
        "forwardmessage",
    }
)
# Parameters the Bot API takes as JSON-serialised objects inside a form field.
JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "allowed_updates",
        "commands",
        "scope",
        "link_preview_options",
        "reply_parameters",
        "media",
    }
)
INT_FIELDS = frozenset(
    {"message_id", "offset", "limit", "timeout", "max_connections", "cache_time", "file_size"}
)
BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "drop_pending_updates",
        "show_alert",
        "disable_web_page_preview",
        "allow_sending_without_reply",
        "has_spoiler",
    }
)
TEXT_MAX = 4096
CAPTION_MAX = 1024
CALLBACK_DATA_MAX = 64

# --- Telegram's HTML parse mode -----------------------------------------------------

_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)>")
_ENTITY_RE = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
_HREF_RE = re.compile(r"""\s*href\s*=\s*(?:"([^"]*)"|'([^']*)')\s*$""")


class ParseError(ValueError):
    """What Telegram answers as ``400 Bad Request: can't parse entities: …``."""


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: how Telegram counts text and entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML → (plain text, entities with UTF-16 offsets); raises ``ParseError``."""
    out: list[str] = []
    stack: list[tuple[str, int, str | None]] = []
    entities: list[dict[str, Any]] = []
    pos = 0
    length = 0  # UTF-16 units emitted so far
    while pos < len(source):
        ch = source[pos]
        if ch == "<":
            match = _TAG_RE.match(source, pos)
            if match is None:
                raise ParseError(f"Unexpected < at byte offset {pos}")
            closing, name, attrs = match.group(1), match.group(2).lower(), match.group(3)
            if name not in _TAGS:
                raise ParseError(f'Unsupported start tag "{name}" at byte offset {pos}')
            if closing:
                if not stack or stack[-1][0] != name:
                    raise ParseError(
                        f'Unmatched end tag at byte offset {pos}, expected "</{name}>"'
                    )
                open_name, start, url = stack.pop()
                if length > start:
                    entity: dict[str, Any] = {
                        "type": _TAGS[open_name],
                        "offset": start,
                        "length": length - start,
                    }
                    if url is not None:
                        entity["url"] = url
                    entities.append(entity)
            else:
                url = None
                if name == "a":
                    href = _HREF_RE.match(attrs or "")
                    if href is None:
                        raise ParseError(f"Can't find end of href attribute at byte offset {pos}")
                    url = html.unescape(href.group(1) or href.group(2) or "")
                elif name == "span" and "tg-spoiler" not in (attrs or ""):
                    raise ParseError(
                        f'Tag "span" must have class "tg-spoiler" at byte offset {pos}'
                    )
                stack.append((name, length, url))
            pos = match.end()
            continue
        if ch == "&":
            match = _ENTITY_RE.match(source, pos)
            if match is None:
                raise ParseError(f"Unsupported HTML entity at byte offset {pos}")
            text = html.unescape(match.group(0))
            pos = match.end()
        elif ch == ">":
            raise ParseError(f"Unexpected > at byte offset {pos}")
        else:
            text = ch
            pos += 1
        out.append(text)
        length += utf16_len(text)
    if stack:
        raise ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


# --- configuration and records ------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TelegramLimits:
    """Rate limits the fake enforces; beyond them it answers 429 and counts a violation.

    ``None`` turns a limit off. Windows are sliding: at most ``global_per_s`` message calls in any
    second, and ``per_chat_per_s`` per chat. ``slack_s`` forgives network jitter at the edge of a
    window. ``retry_after`` is the minimum the fake asks for (Telegram sends whole seconds).
    """

    global_per_s: float | None = 30
    per_chat_per_s: float | None = 1
    per_group_per_min: float | None = 20
    slack_s: float = 0.02
    retry_after: int = 1


@dataclass(frozen=True, slots=True)
class Call:
    """One request the fake received, decoded."""

    method: str  # as sent (camelCase)
    params: dict[str, Any]
    files: dict[str, bytes]
    at: float
    status: int


@dataclass(slots=True)
class SentMessage:
    """A message the bot put in a chat, as Telegram stores it after parsing."""

    chat_id: int
    message_id: int
    text: str  # plain text after entity parsing (or the caption)
    entities: list[dict[str, Any]]
    reply_markup: dict[str, Any] | None
    raw: str  # what the bot sent in ``text``/``caption``
    photo: bytes | str | None = None
    edits: int = 0
    document: bytes | None = None  # an uploaded file (sendDocument)
    file_name: str | None = None


@dataclass(slots=True)
class _Failure:
    status: int
    description: str
    retry_after: int | None
    methods: frozenset[str] | None


@dataclass(slots=True)
class _Window:
    size: float
    stamps: deque[float] = field(default_factory=deque)

    def count(self, now: float, slack: float) -> int:
        edge = now - self.size + slack
        while self.stamps and self.stamps[0] <= edge:
            self.stamps.popleft()
        return len(self.stamps)

    def wait(self, now: float) -> float:
        return max(0.0, self.stamps[0] + self.size - now) if self.stamps else 0.0


class _ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


# --- the fake -----------------------------------------------------------------------


class FakeTelegram:
    """The fake Bot API server. Start with ``async with`` (or ``start``/``close``)."""

    def __init__(
        self,
        *,
        token: str = "123456789:TEST-token_for-the-fake",  # noqa: S107 - fake
        limits: TelegramLimits | None = None,
        bot_id: int = 123456789,
        bot_username: str = "gongnon_test_bot",
        record: bool = True,
        latency: float = 0.0,
    ) -> None:
        self.token = token
        self.limits = limits
        self.bot = User(
            id=bot_id,
            first_name="공론",
            is_bot=True,
            username=bot_username,
            can_join_groups=True,
            can_read_all_group_messages=False,
            supports_inline_queries=False,
            can_connect_to_business=False,
            has_main_web_app=False,
        )
        self.record = record
        self.latency = latency
        self.calls: list[Call] = []
        self.messages: dict[tuple[int, int], SentMessage] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.callback_answers: list[dict[str, Any]] = []
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id → (file_path, content)
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.allowed_updates: list[str] | None = None
        # counters
        self.sent = 0
        self.rejected_429 = 0
        self.violations = 0
        self.requests = 0
        # internals
        self._failures: deque[_Failure] = deque()
        self._updates: deque[dict[str, Any]] = deque()
        # Fresh ids per fake (like a new bot), so claims kept in a shared Redis never collide.
        self._update_ids = itertools.count(secrets.randbelow(2**40) + 1_000_000)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._new_update = asyncio.Condition()
        self._global = _Window(1.0)
        self._per_chat: dict[int, _Window] = {}
        self._per_group: dict[int, _Window] = {}
        self._runner: web.AppRunner | None = None
        self._closing = False
        self._client: ClientSession | None = None
        self.root = ""

    # --- lifecycle ---------------------------------------------------------------
    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.root = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        self._closing = True  # long polls end now rather than at their timeout
        async with self._new_update:
            self._new_update.notify_all()
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def api_base(self) -> str:
        """For PTB's ``base_url`` (the token is appended)."""
        return f"{self.root}/bot"

    @property
    def file_base(self) -> str:
        return f"{self.root}/file/bot"

    # --- test controls -----------------------------------------------------------
    def fail_next(
        self,
        count: int = 1,
        *,
        status: int,
        description: str | None = None,
        retry_after: int | None = None,
        methods: Iterable[str] | None = SEND_METHODS,
    ) -> None:
        """Answer the next ``count`` matching calls with an error (429/403/5xx/400).

        ``methods`` (case-insensitive) limits which calls fail; ``None`` means any call.
        """
        if description is None:
            description = {
                429: f"Too Many Requests: retry after {retry_after or 1}",
                403: "Forbidden: bot was blocked by the user",
                400: "Bad Request: chat not found",
                500: "Internal Server Error",
                502: "Bad Gateway",
                503: "Service Unavailable",
            }.get(status, "Error")
        if status == 429 and retry_after is None:
            retry_after = 1
        only = frozenset(m.lower() for m in methods) if methods is not None else None
        for _ in range(count):
            self._failures.append(_Failure(status, description, retry_after, only))

    def inject_429(self, count: int = 1, *, retry_after: int = 1) -> None:
        self.fail_next(count, status=429, retry_after=retry_after)

    def inject_403(self, count: int = 1, *, description: str | None = None) -> None:
        self.fail_next(count, status=403, description=description)

    def inject_5xx(self, count: int = 1, *, status: int = 502) -> None:
        self.fail_next(count, status=status)

    def calls_to(self, method: str) -> list[Call]:
        wanted = method.lower()
        return [c for c in self.calls if c.method.lower() == wanted]

    def chat(self, chat_id: int | str) -> list[SentMessage]:
        """Messages in a chat, in order (edits update them in place)."""
        cid = int(chat_id)
        return [m for (c, _), m in sorted(self.messages.items()) if c == cid]

    def last(self, chat_id: int | str) -> SentMessage:
        return self.chat(chat_id)[-1]

    def add_file(self, content: bytes, *, name: str = "photo.jpg") -> str:
        """Store a file the 'user' uploaded; returns its file_id."""
        digest = hashlib.sha256(content).hexdigest()[:24]
        file_id = f"AgAC{digest}"
        self.files[file_id] = (f"photos/{digest}_{name}", content)
        return file_id

    @property
    def pending_updates(self) -> int:
        return len(self._updates)

    # --- building updates (as Telegram would send them) ----------------------------
    def _user(
        self, user_id: int, *, language_code: str | None = "ko", is_bot: bool = False
    ) -> User:
        return User(
            id=user_id,
            first_name=f"사용자{user_id % 1000}",
            is_bot=is_bot,
            language_code=language_code,
        )

    def _chat(self, chat_id: int, kind: str = Chat.PRIVATE) -> Chat:
        if kind == Chat.PRIVATE:
            return Chat(id=chat_id, type=kind, first_name=f"사용자{chat_id % 1000}")
        return Chat(id=chat_id, type=kind, title="테스트 그룹")

    def _next_message_id(self, chat_id: int) -> int:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        return next(counter)

    def message_update(
        self,
        user_id: int,
        *,
        text: str | None = None,
        chat_id: int | None = None,
        chat_type: str = Chat.PRIVATE,
        language_code: str | None = "ko",
        is_bot: bool = False,
        edited: bool = False,
        update_id: int | None = None,
        **content: Any,
    ) -> dict[str, Any]:
        """An update with a message (or ``edited_message``) from ``user_id``.

        ``content`` takes Message fields (``photo=[PhotoSize…]``, ``sticker=…``, ``location=…``).
        A text starting with ``/`` gets a ``bot_command`` entity like Telegram adds.
        """
        cid = chat_id if chat_id is not None else user_id
        entities = content.pop("entities", None)
        if text is not None and text.startswith("/") and entities is None:
            command = text.split()[0]
            entities = [MessageEntity(MessageEntity.BOT_COMMAND, 0, utf16_len(command))]
        message = Message(
            message_id=self._next_message_id(cid),
            date=datetime.now(UTC),
            chat=self._chat(cid, chat_type),
            from_user=self._user(user_id, language_code=language_code, is_bot=is_bot),
            text=text,
            entities=entities,
            edit_date=datetime.now(UTC) if edited else None,
            **content,
        )
        key = "edited_message" if edited else "message"
        uid = update_id if update_id is not None else next(self._update_ids)
        return {"update_id": uid, key: message.to_dict()}

    def photo_update(
        self, user_id: int, content: bytes, *, caption: str | None = None, **kw: Any
    ) -> dict[str, Any]:
        """A photo message; Telegram sends several sizes, the largest last."""
        file_id = self.add_file(content)
        sizes = [
            PhotoSize(f"{file_id}-s", f"u{file_id[-8:]}s", 90, 67, file_size=len(content) // 8),
            PhotoSize(f"{file_id}-m", f"u{file_id[-8:]}m", 320, 240, file_size=len(content) // 2),
            PhotoSize(file_id, f"u{file_id[-8:]}", 1280, 960, file_size=len(content)),
        ]
        return self.message_update(user_id, photo=sizes, caption=caption, **kw)

    def location_update(
        self, user_id: int, latitude: float, longitude: float, **kw: Any
    ) -> dict[str, Any]:
        return self.message_update(user_id, location=Location(longitude, latitude), **kw)

    def sticker_update(self, user_id: int, **kw: Any) -> dict[str, Any]:
        sticker = Sticker("CAACstk", "ustk", 512, 512, False, False, Sticker.REGULAR, emoji="👍")
        return self.message_update(user_id, sticker=sticker, **kw)

    def voice_update(self, user_id: int, **kw: Any) -> dict[str, Any]:
        return self.message_update(user_id, voice=Voice("AwACvoice", "uvoice", 3), **kw)

    def document_update(
        self, user_id: int, *, mime_type: str = "application/pdf", **kw: Any
    ) -> dict[str, Any]:
        file_id = self.add_file(b"%PDF-1.4 fake", name="doc.pdf")
        document = Document(
            file_id, f"u{file_id[-8:]}", file_name="제안서.pdf", mime_type=mime_type
        )
        return self.message_update(user_id, document=document, **kw)

    def channel_post_update(
        self, chat_id: int = -1001234567890, text: str = "공지"
    ) -> dict[str, Any]:
        message = Message(
            message_id=self._next_message_id(chat_id),
            date=datetime.now(UTC),
            chat=Chat(id=chat_id, type=Chat.CHANNEL, title="공지 채널"),
            text=text,
        )
        return {"update_id": next(self._update_ids), "channel_post": message.to_dict()}

    def callback_update(
        self,
        user_id: int,
        data: str,
        *,
        message_id: int | None = None,
        chat_id: int | None = None,
        language_code: str | None = "ko",
        update_id: int | None = None,
    ) -> dict[str, Any]:
        """A button press on the bot's message ``message_id`` (default: its last one)."""
        cid = chat_id if chat_id is not None else user_id
        if message_id is None:
            message_id = self.last(cid).message_id
        stored = self.messages.get((cid, message_id))
        message = Message(
            message_id=message_id,
            date=datetime.now(UTC),
            chat=self._chat(cid),
            from_user=self.bot,
            text=stored.text if stored else "",
            reply_markup=InlineKeyboardMarkup.de_json(stored.reply_markup, None)
            if stored and stored.reply_markup and "inline_keyboard" in stored.reply_markup
            else None,
        )
        uid = update_id if update_id is not None else next(self._update_ids)
        query = CallbackQuery(
            id=f"cq{uid}",
            from_user=self._user(user_id, language_code=language_code),
            chat_instance=f"ci{cid}",
            message=message,
            data=data,
        )
        return {"update_id": uid, "callback_query": query.to_dict()}

    def my_chat_member_update(self, user_id: int, *, status: str = "kicked") -> dict[str, Any]:
        """The user blocked (``kicked``) or unblocked (``member``) the bot in a private chat."""
        now = datetime.now(UTC)
        old = ChatMemberMember(self.bot) if status == "kicked" else ChatMemberBanned(self.bot, now)
        new = ChatMemberBanned(self.bot, now) if status == "kicked" else ChatMemberMember(self.bot)
        updated = ChatMemberUpdated(
            chat=self._chat(user_id),
            from_user=self._user(user_id),
            date=now,
            old_chat_member=old,
            new_chat_member=new,
        )
        return {"update_id": next(self._update_ids), "my_chat_member": updated.to_dict()}

    # --- feeding updates -----------------------------------------------------------
    async def push_update(self, update: Mapping[str, Any]) -> None:
        """Queue an update for ``getUpdates`` (polling)."""
        self._updates.append(dict(update))
        async with self._new_update:
            self._new_update.notify_all()

    async def deliver(self, update: Mapping[str, Any], *, secret: str | None = None) -> int:
        """POST an update to the registered webhook as Telegram does; returns the HTTP status."""
        if not self.webhook_url:
            raise RuntimeError("no webhook is set")
        headers = {"Content-Type": "application/json"}
        token = self.webhook_secret if secret is None else secret
        if token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = token
        if self._client is None:
            self._client = ClientSession(timeout=ClientTimeout(total=30))
        async with self._client.post(
            self.webhook_url, data=json.dumps(update), headers=headers
        ) as r:
            await r.read()
            return r.status

    # --- HTTP ------------------------------------------------------------------------
    async def _file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        path = request.match_info["path"]
        for file_path, content in self.files.values():
            if file_path == path:
                return web.Response(body=content, content_type="application/octet-stream")
        return _error(404, "Not Found")

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        params, files = await self._decode(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        lower = method.lower()
        try:
            failure = self._take_failure(lower)
            if failure is not None:
                raise _ApiError(
                    failure.status,
                    failure.description,
                    {"retry_after": failure.retry_after} if failure.retry_after else None,
                )
            if lower in SEND_METHODS:
                self._enforce_limits(params)
            handler = getattr(self, f"_m_{lower}", None)
            if handler is None:
                raise _ApiError(404, "Not Found")
            result = await handler(params, files)
        except _ApiError as exc:
            if exc.status == 429:
                self.rejected_429 += 1
            self._record(method, params, files, exc.status)
            return _error(exc.status, exc.description, exc.parameters)
        if lower in SEND_METHODS:
            self.sent += 1
        self._record(method, params, files, 200)
        return _ok(result)

    def _record(
        self, method: str, params: dict[str, Any], files: dict[str, bytes], status: int
    ) -> None:
        if self.record:
            self.calls.append(Call(method, params, files, time.monotonic(), status))

    async def _decode(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            body = await request.read()
            params = json.loads(body) if body else {}
            return params, files
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if part.filename is not None:  # type: ignore[union-attr]
                    files[part.name or ""] = bytes(await part.read())  # type: ignore[union-attr]
                    files[f"{part.name}#filename"] = str(part.filename).encode()  # type: ignore[union-attr]
                else:
                    params[part.name or ""] = self._coerce(part.name or "", await part.text())  # type: ignore[union-attr]
        else:
            form = await request.post()
            for key, value in form.items():
                params[key] = self._coerce(key, value if isinstance(value, str) else str(value))
        params.update({k: self._coerce(k, v) for k, v in request.query.items() if k not in params})
        return params, files

    @staticmethod
    def _coerce(name: str, value: str) -> Any:
        if name in JSON_FIELDS:
            try:
                return json.loads(value)
            except ValueError as exc:
                raise web.HTTPBadRequest(text=f"bad JSON in {name}") from exc
        if name in INT_FIELDS or name == "chat_id":
            try:
                return int(value)
            except ValueError:
                return value  # "@channelusername"
        if name in BOOL_FIELDS:
            return value.lower() == "true"
        if name == "latitude" or name == "longitude":
            return float(value)
        return value

    def _take_failure(self, method: str) -> _Failure | None:
        for index, failure in enumerate(self._failures):
            if failure.methods is None or method in failure.methods:
                del self._failures[index]
                return failure
        return None

    def _enforce_limits(self, params: dict[str, Any]) -> None:
        limits = self.limits
        if limits is None:
            return
        now = time.monotonic()
        chat_id = params.get("chat_id")
        checks: list[tuple[_Window, float]] = []
        if limits.global_per_s is not None:
            checks.append((self._global, limits.global_per_s))
        if isinstance(chat_id, int):
            if chat_id < 0 and limits.per_group_per_min is not None:
                window = self._per_group.setdefault(chat_id, _Window(60.0))
                checks.append((window, limits.per_group_per_min))
            elif chat_id > 0 and limits.per_chat_per_s is not None:
                window = self._per_chat.setdefault(chat_id, _Window(1.0))
                checks.append((window, limits.per_chat_per_s))
        for window, allowed in checks:
            if window.count(now, limits.slack_s) >= allowed:
                self.violations += 1
                wait = max(limits.retry_after, math.ceil(window.wait(now)))
                raise _ApiError(
                    429, f"Too Many Requests: retry after {wait}", {"retry_after": wait}
                )
        for window, _ in checks:
            window.stamps.append(now)

    # --- methods ---------------------------------------------------------------------
    def _chat_id(self, params: dict[str, Any]) -> int:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise _ApiError(400, "Bad Request: chat not found")
        return chat_id

    @staticmethod
    def _check_markup(markup: Any) -> None:
        if markup is None:
            return
        if not isinstance(markup, dict):
            raise _ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if not button.get("text"):
                    raise _ApiError(
                        400, "Bad Request: text buttons are unallowed in the inline keyboard"
                    )
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= CALLBACK_DATA_MAX:
                    raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        for row in markup.get("keyboard", []):
            for button in row:
                if not (button.get("text") if isinstance(button, dict) else button):
                    raise _ApiError(400, "Bad Request: keyboard button text is empty")

    @staticmethod
    def _parse_text(
        raw: str, parse_mode: str | None, limit: int, empty_ok: bool = False
    ) -> tuple[str, list[dict[str, Any]]]:
        if parse_mode is None:
            text, entities = raw, []
        elif parse_mode.upper() == "HTML":
            try:
                text, entities = parse_html(raw)
            except ParseError as exc:
                raise _ApiError(400, f"Bad Request: can't parse entities: {exc}") from exc
        else:
            raise _ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode} in the fake")
        stripped = text.strip()
        if not stripped and not empty_ok:
            raise _ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > limit:
            raise _ApiError(400, "Bad Request: message is too long")
        return text, entities

    def _message_dict(self, stored: SentMessage) -> dict[str, Any]:
        markup = (
            stored.reply_markup
            if stored.reply_markup and "inline_keyboard" in stored.reply_markup
            else None
        )
        kwargs: dict[str, Any] = {}
        if stored.document is not None:
            kwargs["document"] = Document(
                f"BQACsent{stored.message_id}", f"dsent{stored.message_id}",
                file_name=stored.file_name, file_size=len(stored.document),
            )
            kwargs["caption"] = stored.text or None
        elif stored.photo is not None:
            kwargs["photo"] = [
                PhotoSize(f"AgACsent{stored.message_id}", f"usent{stored.message_id}", 800, 600)
            ]
            kwargs["caption"] = stored.text or None
            kwargs["caption_entities"] = [
                MessageEntity.de_json(e, None) for e in stored.entities
            ] or None
        else:
            kwargs["text"] = stored.text
            kwargs["entities"] = [MessageEntity.de_json(e, None) for e in stored.entities] or None
        message = Message(
            message_id=stored.message_id,
            date=datetime.now(UTC),
            chat=self._chat(
                stored.chat_id, Chat.PRIVATE if stored.chat_id > 0 else Chat.SUPERGROUP
            ),
            from_user=self.bot,
            reply_markup=InlineKeyboardMarkup.de_json(markup, None) if markup else None,
            edit_date=datetime.now(UTC) if stored.edits else None,
            **kwargs,
        )
        return message.to_dict()

    async def _m_getme(self, _p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        return self.bot.to_dict()

    async def _m_sendmessage(self, p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        chat_id = self._chat_id(p)
        raw = str(p.get("text", ""))
        text, entities = self._parse_text(raw, p.get("parse_mode"), TEXT_MAX)
        self._check_markup(p.get("reply_markup"))
        stored = SentMessage(
            chat_id, self._next_message_id(chat_id), text, entities, p.get("reply_markup"), raw
        )
        self.messages[(chat_id, stored.message_id)] = stored
        return self._message_dict(stored)

    async def _m_sendphoto(self, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        chat_id = self._chat_id(p)
        photo: bytes | str | None = f.get("photo") or p.get("photo")
        if not photo:
            raise _ApiError(400, "Bad Request: there is no photo in the request")
        if isinstance(photo, str) and photo.startswith("attach://"):
            photo = f.get(photo.removeprefix("attach://"))
        if (
            isinstance(photo, bytes)
            and not photo.startswith(b"\x89PNG")
            and not photo.startswith(b"\xff\xd8")
        ):
            raise _ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
        raw = str(p.get("caption", ""))
        text, entities = self._parse_text(raw, p.get("parse_mode"), CAPTION_MAX, empty_ok=True)
        self._check_markup(p.get("reply_markup"))
        stored = SentMessage(
            chat_id,
            self._next_message_id(chat_id),
            text,
            entities,
            p.get("reply_markup"),
            raw,
            photo=photo,
        )
        self.messages[(chat_id, stored.message_id)] = stored
        return self._message_dict(stored)

    async def _m_senddocument(self, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        chat_id = self._chat_id(p)
        document = f.get("document")
        if document is None:  # a file_id or URL string: this fake only takes uploads
            raise _ApiError(400, "Bad Request: there is no document in the request")
        raw = str(p.get("caption", ""))
        text, entities = self._parse_text(raw, p.get("parse_mode"), CAPTION_MAX, empty_ok=True)
        self._check_markup(p.get("reply_markup"))
        stored = SentMessage(
            chat_id, self._next_message_id(chat_id), text, entities, p.get("reply_markup"), raw,
            document=document, file_name=f.get("document#filename", b"").decode() or None,
        )
        self.messages[(chat_id, stored.message_id)] = stored
        return self._message_dict(stored)

    async def _m_sendlocation(self, p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        chat_id = self._chat_id(p)
        stored = SentMessage(
            chat_id, self._next_message_id(chat_id), "", [], p.get("reply_markup"), ""
        )
        self.messages[(chat_id, stored.message_id)] = stored
        message = Message(
            message_id=stored.message_id,
            date=datetime.now(UTC),
            chat=self._chat(chat_id),
            from_user=self.bot,
            location=Location(float(p["longitude"]), float(p["latitude"])),
        )
        return message.to_dict()

    async def _m_editmessagetext(self, p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        chat_id = self._chat_id(p)
        stored = self.messages.get((chat_id, int(p.get("message_id", 0))))
        if stored is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        if stored.photo is not None:
            raise _ApiError(400, "Bad Request: there is no text in the message to edit")
        raw = str(p.get("text", ""))
        text, entities = self._parse_text(raw, p.get("parse_mode"), TEXT_MAX)
        markup = p.get("reply_markup")
        self._check_markup(markup)
        if text == stored.text and entities == stored.entities and markup == stored.reply_markup:
            raise _ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        stored.text, stored.entities, stored.raw, stored.reply_markup = text, entities, raw, markup
        stored.edits += 1
        return self._message_dict(stored)

    async def _m_editmessagereplymarkup(self, p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        chat_id = self._chat_id(p)
        stored = self.messages.get((chat_id, int(p.get("message_id", 0))))
        if stored is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        self._check_markup(p.get("reply_markup"))
        stored.reply_markup = p.get("reply_markup")
        stored.edits += 1
        return self._message_dict(stored)

    async def _m_answercallbackquery(self, p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        if not p.get("callback_query_id"):
            raise _ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        if len(str(p.get("text", ""))) > 200:
            raise _ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.callback_answers.append(p)
        return True

    async def _m_getfile(self, p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        file_id = str(p.get("file_id", ""))
        stored = self.files.get(file_id)
        if stored is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        path, content = stored
        return File(file_id, f"u{file_id[-8:]}", file_size=len(content), file_path=path).to_dict()

    async def _m_setwebhook(self, p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        url = str(p.get("url", ""))
        secret = p.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise _ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook_url = url
        self.webhook_secret = str(secret) if secret else None
        if "allowed_updates" in p:
            self.allowed_updates = p["allowed_updates"]
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _m_deletewebhook(self, p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        self.webhook_url = ""
        self.webhook_secret = None
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _m_getwebhookinfo(self, _p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        info = WebhookInfo(
            url=self.webhook_url,
            has_custom_certificate=False,
            pending_update_count=len(self._updates),
            max_connections=40 if self.webhook_url else None,
            allowed_updates=self.allowed_updates,
        )
        return info.to_dict()

    async def _m_setmycommands(self, p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        commands = p.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _ApiError(400, "Bad Request: BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            name = str(command.get("command", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[str(p.get("language_code", ""))] = commands
        return True

    async def _m_getmycommands(self, p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        return self.commands.get(str(p.get("language_code", "")), [])

    async def _m_deletemycommands(self, p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        self.commands.pop(str(p.get("language_code", "")), None)
        return True

    async def _m_logout(self, _p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        return True

    async def _m_close(self, _p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        return True

    async def _m_getupdates(self, p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        if self.webhook_url:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        offset = int(p.get("offset") or 0)
        limit = max(1, min(100, int(p.get("limit") or 100)))
        timeout = max(0, int(p.get("timeout") or 0))
        if offset:
            # Everything below the offset is confirmed and forgotten, as on Telegram.
            while self._updates and self._updates[0]["update_id"] < offset:
                self._updates.popleft()
        if not self._updates and timeout:
            deadline = time.monotonic() + timeout
            async with self._new_update:
                while not self._updates:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._closing:
                        break
                    try:
                        await asyncio.wait_for(self._new_update.wait(), remaining)
                    except TimeoutError:
                        break
        return list(itertools.islice(self._updates, 0, limit))
