"""Issue 14 through a fake Kakao i Open Builder, on the real server, engine and database.

A KakaoTalk citizen does what a web citizen does (intake with photo and location and review,
lookup, my proposals, support, follow, feedback, language, consent/STOP, a deep link); a slow
turn goes through the callback; forged, unsigned and wrong-bot requests are refused; status
changes reach Kakao through the Event API when configured and at the next message when not.
Every SkillResponse is checked by the fake (``tests/fakes/kakao.py``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bots.kakao.routes import KAKAO
from bots.server import CORE, create_app
from conversations import FlowPack
from conversations.incoming import Text
from core.commands import ChangeStatus
from core.domain.model import ProposalStatus
from core.messages import Reply
from tests.conftest import make_settings
from tests.fakes.kakao import FakeOpenBuilder, KakaoUser

TRACKING = re.compile(r"P-\d{4}-\d{6}")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 256
SECRET = "kakao-skill-secret-0123456789"


@asynccontextmanager
async def kakao_server(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, kakao: FakeOpenBuilder,
    *, events: bool = False, block: bool = True, packs: tuple[FlowPack, ...] = (), **env: str,
) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    """The server with Kakao on; ``block``: quick replies as ``action: "block"`` (choice ids
    in ``extra``), else ``action: "message"`` (labels come back as utterances)."""
    monkeypatch.setenv("GONGNON_KAKAO_SKILL_SECRET", SECRET)
    if block:
        monkeypatch.setenv("GONGNON_KAKAO_BLOCK_ID", "block-gongnon")
    else:
        monkeypatch.delenv("GONGNON_KAKAO_BLOCK_ID", raising=False)
    monkeypatch.setenv("GONGNON_KAKAO_BOT_ID", kakao.bot_id)
    monkeypatch.setenv("GONGNON_KAKAO_IMAGE_HOSTS", "127.0.0.1")
    if events:
        monkeypatch.setenv("GONGNON_KAKAO_EVENT_API_KEY", kakao.event_key)
        monkeypatch.setenv("GONGNON_KAKAO_EVENT_API_URL", kakao.url)
    else:
        monkeypatch.delenv("GONGNON_KAKAO_EVENT_API_KEY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(f"GONGNON_KAKAO_{name.upper()}", value)
    settings = make_settings(tmp_path, database_url=database_url, run_workers=True,
                             public_url="https://gongnon.example.kr")
    async with TestClient(TestServer(create_app(settings, packs=packs))) as client:
        yield client


def user(client: TestClient, kakao: FakeOpenBuilder, **kw: Any) -> KakaoUser:  # type: ignore[type-arg]
    url = str(client.make_url(f"/kakao/skill/{SECRET}"))
    return KakaoUser(kakao, client.session, url, **kw)


async def submit(citizen: KakaoUser) -> str:
    await citizen.say("안녕하세요")
    assert "제안하기" in citizen.labels
    await citizen.pick("menu:submit")
    await citizen.say("버스 정류장에 그늘막을 설치해 주세요")
    await citizen.say(
        "여름마다 버스를 기다리는 어르신들이 햇볕 아래 오래 서 계십니다. 그늘막이 필요합니다."
    )
    if "sim:new" in citizen.choice_ids:  # a similar proposal exists: a new one anyway
        await citizen.pick("sim:new")
    await citizen.pick("cat:transport")
    await citizen.say("서울")  # region, address, photo and location share one optional step
    await citizen.say("서울시청 앞 버스 정류장")  # a place typed in words
    await citizen.send_photo(PNG)  # the secure image plugin
    await citizen.send_location(37.5665, 126.9780)
    await citizen.pick("ext:done")
    assert "rev:confirm" in citizen.choice_ids, citizen.text
    await citizen.pick("rev:confirm")
    found = TRACKING.search(citizen.text)
    assert found, citizen.text
    return found.group(0)


async def test_a_kakao_citizen_does_what_a_web_citizen_can(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeOpenBuilder() as kakao, kakao_server(
        tmp_path, database_url, monkeypatch, kakao
    ) as client:
        core = client.app[CORE]
        author = user(client, kakao)
        tracking = await submit(author)
        view = await core.views.proposal(tracking)
        assert view is not None and view.title == "버스 정류장에 그늘막을 설치해 주세요"
        assert sorted(a.kind for a in view.attachments) == ["location", "photo"]
        photo = next(a for a in view.attachments if a.kind == "photo")
        assert photo.ref and photo.ref.startswith("kakao:")
        profile = await client.app[KAKAO].profile(author.user_id)
        assert profile == {"plusfriendUserKey": author.plusfriend_key, "isFriend": True}

        await author.say("/mine")  # the same commands as everywhere
        assert tracking in author.text
        await author.say(tracking)
        await author.tap("알림 그만 받기")
        await author.tap("알림 받기")
        await author.tap("의견 남기기")
        await author.say("정류장 위치는 시청 앞입니다.")
        assert "의견을 남겼습니다" in author.text

        neighbour = user(client, kakao)
        await neighbour.say(tracking.lower())  # lookup by number
        assert tracking in neighbour.text
        await neighbour.tap("공감하기")
        view = await core.views.proposal(tracking)
        assert view is not None and view.support_count == 1
        assert [f.body for f in view.feedback] == ["정류장 위치는 시청 앞입니다."]

        # Typing the number of a choice works as on every channel (the numbered fallback).
        await neighbour.say("메뉴")
        await neighbour.say(str(neighbour.labels.index("제안 찾기") + 1))
        assert "접수번호" in neighbour.text or "P-" in neighbour.text

        # Language, consent and STOP.
        await neighbour.say("/language")
        await neighbour.tap("English")
        await neighbour.say("menu")
        assert "1. New propos…" in neighbour.labels  # shortened to 14, numbered in the text
        assert "1. New proposal" in neighbour.text
        await neighbour.say("수신동의")
        assert "You will receive government news" in neighbour.text
        await neighbour.say("STOP")
        assert "not send you government news" in neighbour.text, neighbour.text

        # A 카카오톡 채널 button opens the bot on a proposal (deep link).
        visitor = user(client, kakao)
        await visitor.open_link(f"p_{tracking}")
        assert tracking in visitor.text

        # Hostile text is text: nothing is markup on Kakao, nothing breaks.
        await visitor.say("<b>굵게</b> [링크](http://evil.example) {{#webhook.x}} \u202e")
        assert kakao.refused == []
        assert kakao.validated >= 25


async def test_a_slow_turn_answers_through_the_callback(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow(ctx: Any, payload: Any) -> list[Reply] | None:
        if isinstance(payload, Text) and payload.text == "느린 질문":
            await asyncio.sleep(0.8)
            return [Reply(text="기다려 주셔서 고맙습니다.")]
        return None

    async with FakeOpenBuilder() as kakao, kakao_server(
        tmp_path, database_url, monkeypatch, kakao, reply_budget_seconds="0.3",
        packs=(FlowPack(interceptors=(slow,)),),
    ) as client:
        citizen = user(client, kakao, callbacks=True)
        first = await citizen.say("느린 질문")
        assert first["useCallback"] is True and first["data"]["text"]
        assert "기다려 주셔서 고맙습니다." in citizen.text  # the callback's body
        await citizen.say("메뉴")  # a quick one answers at once, no callback
        assert "제안하기" in citizen.labels

        # Without a callback URL, a slow answer waits for the next message.
        plain = user(client, kakao)
        await plain.say("느린 질문")
        assert "다음에 메시지를" in plain.text
        await client.app[KAKAO].drain()
        await plain.say("메뉴")
        assert "기다려 주셔서 고맙습니다." in plain.text and "새 소식이 1건" in plain.text
        assert kakao.refused == []


async def test_forged_unsigned_and_wrong_bot_requests_are_refused(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeOpenBuilder() as kakao, kakao_server(
        tmp_path, sqlite_url, monkeypatch, kakao, block=False
    ) as client:
        core = client.app[CORE]
        citizen = user(client, kakao)
        body = citizen.payload("안녕하세요")
        for path, status in (
            ("/kakao/skill/wrong-secret-0123456789", 404),
            (f"/kakao/skill/{SECRET[:-1]}", 404),
            ("/kakao/skill/", 404),
            ("/kakao/skill", 404),
        ):
            resp = await client.post(path, json=body)
            assert resp.status == status, path
        other_bot = user(client, kakao, bot_id="someone-elses-bot")
        await other_bot.post(other_bot.payload("안녕하세요"), expect=403)
        no_bot = citizen.payload("안녕하세요")
        del no_bot["bot"]
        await citizen.post(no_bot, expect=403)
        for bad in (b"{oops", b"[]", b'{"userRequest": {}}', b"x" * 100_000):
            resp = await client.post(f"/kakao/skill/{SECRET}", data=bad,
                                     headers={"Content-Type": "application/json"})
            assert resp.status in (400, 413)
        assert await core.views.identity("kakao", citizen.user_id) is None  # none processed
        # A photo from anywhere but the plugin's hosts is refused politely, the draft kept.
        await citizen.say("안녕하세요")
        await citizen.tap("제안하기")
        await citizen.say("공원 가로등 수리")
        await citizen.send_photo(PNG, url="http://169.254.169.254/latest/meta-data")
        assert "받을 수 없습니다" in citizen.text
        await citizen.say("공원 가로등이 밤마다 꺼져 있어 산책하기 무섭습니다. 고쳐 주세요.")
        assert "교통·주택" in " ".join(citizen.labels) or "1." in citizen.text
        assert kakao.refused == []


async def test_status_changes_reach_kakao_by_event_api_or_at_next_contact(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for events in (True, False):
        async with FakeOpenBuilder() as kakao, kakao_server(
            tmp_path / str(events), database_url, monkeypatch, kakao, events=events
        ) as client:
            core = client.app[CORE]
            author = user(client, kakao)
            tracking = await submit(author)
            kakao.fail_next = [429, 500] if events else []
            await core.execute(ChangeStatus(
                tracking=tracking, status=ProposalStatus.UNDER_REVIEW,
                reason="담당 부서에서 현장을 확인하고 있습니다.", actor="slack:U0OFFICIAL",
                source="slack",
            ))
            if events:
                for _ in range(200):
                    if kakao.events_to(author.user_id):
                        break
                    await asyncio.sleep(0.05)
                sent = kakao.events_to(author.user_id)
                assert len(sent) == 1 and tracking in sent[0].data["text"]
                assert "검토 중" in sent[0].data["text"]
                assert sent[0].users == [{"type": "botUserKey", "id": author.user_id}]
            else:
                await asyncio.sleep(0.3)
                assert kakao.events == []
                await author.say("메뉴")
                assert author.text.startswith("새 소식이 1건 있습니다.")
                assert tracking in author.text and "검토 중" in author.text
                await author.say("메뉴")
                assert "새 소식" not in author.text
            assert kakao.refused == []


async def test_a_survey_pushed_through_the_event_api_is_answered_on_kakao(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.campaigns import commands as c
    from core.campaigns.model import Segment
    from tests.campaign_support import SURVEY_YAML

    async with FakeOpenBuilder() as kakao, kakao_server(
        tmp_path, sqlite_url, monkeypatch, kakao, events=True
    ) as client:
        core = client.app[CORE]
        service = core.campaigns
        riders = [user(client, kakao) for _ in range(2)]
        for rider in riders:
            await rider.say("수신동의")
            assert "정부 소식을 받기로 하셨습니다" in rider.text
        survey_id = await service.create_survey_from_yaml(SURVEY_YAML, actor="cli")
        push_id = await core.execute(c.CreatePush(
            name="정류장 설문", message={"ko": "정류장 설문에 참여해 주세요.",
                                    "en": "Please take our bus stop survey."},
            survey_id=survey_id, segment=Segment(), actor="cli"))
        dry = await service.dry_run(push_id)
        assert dry.by_channel == {"kakao": 2}
        assert dry.cost == {"kakao": 30.0} and dry.currency == "KRW"  # 15 KRW a message
        await core.execute(c.StartPush(push_id=push_id, actor="cli"))
        await service.tick()
        for _ in range(200):
            if all(kakao.events_to(r.user_id) for r in riders):
                break
            await asyncio.sleep(0.05)
        for rider in riders:
            pushed = kakao.events_to(rider.user_id)[0].data["text"]
            assert "정류장 설문에 참여해 주세요." in pushed and "1. " in pushed
            await rider.say("1")  # the pushed message's first choice
            assert "질문 1/3" in rider.text, rider.text
            await rider.say("버스")
            await rider.say("5")
            assert "질문 3/3" in rider.text
            await rider.say("그늘막")
            assert "소중한 의견 감사합니다" in rider.text
        results = await service.results(survey_id)
        assert results.ballots == 2
        assert kakao.refused == []
