"""The Telegram ``Sender``: renders a ``Reply``, calls the Bot API, maps its errors to core's."""

from __future__ import annotations

import asyncio
import logging
import warnings
from dataclasses import replace
from datetime import timedelta
from typing import Any

from telegram import Bot, InputFile
from telegram.error import (
    BadRequest,
    ChatMigrated,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBDeprecationWarning

from bots.telegram.render import Rendered, TelegramCall, render
from core.i18n import normalise_locale
from core.messages import Document, Reply
from core.ports import (
    ChannelCapabilities,
    ChannelLimits,
    PermanentSendError,
    RetryLater,
    StateKey,
    StateStore,
    TransientSendError,
    Unreachable,
)

__all__ = ["CALLBACK_KEY", "TelegramSender", "capabilities", "retry_after_seconds"]

log = logging.getLogger(__name__)

CALLBACK_KEY = "telegram:cb"  # StateKey channel under which long choice ids are kept
CALLBACK_TTL = 30 * 24 * 3600
_GONE = (
    "chat not found",
    "user not found",
    "peer_id_invalid",
    "user is deactivated",
    "bot was blocked",
    "bot was kicked",
    "have no rights to send",
)
_EDIT_IMPOSSIBLE = (
    "message to edit not found",
    "message can't be edited",
    "there is no text in the message to edit",
    "message_id_invalid",
)
_INLINE_RETRY_MAX = 5.0  # seconds we wait in place for a 429 in the middle of a split message


def capabilities() -> ChannelCapabilities:
    return ChannelCapabilities(
        buttons=True,
        max_buttons=24,  # an inline keyboard takes up to 100; short labels share rows
        button_label_max=30,
        text_max=4096,
        edit=True,
        push=True,
        photo_intake=True,
        location_intake=True,
        images=True,
        documents=True,  # sendDocument
        identity_level="messenger",  # Telegram ties every account to a phone number
    )


def retry_after_seconds(exc: RetryAfter) -> float:
    """PTB 22 gives ``retry_after`` as int or timedelta (with a deprecation warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: Any = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _reason(exc: TelegramError) -> str:
    return exc.message.lower()


class TelegramSender:
    """Sends replies to a chat id (``address``); returns the message id of the last message."""

    channel = "telegram"

    def __init__(
        self,
        *,
        bot: Bot,
        state: StateStore,
        limits: ChannelLimits,
        default_locale: str = "ko",
    ) -> None:
        self.bot = bot
        self.state = state
        self.limits = limits
        self.capabilities = capabilities()
        self.default_locale = default_locale

    async def _locale(self, address: str, reply: Reply) -> str:
        """The person's language: from the reply, else (only when a hint is needed) from the
        conversation state (a private chat's id is the person's id), else the default."""
        if reply.meta.get("locale"):
            return normalise_locale(reply.meta["locale"], self.default_locale)
        if reply.request is not None or (not reply.text.strip() and not reply.heading):
            state = await self.state.get(StateKey(self.channel, address))
            if state and state.get("locale"):
                return normalise_locale(str(state["locale"]), self.default_locale)
        return self.default_locale

    async def send(self, address: str, reply: Reply, *, edit_ref: str | None = None) -> str | None:
        try:
            chat_id = int(address)
        except ValueError as exc:
            raise PermanentSendError("not a Telegram chat id") from exc
        locale = await self._locale(address, reply)
        rendered = render(reply, chat_id=chat_id, locale=locale, edit_ref=edit_ref)
        await self._remember(rendered)
        ref: str | None = None
        for index, call in enumerate(rendered.calls):
            ref = await self._call_with_pacing(call, first=index == 0) or ref
        return ref

    async def _remember(self, rendered: Rendered) -> None:
        for token, choice_id in rendered.tokens.items():
            await self.state.set(StateKey(CALLBACK_KEY, token), {"id": choice_id}, ttl=CALLBACK_TTL)

    async def resolve(self, data: str) -> str:
        """A pressed button's ``callback_data`` → the choice id (tokens looked up)."""
        from bots.telegram.render import TOKEN_PREFIX

        if not data.startswith(TOKEN_PREFIX):
            return data
        found = await self.state.get(StateKey(CALLBACK_KEY, data))
        return str(found["id"]) if found and "id" in found else data

    async def _call_with_pacing(self, call: TelegramCall, *, first: bool) -> str | None:
        """The first call's errors go to the caller (nothing sent yet); later parts of a split
        message wait out a short 429 in place so the earlier parts are not sent twice."""
        while True:
            try:
                return await self.call(call)
            except RetryLater as exc:
                if first or exc.retry_after > _INLINE_RETRY_MAX:
                    raise
                await asyncio.sleep(exc.retry_after)

    async def call(self, call: TelegramCall) -> str | None:
        """One Bot API call, with Telegram's errors mapped to ``core.ports`` send errors.

        It goes through PTB's ``do_api_request`` (PTB's request machinery, our aiohttp
        ``BaseRequest``) with the parameters as rendered; the answer stays a dict. The method
        name is passed lower-case: Bot API method names are case-insensitive, and PTB only
        warns about names that collide with its typed methods.
        """
        params = dict(call.params)
        if isinstance(params.get("photo"), bytes):
            params["photo"] = InputFile(params["photo"], filename="image.png")
        if isinstance(params.get("document"), Document):  # multipart upload with its file name
            doc = params["document"]
            params["document"] = InputFile(doc.data, filename=doc.name)
        try:
            result = await self.bot.do_api_request(call.method.lower(), api_kwargs=params)
        except RetryAfter as exc:
            raise RetryLater(retry_after_seconds(exc), "telegram: flood control") from exc
        except Forbidden as exc:
            raise Unreachable(f"telegram: {_reason(exc)}") from exc
        except ChatMigrated as exc:
            raise PermanentSendError("telegram: group chat migrated to a supergroup") from exc
        except BadRequest as exc:
            return await self._bad_request(call, exc)
        except (InvalidToken, EndPointNotFound) as exc:
            raise PermanentSendError(f"telegram: {type(exc).__name__}") from exc
        except NetworkError as exc:  # timeouts, connection errors and 5xx
            raise TransientSendError(f"telegram: {type(exc).__name__}") from exc
        except TelegramError as exc:
            raise TransientSendError(f"telegram: {type(exc).__name__}") from exc
        if isinstance(result, dict) and "message_id" in result:
            return str(result["message_id"])
        if "message_id" in call.params:  # an edit answered ``true``
            return str(call.params["message_id"])
        return None

    async def _bad_request(self, call: TelegramCall, exc: BadRequest) -> str | None:
        reason = _reason(exc)
        if "message is not modified" in reason:
            return str(call.params["message_id"]) if "message_id" in call.params else None
        if call.method == "editMessageText" and any(r in reason for r in _EDIT_IMPOSSIBLE):
            params = {k: v for k, v in call.params.items() if k != "message_id"}
            return await self.call(replace(call, method="sendMessage", params=params))
        if any(r in reason for r in _GONE):
            raise Unreachable(f"telegram: {reason[:120]}") from exc
        log.warning("telegram refused a %s: %s", call.method, reason[:200])
        raise PermanentSendError(f"telegram: {reason[:200]}") from exc
