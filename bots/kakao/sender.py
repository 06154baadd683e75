"""Kakao's Sender (pushes through Open Builder's Event API) and the callback poster.

Without ``GONGNON_KAKAO_EVENT_API_KEY`` the Sender declares ``push=False``: the delivery
workers leave Kakao rows in the outbox and the person gets them at their next message (see
``core.news``). With it, each message is one Event API call (billed per message):
``POST {event_api_url}/v2/bots/{bot_id}/talk`` with ``Authorization: KakaoAK {key}`` and
``{"event": {"name": …, "data": {"text": …}}, "user": [{"type": "botUserKey", "id": …}]}``;
the bot's event block shows ``data.text``. Errors map to ``core.ports``: 429 → ``RetryLater``,
5xx and network errors → ``TransientSendError``, 400/401/403 → ``PermanentSendError``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp

from bots.kakao.render import TEXT_MAX, split_text
from bots.kakao.settings import KakaoSettings
from core.messages import Reply
from core.ports import (
    ChannelCapabilities,
    ChannelLimits,
    PermanentSendError,
    RetryLater,
    StateKey,
    StateStore,
    TransientSendError,
)

__all__ = ["PUSHED_KEY", "CallbackPoster", "KakaoSender", "capabilities", "event_text"]

PUSHED_KEY = "kakao:pushed"  # StateKey channel: the choices of the last pushed message
PUSHED_TTL = 7 * 24 * 3600

log = logging.getLogger(__name__)
EVENT_TIMEOUT = aiohttp.ClientTimeout(total=10)


def capabilities(settings: KakaoSettings) -> ChannelCapabilities:
    return ChannelCapabilities(
        buttons=True,
        max_buttons=10,  # quickReplies
        button_label_max=14,
        text_max=TEXT_MAX,
        edit=False,
        push=settings.can_push,
        push_cost=settings.event_cost_krw if settings.can_push else 0.0,
        cost_currency="KRW",
        photo_intake=True,  # the secure image plugin
        location_intake=True,  # the location parameter, or typed coordinates
        images=True,
        identity_level="messenger",  # a KakaoTalk account is tied to a phone number
    )


def event_text(reply: Reply) -> str:
    """A pushed message as plain text (an event block shows one text): the choices as a
    numbered list (typing the number or the label picks them at the next turn)."""
    text = reply.text.strip()
    if reply.heading:
        text = f"{reply.heading}\n\n{text}"
    if reply.choices:
        text += "\n\n" + "\n".join(f"{n}. {c.label}" for n, c in enumerate(reply.choices, 1))
    pieces = split_text(text)
    return pieces[0] if len(pieces) == 1 else pieces[0][: TEXT_MAX - 1] + "…"


def _retry_after(headers: Any, default: float = 1.0) -> float:
    try:
        return max(0.05, float(headers.get("Retry-After", default)))
    except (TypeError, ValueError):
        return default


class KakaoSender:
    """``send(botUserKey, reply)`` through the Event API (only when configured)."""

    channel = "kakao"

    def __init__(self, *, settings: KakaoSettings, state: StateStore | None = None) -> None:
        self.settings = settings
        self.state = state
        self.capabilities = capabilities(settings)
        self.limits = ChannelLimits(
            per_second=settings.event_rate_per_second, per_address_per_second=1.0
        )
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=EVENT_TIMEOUT)
        return self._session

    async def send(self, address: str, reply: Reply, *, edit_ref: str | None = None) -> str | None:
        settings = self.settings
        if not settings.can_push or settings.event_api_key is None:
            raise PermanentSendError("kakao: the Event API is not configured (cannot push)")
        url = f"{settings.event_api_url.rstrip('/')}/v2/bots/{settings.bot_id}/talk"
        body = {
            "event": {"name": settings.event_name, "data": {"text": event_text(reply)}},
            "user": [{"type": "botUserKey", "id": address}],
        }
        headers = {
            "Authorization": f"KakaoAK {settings.event_api_key.get_secret_value()}",
            "Content-Type": "application/json",
        }
        try:
            async with self._http().post(url, data=json.dumps(body), headers=headers) as resp:
                status = resp.status
                text = await resp.text()
                if status == 429:
                    raise RetryLater(_retry_after(resp.headers), "kakao: event API rate limit")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientSendError(f"kakao: {type(exc).__name__}") from exc
        if status >= 500:
            raise TransientSendError(f"kakao: event API {status}")
        if status >= 400:
            raise PermanentSendError(f"kakao: event API refused ({status})")
        try:
            answer = json.loads(text)
        except ValueError as exc:
            raise TransientSendError("kakao: event API answered no JSON") from exc
        if not isinstance(answer, dict) or str(answer.get("status", "")).upper() == "FAIL":
            raise PermanentSendError("kakao: event API reported a failure")
        if reply.choices and self.state is not None:
            # An event block shows text only: the next turn reads a typed number or label
            # against these (bots.kakao.routes).
            await self.state.set(
                StateKey(PUSHED_KEY, address),
                {"choices": [[c.id, c.label] for c in reply.choices]},
                ttl=PUSHED_TTL,
            )
        task = answer.get("taskId")
        return f"kakao:{task}" if task else None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class CallbackPoster:
    """Posts a turn's SkillResponse to its one-use ``callbackUrl``, retried until the
    callback's minute runs out (a connection error or a 5xx may be retried: the URL is used
    only once it accepted the post)."""

    def __init__(self, *, window: float) -> None:
        self.window = window
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self._session

    async def post(self, url: str, response: dict[str, Any], *, started: float) -> bool:
        """True when the callback took the SkillResponse before its minute ran out."""
        loop = asyncio.get_running_loop()
        body = json.dumps(response, ensure_ascii=False)
        delay = 0.2
        while loop.time() - started < self.window:
            try:
                async with self._http().post(
                    url, data=body, headers={"Content-Type": "application/json"}
                ) as resp:
                    if resp.status < 300:
                        return True
                    if resp.status == 429:
                        delay = _retry_after(resp.headers, delay)
                    elif resp.status < 500:
                        log.warning("kakao callback refused (%s)", resp.status)
                        return False  # used, expired or malformed: retrying will not help
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.info("kakao callback failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(min(delay, max(0.0, self.window - (loop.time() - started))))
            delay = min(delay * 2, 8.0)
        return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
