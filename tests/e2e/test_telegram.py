"""``gongnon serve`` on Telegram end to end: the real app, PTB, and the fake Bot API over HTTP.

Updates are POSTed to ``/telegram/webhook`` exactly as Telegram does (JSON, secret header), or
served by the fake's ``getUpdates`` for long polling; every reply is read back from the fake as
Telegram would store it (HTML parsed into text + entities).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bots.server import CORE, create_app
from bots.telegram.routes import SECRET_HEADER, TELEGRAM
from core.adapters.orm import Identity
from core.bootstrap import Core
from core.commands import ChangeStatus
from core.domain.model import ProposalStatus
from tests.conftest import make_settings
from tests.fakes.telegram_api import FakeTelegram, SentMessage
from tests.support import eventually

SECRET = "e2e-Secret_token-42"  # noqa: S105 - test value
HOOK = "https://gongnon.example/telegram/webhook"
TRACKING_RE = re.compile(r"P-\d{4}-\d{6}")
JPEG = b"\xff\xd8\xff\xe0" + b"\x00JFIF" + bytes(range(200))


@asynccontextmanager
async def serving(settings: Any, **overrides: Any) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    client = TestClient(TestServer(create_app(settings, **overrides)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


def settings_for(tg: FakeTelegram, tmp_path: Path, database_url: str, **extra: Any) -> Any:
    values: dict[str, Any] = {
        "database_url": database_url,
        "telegram_token": tg.token,
        "telegram_api_url": tg.root,
        "telegram_webhook_url": HOOK,
        "telegram_webhook_secret": SECRET,
        "run_workers": True,
        # Bursts of two or three replies to one chat are fine on Telegram; the delivery
        # engine's 1/s default would only slow these tests down (its own tests cover pacing).
        "telegram_chat_rate_per_second": 50.0,
    }
    values.update(extra)
    return make_settings(tmp_path, **values)


@pytest.fixture
async def app(tg: FakeTelegram, tmp_path: Path, database_url: str) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with serving(settings_for(tg, tmp_path, database_url)) as client:
        yield client


class Citizen:
    """One Telegram user talking to the bot through the webhook."""

    def __init__(
        self, client: TestClient, tg: FakeTelegram, user_id: int, locale: str = "ko"
    ) -> None:  # type: ignore[type-arg]
        self.client = client
        self.tg = tg
        self.user_id = user_id
        self.locale = locale
        self.seen = 0

    async def post(self, update: dict[str, Any], *, secret: str | None = SECRET) -> int:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        response = await self.client.post("/telegram/webhook", json=update, headers=headers)
        await self.client.app[TELEGRAM].drain()
        return response.status

    async def send(self, update: dict[str, Any]) -> list[SentMessage]:
        assert await self.post(update) == 200
        return self.new()

    def new(self) -> list[SentMessage]:
        """Bot messages (new or edited) since the last look."""
        messages = [m for m in self.tg.chat(self.user_id)]
        fresh = messages[self.seen :]
        self.seen = len(messages)
        return fresh

    async def say(self, text: str) -> list[SentMessage]:
        return await self.send(
            self.tg.message_update(self.user_id, text=text, language_code=self.locale)
        )

    async def press(self, callback_prefix: str) -> list[SentMessage]:
        message, data = self.button(callback_prefix)
        update = self.tg.callback_update(
            self.user_id, data, message_id=message.message_id, language_code=self.locale
        )
        answered = len(self.tg.callback_answers)
        assert await self.post(update) == 200
        assert len(self.tg.callback_answers) == answered + 1  # the spinner always stops
        return self.edited_or_new(message)

    def edited_or_new(self, pressed: SentMessage) -> list[SentMessage]:
        fresh = self.new()
        return ([pressed] if pressed.edits else []) + fresh

    def button(self, callback_prefix: str) -> tuple[SentMessage, str]:
        for message in reversed(self.tg.chat(self.user_id)):
            markup = message.reply_markup or {}
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    if str(button.get("callback_data", "")).startswith(callback_prefix):
                        return message, str(button["callback_data"])
        raise AssertionError(f"no button {callback_prefix!r} in the chat")

    def reply_keyboard(self) -> list[str]:
        markup = self.tg.last(self.user_id).reply_markup or {}
        return [b["text"] for row in markup.get("keyboard", []) for b in row]


def text_of(messages: list[SentMessage]) -> str:
    return "\n".join(m.text for m in messages)


async def submit_proposal(citizen: Citizen, title: str = "버스 정류장 그늘막 설치") -> str:
    assert "공론" in text_of(await citizen.say("/start"))
    await citizen.press("menu:submit")
    await citizen.say(title)
    asked = await citizen.say(
        "여름에 버스를 기다리는 시민들이 햇볕에 너무 오래 노출됩니다. 그늘막이 필요합니다."
    )
    if "비슷한 제안이 이미 있습니다" in text_of(asked):
        await citizen.press("sim:new")
    asked = await citizen.press("cat:transport")
    assert "📎" in text_of(asked)  # one step for region, photo and location: the photo hint
    assert citizen.reply_keyboard()[0].startswith("📍")  # and the location, asked natively
    await citizen.say("서울")
    await citizen.send(citizen.tg.photo_update(citizen.user_id, JPEG, caption="정류장"))
    await citizen.send(citizen.tg.location_update(citizen.user_id, 37.5665, 126.978))
    review = await citizen.say("다 됐어요")
    assert title in text_of(review)
    done = await citizen.press("rev:confirm")
    found = TRACKING_RE.search(text_of(done))
    assert found, text_of(done)
    return found.group(0)


async def test_submit_support_follow_and_hear_about_a_status_change(
    app: TestClient,
    tg: FakeTelegram,  # type: ignore[type-arg]
) -> None:
    core: Core = app.app[CORE]
    # start-up configured Telegram: webhook with the secret, commands in two languages
    assert tg.webhook_url == HOOK and tg.webhook_secret == SECRET
    assert {c["command"] for c in tg.commands[""]} >= {"start", "new", "mine"}
    assert tg.commands["en"][0]["description"] == "Start Gongnon"

    author = Citizen(app, tg, 1001)
    tracking = await submit_proposal(author)
    view = await core.views.proposal(tracking)
    assert view is not None
    kinds = sorted(a.kind for a in view.attachments)
    assert kinds == ["location", "photo"]
    photo = next(a for a in view.attachments if a.kind == "photo")
    assert photo.ref is not None and photo.ref.startswith("telegram:AgAC")

    fan = Citizen(app, tg, 2002, locale="en")
    opened = await fan.say(f"/start p_{tracking}")
    assert tracking in text_of(opened)
    supported = await fan.press(f"p:{tracking}:support")
    assert "1" in text_of(supported)

    watcher = Citizen(app, tg, 3003)
    await watcher.say(f"/start p_{tracking}")
    followed = await watcher.press(f"p:{tracking}:follow")
    assert "알려 드리겠습니다" in text_of(followed)
    assert (await core.views.proposal(tracking)).support_count == 1  # type: ignore[union-attr]

    before = {u: len(tg.chat(u)) for u in (1001, 2002, 3003)}
    await core.execute(
        ChangeStatus(
            tracking=tracking,
            status=ProposalStatus.UNDER_REVIEW,
            reason="담당 부서에서 <검토> & 확인 중",
            actor="slack:U1",
            source="slack",
        )
    )
    await eventually(lambda: all(len(tg.chat(u)) > before[u] for u in before))
    assert "검토 중" in tg.last(1001).text and "<검토> & 확인" in tg.last(1001).text
    assert "Under review" in tg.last(2002).text
    assert "검토 중" in tg.last(3003).text
    # the notification's buttons work like any other
    assert Citizen(app, tg, 3003).button(f"p:{tracking}:show")


async def test_no_draft_is_lost_on_telegram(
    app: TestClient,  # type: ignore[type-arg]
    tg: FakeTelegram,  # type: ignore[type-arg]
) -> None:
    """The issue's draft-loss paths through the real webhook, PTB and the fake Bot API."""
    citizen = Citizen(app, tg, 7007)
    await citizen.say("/start")
    await citizen.press("menu:submit")
    await citizen.say("버스 정류장 그늘막 설치")
    for leave in ("/menu", "도움말", "메뉴", "/start p_P-2026-000099"):  # leaving keeps it
        await citizen.say(leave)
        offered = text_of(await citizen.say("/new"))
        assert "쓰시던 제안이 있습니다. 이어서 쓰시겠어요?" in offered
        assert "버스 정류장 그늘막 설치" in offered
        asked = await citizen.press("draft:resume")
        assert "어떻게 바뀌면 좋을지" in text_of(asked)
    long = "그늘막이 필요합니다. " * 320  # 3,520 characters: refused, and quoted back to copy
    refused = text_of(await citizen.say(long))
    assert "내용이 너무 깁니다" in refused and long.strip() in refused
    back = text_of(await citizen.say("이전"))  # shows the title, with "그대로 두기"
    assert "지금 제목: 버스 정류장 그늘막 설치" in back
    asked = await citizen.press("keep:title")
    assert "어떻게 바뀌면 좋을지" in text_of(asked)
    await citizen.say("여름에 버스를 기다리는 시민들이 햇볕에 너무 오래 서 있습니다.")
    await citizen.press("cat:transport")
    review = await citizen.say("없어요")
    assert "이대로 제출할까요?" in text_of(review)
    asked = await citizen.say("취소")  # now it asks first
    assert "쓰시던 제안을 지울까요?" in text_of(asked)
    kept = await citizen.press("delete:no")
    assert "이대로 제출할까요?" in text_of(kept) and "버스 정류장 그늘막 설치" in text_of(kept)
    done = await citizen.press("rev:confirm")
    assert TRACKING_RE.search(text_of(done))


