"""A fake Kakao i Open Builder: builds SkillPayloads the way Open Builder sends them, checks
every SkillResponse against the documented limits, receives callbacks and fakes the Event API.

One aiohttp app on port 0 (``FakeOpenBuilder``) serves:

- ``POST /callback/{token}``: a turn's ``callbackUrl``. One use, valid ``callback_ttl`` seconds
  (Kakao: one minute); a second or late post is refused (400), every body is validated;
- ``POST /v2/bots/{bot_id}/talk``: the Event API (``Authorization: KakaoAK <key>``,
  ``{"event": {"name", "data"}, "user": [{"type", "id"}]}`` → ``{"taskId", "status"}``), with
  scripted failures (``fail_next``);
- ``GET /img/{name}``: pictures behind the secure image plugin's URLs.

``KakaoUser`` is one person in KakaoTalk: ``say`` (an utterance), ``tap`` (a quick reply, sent
back as Open Builder does: ``action: "message"`` → its ``messageText`` as the utterance,
``action: "block"`` → its ``extra`` as ``action.clientExtra``), ``send_photo`` (the image
plugin's ``secureimage`` parameter), ``send_location``, ``open_link`` (a channel button's
``clientExtra``). Every answer goes through ``validate_response``; nothing invalid passes.

Formats and limits relied on (checked with the ``search`` tool, public material):
- SkillPayload fields (``userRequest.user.id`` of type ``botUserKey`` with
  ``properties.plusfriendUserKey``, ``utterance``, ``lang``, ``block``, ``bot.id``,
  ``action.params`` / ``detailParams`` / ``clientExtra``): the request example in
  UOSCS1518/dev-helper README.md (after i.kakao.com/docs/skill-response-format#skillpayload)
  and Kakao skill request types in public TypeScript skill servers;
- SkillResponse ``version: "2.0"``, ``template.outputs`` at most 3 components, ``quickReplies``
  at most 10, basicCard at most 3 buttons and description ≤ 230, listCard at most 5 items and
  2 buttons, carousel at most 10 items: myabcc17/chatbot-v2-response-builder README.md (after
  i.kakao.com/docs/skill-response-format); simpleText ≤ 1000 characters: public skill servers
  that cut at 1000 (kb-chatbot ``KAKAO_LIMITS.SIMPLE_TEXT_MAX_LENGTH``); a quick reply's
  ``label`` / ``action`` / ``messageText``: ikakao (PyPI) examples;
- ``useCallback: true`` with an optional ``data.text`` and a later POST of the full
  SkillResponse to ``userRequest.callbackUrl`` (5 s skill timeout): mariojisoohwang/
  kakao-chatbot-skill-example README.md and brown-sung/drlike5-GCP utils.js;
- the Event API body (``event.name``, ``user[].type``/``id``) and ``KakaoAK`` authorisation:
  public Event API callers (``callKakaoChannelAPI``) and the Kakao REST API convention.
Two limits come from Kakao's own pages as remembered, not found in the stored material:
quick-reply and button labels ≤ 14 characters, basicCard title ≤ 50. The secure image plugin's
value (``{"secureUrls": "List(https://…)"}``) is also from memory of Kakao's plugin page.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

__all__ = ["FakeOpenBuilder", "KakaoUser", "SkillResponseError", "validate_response"]

MAX_OUTPUTS = 3
MAX_QUICK_REPLIES = 10
TEXT_MAX = 1000
LABEL_MAX = 14
CARD_TITLE_MAX = 50
CARD_DESCRIPTION_MAX = 230
BASIC_CARD_BUTTONS = 3
LIST_CARD_ITEMS = 5
LIST_CARD_BUTTONS = 2
CAROUSEL_ITEMS = 10
COMPONENTS = ("simpleText", "simpleImage", "basicCard", "listCard", "carousel", "textCard")


class SkillResponseError(AssertionError):
    """A SkillResponse Open Builder would refuse."""


def _check(ok: bool, problem: str, problems: list[str]) -> None:
    if not ok:
        problems.append(problem)


def _url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _buttons(buttons: Any, limit: int, where: str, problems: list[str]) -> None:
    if buttons is None:
        return
    _check(isinstance(buttons, list) and len(buttons) <= limit, f"{where}: ≤ {limit} buttons",
           problems)
    for button in buttons if isinstance(buttons, list) else []:
        label = button.get("label") if isinstance(button, dict) else None
        _check(isinstance(label, str) and 1 <= len(label) <= LABEL_MAX,
               f"{where}: button label 1-{LABEL_MAX} chars: {label!r}", problems)


def _card(kind: str, card: Any, where: str, problems: list[str]) -> None:
    if not isinstance(card, dict):
        problems.append(f"{where}: {kind} is not an object")
        return
    if kind == "simpleText":
        text = card.get("text")
        _check(isinstance(text, str) and 1 <= len(text) <= TEXT_MAX,
               f"{where}: simpleText.text 1-{TEXT_MAX} chars (has {len(text or '')})", problems)
    elif kind == "simpleImage":
        _check(_url(card.get("imageUrl")), f"{where}: simpleImage.imageUrl", problems)
        alt = card.get("altText")
        _check(isinstance(alt, str) and 1 <= len(alt) <= TEXT_MAX, f"{where}: altText", problems)
    elif kind == "basicCard":
        title, description = card.get("title", ""), card.get("description", "")
        _check(isinstance(title, str) and len(title) <= CARD_TITLE_MAX, f"{where}: title",
               problems)
        _check(isinstance(description, str) and len(description) <= CARD_DESCRIPTION_MAX,
               f"{where}: description ≤ {CARD_DESCRIPTION_MAX}", problems)
        _check(_url((card.get("thumbnail") or {}).get("imageUrl")), f"{where}: thumbnail",
               problems)
        _buttons(card.get("buttons"), BASIC_CARD_BUTTONS, where, problems)
    elif kind == "listCard":
        _check(isinstance((card.get("header") or {}).get("title"), str), f"{where}: header",
               problems)
        items = card.get("items")
        _check(isinstance(items, list) and 1 <= len(items) <= LIST_CARD_ITEMS,
               f"{where}: 1-{LIST_CARD_ITEMS} items", problems)
        _buttons(card.get("buttons"), LIST_CARD_BUTTONS, where, problems)
    elif kind == "carousel":
        items = card.get("items")
        _check(card.get("type") in ("basicCard", "listCard", "commerceCard", "itemCard"),
               f"{where}: carousel type", problems)
        _check(isinstance(items, list) and 1 <= len(items) <= CAROUSEL_ITEMS,
               f"{where}: 1-{CAROUSEL_ITEMS} items", problems)
        for n, item in enumerate(items if isinstance(items, list) else []):
            _card(str(card.get("type")), item, f"{where}.items[{n}]", problems)


def validate_response(data: Any) -> list[str]:
    """Every reason Open Builder would refuse this SkillResponse (raises when there is one)."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise SkillResponseError(["not a JSON object"])
    _check(data.get("version") == "2.0", "version must be \"2.0\"", problems)
    if data.get("useCallback") is True:
        text = (data.get("data") or {}).get("text", "")
        _check(isinstance(text, str) and len(text) <= TEXT_MAX, "data.text", problems)
        if problems:
            raise SkillResponseError(problems)
        return problems
    template = data.get("template")
    if not isinstance(template, dict):
        raise SkillResponseError(["no template"])
    outputs = template.get("outputs")
    _check(isinstance(outputs, list) and 1 <= len(outputs) <= MAX_OUTPUTS,
           f"1-{MAX_OUTPUTS} outputs (has {len(outputs or [])})", problems)
    for n, output in enumerate(outputs if isinstance(outputs, list) else []):
        keys = [k for k in output if k in COMPONENTS] if isinstance(output, dict) else []
        _check(len(keys) == 1 and len(output) == 1, f"outputs[{n}]: one component", problems)
        for key in keys:
            _card(key, output[key], f"outputs[{n}]", problems)
    quick = template.get("quickReplies", [])
    _check(isinstance(quick, list) and len(quick) <= MAX_QUICK_REPLIES,
           f"≤ {MAX_QUICK_REPLIES} quickReplies", problems)
    for n, item in enumerate(quick if isinstance(quick, list) else []):
        where = f"quickReplies[{n}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: not an object")
            continue
        label = item.get("label")
        _check(isinstance(label, str) and 1 <= len(label) <= LABEL_MAX,
               f"{where}: label 1-{LABEL_MAX} chars: {label!r}", problems)
        action = item.get("action")
        _check(action in ("message", "block"), f"{where}: action", problems)
        if action == "message":
            _check(isinstance(item.get("messageText"), str) and item["messageText"],
                   f"{where}: messageText", problems)
        if action == "block":
            _check(isinstance(item.get("blockId"), str), f"{where}: blockId", problems)
            _check(isinstance(item.get("extra", {}), dict), f"{where}: extra", problems)
    if problems:
        raise SkillResponseError(problems)
    return problems


