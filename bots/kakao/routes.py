"""The KakaoTalk mount: Open Builder's skill at ``POST /kakao/skill/{secret}`` on the one server.

Open Builder signs nothing, so the URL carries the secret (compared in constant time; a wrong
one is a 404, a payload for another bot a 403, a body that is no SkillPayload a 400: none is
processed). A turn answers within ``reply_budget_seconds``; a longer one answers
``useCallback: true`` and posts the real answer to the request's one-use ``callbackUrl``
(retried within its minute). A turn that outlives both keeps its answer for the person's next
message (``core.news.KeepNews``), as do pushes when the Event API is not configured.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from dataclasses import replace
from typing import Any

from aiohttp import web

from bots.kakao.media import MEDIA_PATH, Media, PhotoRejected
from bots.kakao.parse import CHANNEL, BadPayload, Skill, parse_skill
from bots.kakao.render import callback_waiting, render
from bots.kakao.sender import PUSHED_KEY, CallbackPoster, KakaoSender
from bots.kakao.settings import KakaoSettings
from conversations import Engine
from conversations.incoming import Inbound, Photo, Picked, Text
from core.bootstrap import Core
from core.commands import KeepNews
from core.config import Settings
from core.i18n import normalise_locale, t
from core.messages import Reply
from core.ports import StateKey

__all__ = ["KAKAO", "SKILL_PATH", "KakaoMount"]

log = logging.getLogger(__name__)

SKILL_PATH = "/kakao/skill/{secret}"
PROFILE_KEY = "kakao:profile"  # StateKey channel for plusfriendUserKey / isFriend
STOP_GRACE = 10.0
MAX_IN_FLIGHT = 1000  # turns running at once (answered or past their answer); beyond, "busy"
ROOM_WAIT = 1.0  # seconds a request waits for room before the polite "busy" answer


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False), status=status,
        content_type="application/json",
    )


class KakaoMount:
    """Kakao in the shared aiohttp server (``routes`` at build time, ``start``/``stop`` with
    the server)."""

    def __init__(self, settings: Settings, kakao: KakaoSettings) -> None:
        self.settings = settings
        self.kakao = kakao
        self._core: Core | None = None
        self._engine: Engine | None = None
        self.sender: KakaoSender | None = None
        self.media = Media(settings=kakao, data_dir=settings.data_dir,
                           public_url=settings.public_url)
        self.poster = CallbackPoster(window=kakao.callback_window_seconds)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._room = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._ready = False
        self.counts: dict[str, int] = {}  # answered | callback | kept | refused

    def __repr__(self) -> str:
        return f"KakaoMount(push={self.kakao.can_push})"

    # --- lifecycle ---------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_post(SKILL_PATH, self.skill)
        app.router.add_get(MEDIA_PATH, self.chart)

    @property
    def core(self) -> Core:
        if self._core is None:
            raise RuntimeError("the Kakao mount is not started")
        return self._core

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("the Kakao mount is not started")
        return self._engine

    async def start(self, app: web.Application, core: Core, engine: Engine) -> None:
        self._core, self._engine = core, engine
        app[KAKAO] = self
        self.sender = KakaoSender(settings=self.kakao, state=core.state)
        core.register_sender(self.sender)  # before core.start(): workers read its capabilities
        self._ready = True

    async def stop(self, app: web.Application) -> None:
        self._ready = False
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=STOP_GRACE)
        for closing in (self.poster, self.media, self.sender):
            if closing is not None:
                await closing.close()

    async def drain(self) -> None:
        """Wait for every turn still running after its answer (tests, benchmarks)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    # --- the skill route ---------------------------------------------------------------
    async def skill(self, request: web.Request) -> web.StreamResponse:
        expected = self.kakao.skill_secret
        given = request.match_info.get("secret", "")
        if expected is None or not hmac.compare_digest(
            given.encode("utf-8", "replace"), expected.get_secret_value().encode()
        ):
            self._count("refused")
            raise web.HTTPNotFound()
        if not self._ready:
            return _json({"error": "not ready"}, 503)
        limit = self.kakao.request_max_bytes
        if request.content_length is not None and request.content_length > limit:
            return _json({"error": "too large"}, 413)
        raw = await request.content.read(limit + 1)
        if len(raw) > limit:
            return _json({"error": "too large"}, 413)
        try:
            skill = parse_skill(json.loads(raw))
        except (ValueError, UnicodeDecodeError, BadPayload):
            self._count("refused")
            return _json({"error": "not a SkillPayload"}, 400)
        if self.kakao.bot_id and not (
            skill.bot_id and hmac.compare_digest(skill.bot_id.encode(), self.kakao.bot_id.encode())
        ):
            self._count("refused")
            return _json({"error": "wrong bot"}, 403)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await asyncio.wait_for(self._room.acquire(), ROOM_WAIT)
        except TimeoutError:
            self._count("busy")
            return _json(render([Reply(text=t("kakao.busy", await self._locale(skill)))]))
        # Seam for the durable inbound journal (issue 10): journal ``raw`` here, before any
        # answer, once it exists; today a turn cut by a crash is lost with its HTTP request.
        turn = asyncio.ensure_future(self._turn(skill))
        turn.add_done_callback(lambda _t: self._room.release())
        try:
            done, _ = await asyncio.wait({turn}, timeout=self.kakao.reply_budget_seconds)
        except asyncio.CancelledError:  # Kakao hung up: the answer goes on without us
            self._spawn(self._late(skill, turn, started))
            raise
        if done:
            self._count("answered")
            return _json(turn.result()[0])
        locale = await self._locale(skill)
        self._spawn(self._late(skill, turn, started))
        if skill.callback_url:
            self._count("callback")
            return _json(callback_waiting(t("kakao.wait", locale)))
        self._count("kept")
        return _json(render([Reply(text=t("kakao.slow", locale))], block_id=None))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _late(self, skill: Skill, turn: asyncio.Future[Any], started: float) -> None:
        """A turn past its budget: its answer goes to the callback, else waits for the next
        contact."""
        try:
            response, replies = await turn
        except Exception:
            log.exception("kakao turn failed after its answer")
            return
        if skill.callback_url and await self.poster.post(
            skill.callback_url, response, started=started
        ):
            return
        await self.core.execute(
            KeepNews(channel=CHANNEL, address=skill.inbound.address, replies=tuple(replies),
                     key=secrets.token_hex(8))
        )

    async def _turn(self, skill: Skill) -> tuple[dict[str, Any], list[Reply]]:
        """One turn → its SkillResponse, and the replies (for a late callback)."""
        try:
            replies = await self._replies(skill)
        except Exception:
            # The exception type only: its message may carry what the person typed.
            log.exception("kakao turn failed")
            replies = [Reply(text=t("kakao.error", await self._locale(skill)))]
        urls = await self._image_urls(replies)
        response = render(replies, image_url=lambda image: urls.get(id(image)),
                          block_id=self.kakao.block_id)
        return response, replies

    async def _replies(self, skill: Skill) -> list[Reply]:
        inbound = skill.inbound
        if skill.too_long:
            return [Reply(text=t("kakao.too_long", await self._locale(skill)))]
        await self._keep_profile(skill)
        if skill.photo is not None:
            try:
                ref = await self.media.fetch_photo(skill.photo.urls[0])
            except PhotoRejected as exc:
                return [Reply(text=t(f"kakao.photo.{exc.code}", await self._locale(skill),
                                     max_mb=round(self.kakao.image_max_bytes / 1024 / 1024, 1)))]
            inbound = replace(inbound, payload=Photo(ref, None))
        inbound = await self._pushed_choice(inbound)
        return list(await self.engine.handle(inbound))

    async def _pushed_choice(self, inbound: Inbound) -> Inbound:
        """The message before this one was a push (Event API: text only, its choices numbered):
        a typed number or label picks from it, once."""
        key = StateKey(PUSHED_KEY, inbound.user_id)
        pushed = await self.core.state.get(key)
        if not pushed:
            return inbound
        await self.core.state.delete(key)
        if not isinstance(inbound.payload, Text):
            return inbound
        typed = " ".join(inbound.payload.text.split()).casefold()
        choices = [(str(i), str(label)) for i, label in pushed.get("choices", [])]
        for n, (choice_id, label) in enumerate(choices, start=1):
            if typed in (str(n), " ".join(label.split()).casefold()):
                return replace(inbound, payload=Picked(choice_id))
        return inbound

    async def _image_urls(self, replies: list[Reply]) -> dict[int, str]:
        urls: dict[int, str] = {}
        for reply in replies:
            if reply.image is not None:
                url = await self.media.url_for(reply.image)
                if url:
                    urls[id(reply.image)] = url
        return urls

    async def _keep_profile(self, skill: Skill) -> None:
        """``plusfriendUserKey`` and ``isFriend``, kept beside the conversation (the Event API
        can address either key; only friends of the channel get some messages)."""
        if skill.plusfriend_user_key is None and skill.is_friend is None:
            return
        key = StateKey(PROFILE_KEY, skill.inbound.user_id)
        profile = {"plusfriendUserKey": skill.plusfriend_user_key, "isFriend": skill.is_friend}
        if await self.core.state.get(key) != profile:
            await self.core.state.set(key, profile, ttl=self.settings.conversation_ttl_seconds)

    async def profile(self, user_id: str) -> dict[str, Any] | None:
        return await self.core.state.get(StateKey(PROFILE_KEY, user_id))

    async def _locale(self, skill: Skill) -> str:
        default = self.settings.default_locale
        try:
            state = await self.core.state.get(StateKey(CHANNEL, skill.inbound.user_id))
        except Exception:  # noqa: BLE001 - only the language of an apology is at stake
            state = None
        return normalise_locale(str((state or {}).get("locale") or "") or None, default)

    # --- pictures we made ----------------------------------------------------------------
    async def chart(self, request: web.Request) -> web.StreamResponse:
        path = self.media.chart_path(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": "image/png",
                                               "Cache-Control": "public, max-age=86400"})


KAKAO: web.AppKey[KakaoMount] = web.AppKey("kakao", KakaoMount)