async def test_replayed_updates_are_processed_once(
    app: TestClient,
    tg: FakeTelegram,  # type: ignore[type-arg]
) -> None:
    citizen = Citizen(app, tg, 4004)
    update = tg.message_update(4004, text="/start")
    statuses = await asyncio.gather(*(citizen.post(update) for _ in range(5)))
    assert statuses == [200] * 5
    await citizen.post(update)  # and once more later, as Telegram redelivers
    assert len(citizen.new()) == 1


@pytest.mark.parametrize(("secret", "status"), [(None, 401), ("wrong-secret", 403), ("", 403)])
async def test_missing_or_wrong_secret_is_refused(
    app: TestClient,
    tg: FakeTelegram,
    secret: str | None,
    status: int,  # type: ignore[type-arg]
) -> None:
    citizen = Citizen(app, tg, 5005)
    calls = len(tg.calls)
    assert await citizen.post(tg.message_update(5005, text="/start"), secret=secret) == status
    assert len(tg.calls) == calls and tg.chat(5005) == []
    async with app.app[CORE].db.read() as session:
        assert (await session.execute(select(Identity))).first() is None


async def test_bad_bodies_are_400(app: TestClient) -> None:  # type: ignore[type-arg]
    headers = {SECRET_HEADER: SECRET}
    for body in (b"{not json", b"[1, 2]", b'{"message": {}}'):
        response = await app.post("/telegram/webhook", data=body, headers=headers)
        assert response.status == 400


