"""The Telegram mount: webhook route or long polling into PTB's Application, then the engine."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any
from weakref import WeakValueDictionary

from aiohttp import web
from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ContextTypes, TypeHandler

from bots.telegram.bot import (
    ALLOWED_UPDATES,
    WEBHOOK_PATH,
    build_application,
    channel_limits,
    set_commands,
)
from bots.telegram.parse import CHANNEL, FromPerson, Ignored, Membership, parse_update
from bots.telegram.sender import TelegramSender, retry_after_seconds
from conversations import Engine
from conversations.incoming import Picked
from core.bootstrap import Core
from core.commands import MarkUnreachable
from core.config import Settings
from core.i18n import normalise_locale, t
from core.messages import Reply
from core.privacy.logsafe import log_failure, redacted_traceback

__all__ = ["SECRET_HEADER", "TELEGRAM", "TelegramMount", "webhook_secret"]

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
DEDUPE_TTL = 24 * 3600  # Telegram keeps an unaccepted update for 24 h
MAX_IN_FLIGHT = 1000  # updates accepted and not yet handled; beyond it the answer waits
BUSY = 64  # updates handled at once (state store, database and Bot API connections stay few)
ROOM_WAIT = 10.0  # seconds a webhook request waits for room before a 503 (Telegram redelivers)
POLL_TIMEOUT = 25
STOP_GRACE = 20.0


def webhook_secret(settings: Settings) -> str | None:
    """The secret Telegram must send with every webhook update.

    ``GONGNON_TELEGRAM_WEBHOOK_SECRET`` when set; otherwise one derived from the bot token
    (HMAC-SHA256, 64 hex characters): unguessable without the token, and the same in every
    process and after a restart, so several ``gongnon serve`` behind one URL agree on it.
    None without a token.
    """
    if settings.telegram_webhook_secret is not None:
        return settings.telegram_webhook_secret.get_secret_value()
    if settings.telegram_token is None:
        return None
    token = settings.telegram_token.get_secret_value().encode()
    return hmac.new(token, b"gongnon telegram webhook secret", hashlib.sha256).hexdigest()


def _json_error(status: int, error: str) -> web.Response:
    return web.json_response({"ok": False, "error": error}, status=status)


class TelegramMount:
    """Telegram in the shared aiohttp server.

    Webhook mode (``GONGNON_TELEGRAM_WEBHOOK_URL`` set): ``POST /telegram/webhook`` checks the
    secret header (configured, or derived from the token: see ``webhook_secret``), answers 200
    at once and processes after the answer; ``setWebhook`` is called on start with the secret.
    Polling mode: a ``getUpdates`` loop that confirms an offset only after the batch is
    processed and confirms it once more on stop, so a restart neither loses nor repeats updates.
    Every update id is claimed once (``core.state``) against redeliveries.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.application: Application | None = None  # type: ignore[type-arg]
        self.sender: TelegramSender | None = None
        self.core: Core | None = None
        self.engine: Engine | None = None
        self.bot_username: str | None = None
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._room = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._busy = asyncio.Semaphore(BUSY)
        self._chat_locks: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()
        self._poller: asyncio.Task[None] | None = None
        self._offset: int | None = None
        self._secret = webhook_secret(settings)

    def __repr__(self) -> str:
        return f"TelegramMount(webhook={self.webhook_mode})"

    @property
    def webhook_mode(self) -> bool:
        return bool(self.settings.telegram_webhook_url)

    # --- lifecycle -------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        if self.webhook_mode:
            app.router.add_post(WEBHOOK_PATH, self.webhook)

    async def start(self, app: web.Application, core: Core, engine: Engine) -> None:
        self.core, self.engine = core, engine
        app[TELEGRAM] = self
        application = build_application(self.settings)
        application.add_handler(TypeHandler(Update, self._on_update))
        application.add_error_handler(self._on_error)
        self.application = application
        self.sender = TelegramSender(
            bot=application.bot,
            state=core.state,
            limits=channel_limits(self.settings),
            default_locale=self.settings.default_locale,
        )
        core.register_sender(self.sender)  # before core.start(): the delivery worker needs it
        try:
            await application.initialize()  # getMe: a wrong token stops start-up here
        except InvalidToken:
            # PTB's message quotes the token: never let it reach a log.
            raise RuntimeError("GONGNON_TELEGRAM_TOKEN was rejected by the Bot API") from None
        await application.start()
        self.bot_username = application.bot.username
        await self._configure()
        self._ready.set()
        if not self.webhook_mode:
            self._poller = asyncio.create_task(self._poll(), name="telegram-poller")

    async def _configure(self) -> None:
        assert self.application is not None
        bot = self.application.bot
        try:
            await set_commands(bot, self.settings.default_locale)
        except TelegramError as exc:
            log.warning("telegram setMyCommands failed: %s", type(exc).__name__)
        if self.webhook_mode:
            await bot.set_webhook(
                url=str(self.settings.telegram_webhook_url),
                secret_token=self._secret,  # always one: generated when not configured
                allowed_updates=list(ALLOWED_UPDATES),
            )

    async def stop(self, app: web.Application) -> None:
        self._stopping.set()
        if self._poller is not None:
            try:
                await asyncio.wait_for(self._poller, STOP_GRACE)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("telegram poller did not stop in time")
            await self._confirm_offset()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=STOP_GRACE)
        if self.application is not None:
            if self.application.running:
                await self.application.stop()
            await self.application.shutdown()

    async def drain(self) -> None:
        """Wait until every accepted update has been handled (tests, benchmarks, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- webhook ---------------------------------------------------------------------
    async def webhook(self, request: web.Request) -> web.Response:
        # Never an update without the secret: one is generated when none is configured.
        if self._secret is None:
            return _json_error(403, "no secret token")
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            return _json_error(401, "missing secret token")
        if not hmac.compare_digest(given.encode("utf-8", "replace"), self._secret.encode()):
            return _json_error(403, "wrong secret token")
        if not self._ready.is_set() or self._stopping.is_set():
            return _json_error(503, "not ready")
        try:
            data = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return _json_error(400, "invalid JSON")
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return _json_error(400, "not an update")
        # Overloaded: hold the answer (Telegram sends at most max_connections at once, so this
        # slows it down) rather than pile up work; after ROOM_WAIT, 503 and Telegram redelivers.
        try:
            await asyncio.wait_for(self._room.acquire(), ROOM_WAIT)
        except TimeoutError:
            return _json_error(503, "busy")
        self._spawn(self._process_json(data))
        return web.Response(status=200)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._room.release()

    async def _process_json(self, data: dict[str, Any]) -> None:
        assert self.application is not None
        try:
            update = Update.de_json(data, self.application.bot)
        except Exception as exc:  # noqa: BLE001 - a malformed update is dropped, and said so
            log.warning(
                "telegram update %s could not be read: %s",
                data.get("update_id"),
                type(exc).__name__,
            )
            return
        await self.application.process_update(update)

    # --- polling ---------------------------------------------------------------------
    async def _poll(self) -> None:
        assert self.application is not None
        bot = self.application.bot
        await self._retrying(lambda: bot.delete_webhook(drop_pending_updates=False))
        delay = 1.0
        while not self._stopping.is_set():
            fetch = asyncio.ensure_future(
                bot.get_updates(
                    offset=self._offset,
                    timeout=POLL_TIMEOUT,
                    allowed_updates=list(ALLOWED_UPDATES),
                )
            )
            stop = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({fetch, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if not fetch.done():  # stopping: what was in flight stays unconfirmed on Telegram
                fetch.cancel()
                await asyncio.gather(fetch, return_exceptions=True)
                return
            try:
                updates = fetch.result()
            except RetryAfter as exc:
                await self._sleep(retry_after_seconds(exc))
                continue
            except InvalidToken:
                log.error("telegram refused the bot token; polling stops")
                return
            except (NetworkError, Conflict) as exc:  # includes timeouts and 5xx
                log.warning(
                    "telegram getUpdates failed (%s); retrying in %.0fs", type(exc).__name__, delay
                )
                await self._sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            delay = 1.0
            if updates:
                # Process the whole batch before confirming it (the next getUpdates' offset).
                await asyncio.gather(*(self._process_update(u) for u in updates))
                self._offset = updates[-1].update_id + 1

    async def _process_update(self, update: Update) -> None:
        assert self.application is not None
        await self.application.process_update(update)

    async def _confirm_offset(self) -> None:
        """Tell Telegram the last batch is done, so the next start does not get it again."""
        if self._offset is None or self.application is None:
            return
        try:
            await self.application.bot.get_updates(offset=self._offset, limit=1, timeout=0)
        except TelegramError as exc:
            log.warning("telegram offset confirmation failed: %s", type(exc).__name__)

    async def _retrying(self, action: Any, attempts: int = 5) -> None:
        for attempt in range(attempts):
            try:
                await action()
                return
            except (NetworkError, RetryAfter) as exc:
                if attempt == attempts - 1:
                    raise
                log.warning("telegram call failed (%s); retrying", type(exc).__name__)
                await self._sleep(2.0**attempt)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    # --- one update ------------------------------------------------------------------
    async def _on_update(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            await self.handle_update(update)
        except Exception:
            # Logged with the update id only: no names, chat ids or texts in logs.
            log_failure(log, "telegram update %s failed", update.update_id)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        update_id = getattr(update, "update_id", None)
        error = context.error
        log.error(
            "telegram update %s: %s\n%s",
            update_id,
            type(error).__name__,
            redacted_traceback(error) if error else "",
        )

    @asynccontextmanager
    async def _in_order(self, key: str) -> AsyncIterator[None]:
        """Updates of one chat are handled in arrival order (the lock is taken before any await)."""
        lock = self._chat_locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._chat_locks[key] = lock
        async with lock:
            yield

    async def handle_update(self, update: Update) -> None:
        """Dedupe, classify and act on one update."""
        parsed = parse_update(update, bot_username=self.bot_username)
        key = parsed.inbound.address if isinstance(parsed, FromPerson) else "-"
        core, _ = self._wired()
        async with self._in_order(key), self._busy:
            if not await core.state.claim(
                f"telegram:update:{update.update_id}", ttl=DEDUPE_TTL
            ):
                return
            if isinstance(parsed, FromPerson):
                await self._converse(parsed)
            elif isinstance(parsed, Membership):
                await core.execute(
                    MarkUnreachable(
                        channel=CHANNEL,
                        address=parsed.address,
                        reason="blocked the bot" if not parsed.reachable else "unblocked the bot",
                        reachable=parsed.reachable,
                    )
                )
            else:
                await self._ignored(parsed)

    async def _converse(self, parsed: FromPerson) -> None:
        assert self.sender is not None
        core, engine = self._wired()
        inbound = parsed.inbound
        answering = (
            asyncio.ensure_future(self._answer_callback(parsed.callback_id))
            if parsed.callback_id
            else None
        )
        try:
            if isinstance(inbound.payload, Picked):
                choice_id = await self.sender.resolve(inbound.payload.choice_id)
                if choice_id != inbound.payload.choice_id:
                    inbound = replace(inbound, payload=Picked(choice_id))
            replies = await engine.handle(inbound)
            await core.outbound.send_now(
                CHANNEL, inbound.address, replies, edit_ref=parsed.edit_ref
            )
        except Exception:
            log_failure(log, "telegram conversation turn failed")
            await self._say(inbound.address, t("telegram.error", self._locale(inbound.locale)))
        finally:
            if answering is not None:
                await answering

    async def _answer_callback(self, callback_id: str | None) -> None:
        assert self.application is not None and callback_id
        try:
            await self.application.bot.answer_callback_query(callback_id)
        except TelegramError as exc:  # too old, or already answered: the spinner stops anyway
            log.info("telegram answerCallbackQuery failed: %s", type(exc).__name__)

    async def _ignored(self, parsed: Ignored) -> None:
        if parsed.callback_id:
            await self._answer_callback(parsed.callback_id)
        if parsed.notice_to is None:
            return
        locale = self._locale(parsed.locale)
        if parsed.group:
            link = f"https://t.me/{self.bot_username}" if self.bot_username else ""
            await self._say(parsed.notice_to, t("telegram.private_only", locale, link=link))
        elif parsed.reason == "edited":
            await self._say(parsed.notice_to, t("telegram.edited_ignored", locale))

    def _wired(self) -> tuple[Core, Engine]:
        if self.core is None or self.engine is None:
            raise RuntimeError("the Telegram mount is not started")
        return self.core, self.engine

    def _locale(self, hint: str | None) -> str:
        return normalise_locale(hint, self.settings.default_locale)

    async def _say(self, address: str, text: str) -> None:
        try:
            await self._wired()[0].outbound.send_now(CHANNEL, address, [Reply(text=text)])
        except Exception as exc:  # noqa: BLE001 - a courtesy message; the cause is logged
            log.warning("telegram notice not sent: %s", type(exc).__name__)


TELEGRAM: web.AppKey[TelegramMount] = web.AppKey("telegram", TelegramMount)
