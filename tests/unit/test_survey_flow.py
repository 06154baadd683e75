"""Answering surveys in a chat, STOP/START from any state on any channel, topic settings."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bots.server import conversation_engine
from core.adapters.orm_campaigns import Ballot
from core.bootstrap import Core
from tests.campaign_support import POLL_YAML, SURVEY_YAML
from tests.support import ManualClock
from tests.support_chat import Chat


async def survey(core: Core, text: str = SURVEY_YAML) -> int:
    return int(await core.campaigns.create_survey_from_yaml(text, actor="test"))


async def ballots(core: Core) -> int:
    async with core.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(Ballot))).scalar_one())


async def test_survey_one_question_at_a_time(core: Core) -> None:
    survey_id = await survey(core)
    chat = Chat(conversation_engine(core))
    await chat.command("start")
    await chat.pick(f"sv:{survey_id}:start")
    assert "버스 정류장 이용 설문" in chat.text and "질문은 모두 3개" in chat.text
    assert "질문 1/3" in chat.text
    assert chat.labels[:4] == ["버스", "지하철", "자가용", "도보·자전거"]
    await chat.send("지하철")  # a label typed
    assert "질문 2/3" in chat.text and "매우 불만" in chat.labels[0]
    await chat.send("이전")  # back to question 1
    assert "질문 1/3" in chat.text
    await chat.send("2")  # a number typed
    await chat.send("9")  # not a choice: the rule and the same choices again
    assert "1부터 5 사이" in chat.text and "ans:4" in chat.choice_ids
    await chat.send("4")
    assert "질문 3/3" in chat.text and "건너뛰기" in chat.labels
    await chat.press("건너뛰기")
    assert "소중한 의견 감사합니다" in chat.text
    assert await ballots(core) == 1
    results = await core.campaigns.results(survey_id)
    assert results.questions[0].counts == (0, 1, 0, 0)
    assert results.questions[1].counts == (0, 0, 0, 1, 0)
    await chat.pick(f"sv:{survey_id}:start")  # a second time
    assert "이미 참여하셨습니다" in chat.text and await ballots(core) == 1


async def test_free_text_answer_and_english(core: Core) -> None:
    survey_id = await survey(core)
    chat = Chat(conversation_engine(core), user_id="en1", locale="en")
    await chat.pick(f"sv:{survey_id}:start")
    assert "Bus stop survey" in chat.text and "Question 1 of 3" in chat.text
    await chat.press("Walk or bike")
    await chat.send("5")
    assert "Please type your answer." in chat.text
    await chat.send("x" * 1001)
    assert "1000 characters" in chat.text
    await chat.send("A roof and a bench, please.")
    assert "Thank you for your views" in chat.text
    export = await core.campaigns.export_csv(survey_id)
    assert "A roof and a bench, please." in export


async def test_poll_multi_choice_live_results_and_change(core: Core) -> None:
    poll_id = await survey(core, POLL_YAML)
    chat = Chat(conversation_engine(core), channel="telegram", user_id="42")
    await chat.pick(f"sv:{poll_id}:start")
    assert "최대 2개" in chat.text
    await chat.send("1, 3, 4")  # too many
    assert "최대 2개까지" in chat.text
    await chat.send("1")  # toggles Monday
    assert chat.labels[0] == "✓ 월요일"
    await chat.send("4")
    await chat.press("완료")
    assert "참여해 주셔서 감사합니다" in chat.text and "현재 결과" in chat.text
    assert "월요일" in chat.text and "(참여 1명)" in chat.text
    await chat.pick(f"sv:{poll_id}:start")  # identified poll: a change is allowed
    await chat.send("2, 3")
    assert "답을 바꾸었습니다" in chat.text
    results = await core.campaigns.results(poll_id)
    assert results.ballots == 1 and results.questions[0].counts == (0, 1, 1, 0)


async def test_closed_survey_says_so(core: Core, clock: ManualClock) -> None:
    soon = SURVEY_YAML.replace("closes_at: 2027-12-31 18:00", "closes_at: 2026-11-26 12:10")
    survey_id = await survey(core, soon)  # the clock says 12:00 in Seoul
    chat = Chat(conversation_engine(core))
    await chat.pick(f"sv:{survey_id}:start")
    clock.advance(minutes=15)
    await chat.press("버스")
    await chat.send("3")
    await chat.press("건너뛰기")
    assert "마감되었습니다" in chat.text and await ballots(core) == 0
    await chat.pick(f"sv:{survey_id}:start")
    assert "마감되었습니다" in chat.text
    await chat.pick("sv:99999:start")
    assert "찾으시는 설문이 없습니다" in chat.text


@pytest.mark.parametrize(
    ("channel", "stop", "start"),
    [
        ("web", ("text", "수신거부"), ("text", "수신동의")),
        ("telegram", ("command", "stop"), ("command", "start")),
        ("kakao", ("text", "STOP"), ("text", "수신 동의")),
        ("telegram", ("text", "/stop"), ("text", "Subscribe")),
        ("web", ("text", "unsubscribe"), ("text", "opt-in")),
    ],
)
async def test_stop_and_start_from_any_state_on_any_channel(
    core: Core, channel: str, stop: tuple[str, str], start: tuple[str, str]
) -> None:
    survey_id = await survey(core)
    engine = conversation_engine(core)
    chat = Chat(engine, channel=channel, user_id="u1")
    await chat.command("start")
    service = core.campaigns
    await chat.send("수신동의")
    pid = int((await core.state.get(_key(chat)))["person_id"])
    assert await service.consent_of(pid) is True
    for enter in (_in_survey(survey_id), _in_intake()):
        await enter(chat)
        await _say(chat, stop)
        assert "더 보내 드리지 않겠습니다" in chat.text or "any more" in chat.text
        assert await service.consent_of(pid) is False
        await chat.send("아무 말")  # the flow they were in is over
        assert "질문" not in chat.text
        await _say(chat, start)
        assert await service.consent_of(pid) is True


async def test_start_command_opts_back_in_and_shows_the_menu(core: Core) -> None:
    chat = Chat(conversation_engine(core), channel="telegram", user_id="9")
    await chat.command("start")
    assert "캠페인" not in chat.text  # a first /start is not consent
    pid = int((await core.state.get(_key(chat)))["person_id"])
    assert await core.campaigns.consent_of(pid) is None
    await chat.command("stop")
    await chat.command("start")
    assert "다시 보내 드리겠습니다" in chat.text and "menu:submit" in chat.choice_ids
    assert await core.campaigns.consent_of(pid) is True


async def test_topic_settings_flow(core: Core) -> None:
    chat = Chat(conversation_engine(core))
    await chat.command("start")
    await chat.send("정부 소식 받기")  # in the main menu
    assert "받지 않고 계십니다" in chat.text
    await chat.pick("consent:topics")
    await chat.pick("sub:category:transport")
    assert "소식 받기" in chat.text  # reminded that topics need consent too
    assert "✓ 교통·주택" in chat.labels
    await chat.press("완료")
    assert "관심 분야: 교통·주택" in chat.text
    await chat.press("소식 받기")
    assert "받고 계십니다" in chat.text
    await chat.pick("consent:regions")
    await chat.send("부산")  # a label typed, even on the next page of buttons
    await chat.send("완료")
    pid = int((await core.state.get(_key(chat)))["person_id"])
    subs = await core.campaigns.subscriptions_of(pid)
    assert subs == {("category", "transport"), ("region", "busan")}
    await chat.press("소식 그만 받기")
    assert await core.campaigns.consent_of(pid) is False


def _key(chat: Chat):  # type: ignore[no-untyped-def]
    from core.ports import StateKey

    return StateKey(chat.channel, chat.user_id)


def _in_survey(survey_id: int):  # type: ignore[no-untyped-def]
    async def enter(chat: Chat) -> None:
        await chat.pick(f"sv:{survey_id}:start")
        await chat.send("1")
        assert "질문 2/3" in chat.text
    return enter


def _in_intake():  # type: ignore[no-untyped-def]
    async def enter(chat: Chat) -> None:
        await chat.command("start")
        await chat.pick("menu:submit")
        await chat.send("정류장 그늘막 설치")
    return enter


async def _say(chat: Chat, what: tuple[str, str]) -> None:
    kind, value = what
    if kind == "command":
        await chat.command(value)
    else:
        await chat.send(value)