HOSTILE = [
    "<b>굵게</b> <i>기울임</i>",
    "Tom & Jerry &amp; &lt;tag&gt; &#128512;",
    r"*bold* _italic_ __u__ ~s~ ||spoiler|| `code` ```pre``` [link](http://evil.example)"
    r" \ . ! - = + # ( ) { } > |",
    '<a href="http://evil.example">여기를 누르세요</a>',
    "이모지 😀👍🏽🇰🇷 한국어 문장과 섞어서 보냅니다",
]


async def test_hostile_text_never_breaks_or_injects(
    app: TestClient,
    tg: FakeTelegram,  # type: ignore[type-arg]
) -> None:
    citizen = Citizen(app, tg, 6006)
    await citizen.say("/start")
    for text in HOSTILE:  # at the menu: "not understood", politely
        assert await citizen.say(text), text
    await citizen.press("menu:submit")
    await citizen.say(HOSTILE[0])  # the title
    await citizen.say("\n".join(HOSTILE))  # the body
    await citizen.press("cat:other")
    review = await citizen.say(citizen.reply_keyboard()[1])  # "없음" typed from the keyboard
    assert "\n".join(HOSTILE) in text_of(review)
    huge = "가😀<b>&" * 2500  # 10,000 characters
    answered = await citizen.say(huge)
    assert answered  # a polite hint, never a crash
    for message in tg.chat(6006):
        assert all(e["type"] == "bold" for e in message.entities), message.raw[:80]
        assert "text_link" not in str(message.entities)
    # the title came back verbatim in the review (escaped on the wire, plain for the reader)
    everything = text_of(tg.chat(6006))
    assert HOSTILE[0] in everything and HOSTILE[3] in everything
    assert all(call.status == 200 for call in tg.calls)  # Telegram never refused a message


