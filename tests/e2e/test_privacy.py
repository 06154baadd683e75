"""Privacy end to end (real app; fake Telegram, Slack and forum): the notice, the masking the
citizen sees before submitting, "내 정보" as a file, and "delete me"."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bots.server import CORE
from core.bootstrap import Core
from tests.e2e.test_telegram import TRACKING_RE, Citizen, serving, settings_for, text_of
from tests.fakes.telegram_api import FakeTelegram
from tests.privacy_support import text_hits

TITLE = "정류장 그늘막 010-1234-5678"
BODY = "여름에 햇볕이 너무 뜨겁습니다. 주민번호 850315-1234566 로 확인해 주세요."
NEEDLES = ["1234-5678", "850315-", "1234566"]


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


async def test_masked_before_submitting_then_my_data_and_delete_me(
    tg: FakeTelegram, tmp_path: Path, database_url: str
) -> None:
    settings = settings_for(tg, tmp_path, database_url, privacy_notice_enabled=True)
    async with serving(settings) as app:
        core: Core = app.app[CORE]
        citizen = Citizen(app, tg, 4242)
        await citizen.say("/start")
        notice = await citizen.press("menu:submit")
        assert "개인정보 수집·이용 안내" in text_of(notice)
        await citizen.press("notice:agree")
        await citizen.say(TITLE)
        await citizen.say(BODY)
        await citizen.press("cat:transport")
        review = await citizen.say("없어요")  # nothing to add (a reply keyboard on Telegram)
        seen = text_of(review)
        assert "***-****-****" in seen and "******-*******" in seen
        assert "개인정보로 보이는 부분을 가렸습니다: 전화번호 1건, 주민등록번호 1건" in seen
        assert not any(n in seen for n in NEEDLES)
        done = await citizen.press("rev:confirm")
        tracking = TRACKING_RE.search(text_of(done))
        assert tracking is not None
        assert await text_hits(core, NEEDLES) == []

        await citizen.say("/mydata")
        await citizen.press("mydata:download")
        files = [m for m in tg.chat(4242) if m.document is not None]
        assert len(files) == 1 and files[0].file_name == "gongnon-mydata.json"
        data = json.loads(files[0].document or b"{}")
        assert data["proposals"][0]["tracking"] == tracking.group(0)
        assert data["proposals"][0]["title"] == "정류장 그늘막 ***-****-****"

        await citizen.press("mydata:erase")
        await citizen.press("mydata:erase:withdraw")
        gone = await citizen.press("mydata:erase_yes")
        assert "내 정보를 모두 삭제했습니다" in text_of(gone)
        assert await core.views.identity("telegram", "4242") is None
        assert await text_hits(core, ["4242"]) == []


async def test_web_proposal_reaches_slack_forum_and_search_masked(
    tmp_path: Path, database_url: str
) -> None:
    from bots.server import conversation_engine
    from tests.channels.slack_harness import TRIAGE, slack_settings
    from tests.fakes.forum import FakeForum
    from tests.fakes.slack_api import FakeSlack
    from tests.support import eventually
    from tests.support_chat import Chat

    forum = FakeForum(token="forum-token")
    await forum.start()
    try:
        async with FakeSlack() as slack:
            settings = slack_settings(
                tmp_path, database_url, slack, run_workers=True, privacy_notice_enabled=True,
                forum_backend="http", forum_url=forum.url, forum_token="forum-token",
            )
            async with serving(settings) as app:
                core: Core = app.app[CORE]
                chat = Chat(conversation_engine(core), channel="web", user_id="w1")
                await chat.command("start")
                await chat.press("제안하기")
                await chat.press("동의합니다")
                await chat.send(TITLE)
                await chat.send(BODY)
                await chat.pick("cat:transport")
                await chat.pick("ext:done")
                assert "개인정보로 보이는 부분을 가렸습니다" in chat.text
                await chat.press("제출하기")
                [card] = await slack.wait_for("chat.postMessage", 1)
                assert card["channel"] == TRIAGE and "***-****-****" in json.dumps(
                    card, ensure_ascii=False)
                await eventually(lambda: bool(forum.proposals))
                found = await core.views.search("주민번호")
        record = next(iter(forum.proposals.values()))
        texts = [json.dumps(card, ensure_ascii=False), record.title, record.body,
                 *(p.title for p in found)]
        assert "******-*******" in record.body
        assert not any(n in text for n in NEEDLES for text in texts)
    finally:
        await forum.stop()