@dataclass
class Callback:
    token: str
    created: float
    used: bool = False
    body: dict[str, Any] | None = None
    received: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Event:
    bot_id: str
    name: str
    data: dict[str, Any]
    users: list[dict[str, Any]]


class FakeOpenBuilder:
    """The Kakao side of the wire. ``async with FakeOpenBuilder(...) as kakao:``."""

    def __init__(self, *, bot_id: str = "bot-gongnon", event_key: str = "event-key",
                 callback_ttl: float = 60.0) -> None:
        self.bot_id = bot_id
        self.event_key = event_key
        self.callback_ttl = callback_ttl
        self.callbacks: dict[str, Callback] = {}
        self.events: list[Event] = []
        self.images: dict[str, bytes] = {}
        self.refused: list[str] = []  # why a callback or event was refused
        self.validated = 0  # SkillResponses that passed validation
        self.fail_next: list[int] = []  # statuses the Event API answers next
        self._server: TestServer | None = None
        self._tasks = itertools.count(1)

    async def __aenter__(self) -> FakeOpenBuilder:
        app = web.Application()
        app.router.add_post("/callback/{token}", self._callback)
        app.router.add_post("/v2/bots/{bot_id}/talk", self._event)
        app.router.add_get("/img/{name}", self._image)
        self._server = TestServer(app, host="127.0.0.1", port=0)
        await self._server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            await self._server.close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.port}"

    def check(self, data: Any) -> dict[str, Any]:
        validate_response(data)
        self.validated += 1
        return data  # type: ignore[no-any-return]

    # --- callbacks ---------------------------------------------------------------------
    def new_callback(self) -> str:
        token = secrets.token_hex(8)
        self.callbacks[token] = Callback(token, time.monotonic())
        return f"{self.url}/callback/{token}"

    async def _callback(self, request: web.Request) -> web.Response:
        found = self.callbacks.get(request.match_info["token"])
        if found is None:
            return self._refuse("unknown callback", 400)
        if found.used:
            return self._refuse("callback used twice", 400)
        if time.monotonic() - found.created > self.callback_ttl:
            return self._refuse("callback expired", 400)
        try:
            body = self.check(json.loads(await request.read()))
        except (ValueError, SkillResponseError) as exc:
            return self._refuse(f"bad callback body: {exc}", 400)
        if body.get("useCallback"):
            return self._refuse("a callback cannot ask for another callback", 400)
        found.used, found.body = True, body
        found.received.set()
        return web.json_response({"taskId": found.token, "status": "SUCCESS"})

    def _refuse(self, why: str, status: int) -> web.Response:
        self.refused.append(why)
        return web.json_response({"status": "FAIL", "message": why}, status=status)

    async def callback_body(self, url: str, wait: float = 10.0) -> dict[str, Any]:
        found = self.callbacks[url.rsplit("/", 1)[1]]
        await asyncio.wait_for(found.received.wait(), wait)
        assert found.body is not None
        return found.body

    # --- the Event API -----------------------------------------------------------------
    async def _event(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"KakaoAK {self.event_key}":
            return self._refuse("bad Event API key", 401)
        if request.match_info["bot_id"] != self.bot_id:
            return self._refuse("unknown bot", 404)
        if self.fail_next:
            status = self.fail_next.pop(0)
            headers = {"Retry-After": "0.1"} if status == 429 else None
            return web.json_response({"status": "FAIL"}, status=status, headers=headers)
        try:
            body = json.loads(await request.read())
            event, users = body["event"], body["user"]
            assert isinstance(event["name"], str) and event["name"]
            assert isinstance(users, list) and 1 <= len(users) <= 100
            assert all(u["type"] in ("botUserKey", "appUserId", "plusfriendUserKey")
                       and isinstance(u["id"], str) for u in users)
            data = event.get("data", {})
            text = data.get("text", "")
            assert isinstance(text, str) and len(text) <= TEXT_MAX
        except (ValueError, KeyError, TypeError, AssertionError):
            return self._refuse("bad Event API body", 400)
        self.events.append(Event(self.bot_id, event["name"], data, users))
        return web.json_response({"taskId": f"task-{next(self._tasks)}", "status": "SUCCESS"})

    def events_to(self, user_id: str) -> list[Event]:
        return [e for e in self.events if any(u["id"] == user_id for u in e.users)]

    # --- pictures behind the image plugin ----------------------------------------------
    def host_image(self, data: bytes) -> str:
        name = secrets.token_hex(8)
        self.images[name] = data
        return f"{self.url}/img/{name}"

    async def _image(self, request: web.Request) -> web.Response:
        data = self.images.get(request.match_info["name"])
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(body=data, content_type="image/png")


class KakaoUser:
    """One person talking to the bot in KakaoTalk, through Open Builder."""

    def __init__(self, kakao: FakeOpenBuilder, http: ClientSession, skill_url: str, *,
                 user_id: str | None = None, callbacks: bool = False,
                 bot_id: str | None = None) -> None:
        self.kakao = kakao
        self.http = http
        self.skill_url = skill_url
        self.user_id = user_id or secrets.token_hex(16)
        self.plusfriend_key = "pf-" + self.user_id[:8]
        self.callbacks = callbacks
        self.bot_id = bot_id or kakao.bot_id
        self.response: dict[str, Any] = {}
        self.last_callback: str | None = None

    # --- what the person sees ------------------------------------------------------------
    @property
    def outputs(self) -> list[dict[str, Any]]:
        return list(self.response.get("template", {}).get("outputs", []))

    @property
    def text(self) -> str:
        parts: list[str] = []
        for output in self.outputs:
            if "simpleText" in output:
                parts.append(output["simpleText"]["text"])
            if "basicCard" in output:
                card = output["basicCard"]
                parts.append(card["title"] + "\n" + card["description"])
        return "\n".join(parts)

    @property
    def quick_replies(self) -> list[dict[str, Any]]:
        return list(self.response.get("template", {}).get("quickReplies", []))

    @property
    def labels(self) -> list[str]:
        return [q["label"] for q in self.quick_replies]

    # --- what the person does ------------------------------------------------------------
    def payload(self, utterance: str, *, params: dict[str, Any] | None = None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
        request: dict[str, Any] = {
            "timezone": "Asia/Seoul",
            "params": {"ignoreMe": "true", "surface": "Kakaotalk.plusfriend"},
            "block": {"id": "block-fallback", "name": "폴백 블록"},
            "utterance": utterance,
            "lang": "ko",
            "user": {
                "id": self.user_id,
                "type": "botUserKey",
                "properties": {"plusfriendUserKey": self.plusfriend_key, "isFriend": True},
            },
        }
        if self.callbacks:
            self.last_callback = self.kakao.new_callback()
            request["callbackUrl"] = self.last_callback
        params = params or {}
        return {
            "intent": {"id": "intent-fallback", "name": "폴백 블록"},
            "userRequest": request,
            "bot": {"id": self.bot_id, "name": "공론"},
            "action": {
                "name": "gongnon",
                "clientExtra": extra,
                "params": params,
                "id": "skill-gongnon",
                "detailParams": {k: {"origin": str(v), "value": str(v), "groupName": ""}
                                 for k, v in params.items()},
            },
            "contexts": [],
        }

    async def post(self, body: dict[str, Any], *, expect: int = 200) -> dict[str, Any]:
        async with self.http.post(self.skill_url, json=body) as resp:
            assert resp.status == expect, (resp.status, await resp.text())
            if expect != 200:
                return {}
            data = self.kakao.check(await resp.json())
        if data.get("useCallback"):
            assert self.last_callback is not None, "useCallback without a callbackUrl"
            self.response = await self.kakao.callback_body(self.last_callback)
        else:
            self.response = data
        return data

    async def say(self, text: str) -> dict[str, Any]:
        return await self.post(self.payload(text))

    async def tap(self, label: str) -> dict[str, Any]:
        """Press the quick reply whose label is (or starts with) ``label``."""
        for item in self.quick_replies:
            if item["label"] == label or item["label"].startswith(label):
                extra = item.get("extra") if item["action"] == "block" else None
                return await self.post(self.payload(item["messageText"], extra=extra))
        raise AssertionError(f"no quick reply {label!r} in {self.labels}")

    @property
    def choice_ids(self) -> list[str]:
        """The choice ids behind ``action: "block"`` quick replies (their ``extra``)."""
        return [q["extra"]["c"] for q in self.quick_replies if "c" in q.get("extra", {})]

    async def pick(self, choice_id: str) -> dict[str, Any]:
        """Press the block quick reply carrying ``choice_id`` in its ``extra``."""
        for item in self.quick_replies:
            if item.get("extra", {}).get("c") == choice_id:
                return await self.post(self.payload(item["messageText"], extra=item["extra"]))
        raise AssertionError(f"no quick reply for {choice_id!r} in {self.choice_ids}")

    async def send_photo(self, data: bytes, *, url: str | None = None) -> dict[str, Any]:
        url = url or self.kakao.host_image(data)
        value = json.dumps({"privateUrls": f"List({url})", "secureUrls": f"List({url})",
                            "privateUrlCount": 1, "expire": "2099-01-01T00:00:00"})
        return await self.post(self.payload("사진을 보냈습니다.", params={"secureimage": value}))

    async def send_location(self, latitude: float, longitude: float) -> dict[str, Any]:
        value = json.dumps({"latitude": latitude, "longitude": longitude})
        return await self.post(self.payload("위치를 보냈습니다.", params={"location": value}))

    async def open_link(self, start: str) -> dict[str, Any]:
        """A 카카오톡 채널 button that opens the bot with a start parameter."""
        return await self.post(self.payload("시작하기", extra={"start": start}))