async def test_every_other_update_type_is_handled(
    app: TestClient,
    tg: FakeTelegram,  # type: ignore[type-arg]
) -> None:
    core: Core = app.app[CORE]
    citizen = Citizen(app, tg, 7007)
    await citizen.say("/start")
    for build in (tg.sticker_update, tg.voice_update, tg.document_update):
        replies = await citizen.send(build(7007))
        assert replies and "스티커" in text_of(replies)
    edited = await citizen.send(tg.message_update(7007, text="고친 글", edited=True))
    assert "수정" in text_of(edited)
    assert await citizen.post(tg.channel_post_update()) == 200
    group = -100777
    assert (
        await citizen.post(
            tg.message_update(7007, text="잡담", chat_id=group, chat_type="supergroup")
        )
        == 200
    )
    assert tg.chat(group) == []
    assert (
        await citizen.post(tg.message_update(7007, text="/start", chat_id=group, chat_type="group"))
        == 200
    )
    assert "1:1" in tg.last(group).text and "t.me/gongnon_test_bot" in tg.last(group).text
    for service in (777000, 1087968824):
        assert await citizen.post(tg.message_update(service, text="/start")) == 200
        assert tg.chat(service) == []
    assert await citizen.post(tg.my_chat_member_update(7007, status="kicked")) == 200
    async with core.db.read() as session:
        identity = (
            await session.execute(select(Identity).where(Identity.address == "7007"))
        ).scalar_one()
        assert identity.reachable is False
        people = (await session.execute(select(Identity.external_id))).scalars().all()
        assert set(people) == {"7007"}  # service accounts and groups made no identities
    assert await citizen.post(tg.my_chat_member_update(7007, status="member")) == 200
    async with core.db.read() as session:
        identity = (
            await session.execute(select(Identity).where(Identity.address == "7007"))
        ).scalar_one()
        assert identity.reachable is True


async def test_403_on_send_marks_the_person_unreachable(
    app: TestClient,
    tg: FakeTelegram,  # type: ignore[type-arg]
) -> None:
    core: Core = app.app[CORE]
    citizen = Citizen(app, tg, 8008)
    await citizen.say("/start")
    tg.inject_403(description="Forbidden: bot was blocked by the user")
    assert await citizen.post(tg.message_update(8008, text="/menu")) == 200
    await eventually(lambda: tg.calls_to("sendMessage")[-1].status == 403)
    await core.bus.drain()
    async with core.db.read() as session:
        identity = (
            await session.execute(select(Identity).where(Identity.address == "8008"))
        ).scalar_one()
    assert identity.reachable is False


async def test_429_retry_after_is_honoured(
    app: TestClient,
    tg: FakeTelegram,  # type: ignore[type-arg]
) -> None:
    citizen = Citizen(app, tg, 9009)
    tg.inject_429(retry_after=1)
    started = time.monotonic()
    replies = await citizen.say("/start")
    assert replies and "공론" in text_of(replies)
    assert time.monotonic() - started >= 1.0
    attempts = tg.calls_to("sendMessage")
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.0


async def test_polling_survives_a_restart_without_losing_or_repeating(
    tg: FakeTelegram, tmp_path: Path, database_url: str
) -> None:
    settings = settings_for(
        tg, tmp_path, database_url, telegram_webhook_url=None, telegram_webhook_secret=None
    )
    await tg.push_update(tg.message_update(1111, text="/start"))
    async with serving(settings):
        await eventually(lambda: len(tg.chat(1111)) == 1)
        assert tg.calls_to("deleteWebhook")
        await tg.push_update(tg.message_update(2222, text="/start"))
        await eventually(lambda: len(tg.chat(2222)) == 1)
    # while the server is down, someone writes
    await tg.push_update(tg.message_update(3333, text="/start"))
    async with serving(settings):
        await eventually(lambda: len(tg.chat(3333)) == 1)
        await asyncio.sleep(0.2)
    assert [len(tg.chat(u)) for u in (1111, 2222, 3333)] == [1, 1, 1]
    assert tg.pending_updates == 0


async def test_redis_state_dedupes_across_restarts(
    tg: FakeTelegram, tmp_path: Path, database_url: str, redis_url: str
) -> None:
    """Two server lives sharing Redis: a redelivered update is not handled again, and the
    conversation carries on where it was."""
    from core.adapters.state_redis import RedisStateStore

    prefix = f"t{uuid.uuid4().hex[:10]}:"
    settings = settings_for(tg, tmp_path, database_url)
    first = tg.message_update(4242, text="/new")
    async with serving(settings, state=RedisStateStore.from_url(redis_url, prefix=prefix)) as a:
        citizen = Citizen(a, tg, 4242)
        assert "제목" in text_of(await citizen.send(first))
    async with serving(settings, state=RedisStateStore.from_url(redis_url, prefix=prefix)) as b:
        citizen = Citizen(b, tg, 4242)
        citizen.seen = len(tg.chat(4242))
        assert await citizen.post(first) == 200  # Telegram redelivers after the restart
        assert citizen.new() == []
        asked = await citizen.say("버스 정류장 그늘막 설치")  # the title: intake goes on
        assert "어떻게 바뀌면 좋을지" in text_of(asked)
