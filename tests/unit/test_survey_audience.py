"""Survey audiences: an open survey takes anyone at the participation level; a targeted one
only the people a push sent it to (also across linked identities), politely refused otherwise."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bots.server import conversation_engine
from core.adapters.orm_campaigns import Ballot, SurveyInvitation
from core.bootstrap import Core
from core.campaigns import commands as c
from core.campaigns.errors import NotInvited
from core.campaigns.loader import SurveyErrors, parse_survey
from core.campaigns.model import Segment
from core.people.commands import IssueLinkCode, RedeemLinkCode
from tests.campaign_support import SURVEY_YAML, RecordingSender, citizen, drain
from tests.support_chat import Chat

TARGETED = SURVEY_YAML.replace("anonymous: true", "audience: targeted\nanonymous: true")
ANSWERS = {"mode": "1", "satisfaction": 4, "comment": None}
MESSAGE = {"ko": "정류장 설문에 참여해 주세요.", "en": "Please take our bus stop survey."}


async def count(core: Core, model: type) -> int:
    async with core.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def pushed_survey(core: Core, *names: str) -> int:
    """A targeted survey pushed to the telegram citizens ``names`` (and to nobody else)."""
    for name in names:
        await citizen(core, name, channel="telegram", topics=("transport",))
    survey_id = int(await core.campaigns.create_survey_from_yaml(TARGETED, actor="test"))
    push_id = int(await core.execute(c.CreatePush(
        name="설문", message=MESSAGE, segment=Segment(topics=("transport",)), actor="test",
        survey_id=survey_id,
    )))
    assert await core.execute(c.StartPush(push_id=push_id, actor="test")) == "running"
    await core.campaigns.tick()
    await drain(core)
    return survey_id


def test_audience_in_yaml() -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Seoul")
    assert parse_survey(SURVEY_YAML, tz=tz).audience == "open"  # the default
    assert parse_survey(TARGETED, tz=tz).audience == "targeted"
    with pytest.raises(SurveyErrors) as caught:
        parse_survey(SURVEY_YAML.replace("anonymous: true", "audience: everyone\nanonymous: true"),
                     tz=tz)
    (error,) = caught.value.errors
    assert error.code == "not_one_of" and error.line > 1


async def test_targeted_survey_only_for_those_it_was_sent_to(core: Core) -> None:
    core.register_sender(RecordingSender("telegram"))
    survey_id = await pushed_survey(core, "sent")
    assert await count(core, SurveyInvitation) == 1
    # someone the push never reached: refused kindly in the chat, and in the core
    stranger = Chat(conversation_engine(core), channel="web", user_id="stranger")
    await stranger.pick(f"sv:{survey_id}:start")
    assert "안내를 받으신 분만" in stranger.text and "질문 1/3" not in stranger.text
    english = Chat(conversation_engine(core), channel="web", user_id="en", locale="en")
    await english.pick(f"sv:{survey_id}:start")
    assert "only for the people it was sent to" in english.text
    outsider = await citizen(core, "outsider")
    with pytest.raises(NotInvited):
        await core.execute(c.CastBallot(survey_id=survey_id, person_id=outsider,
                                        answers=ANSWERS, channel="web"))
    # 72 fresh sessions pressing a copied button cast nothing, even at level guest
    engine = conversation_engine(core)
    for n in range(72):
        chat = Chat(engine, channel="web", user_id=f"fresh{n}")
        await chat.pick(f"sv:{survey_id}:start")
        await chat.send("1")
    assert await count(core, Ballot) == 0
    # the one it was sent to answers, once
    sent = Chat(conversation_engine(core), channel="telegram", user_id="sent")
    await sent.pick(f"sv:{survey_id}:start")
    assert "질문 1/3" in sent.text
    await sent.send("1")
    await sent.send("4")
    await sent.press("건너뛰기")
    assert "감사합니다" in sent.text and await count(core, Ballot) == 1
    info = await core.campaigns.survey(survey_id)
    assert info.definition.audience == "targeted" and info.ballots == 1


async def test_open_survey_is_open_to_anyone(core: Core) -> None:
    survey_id = int(await core.campaigns.create_survey_from_yaml(SURVEY_YAML, actor="test"))
    anyone = await citizen(core, "anyone")
    assert await core.execute(c.CastBallot(survey_id=survey_id, person_id=anyone,
                                           answers=ANSWERS, channel="web")) == "cast"


async def test_an_invitation_follows_a_linked_person(core: Core) -> None:
    """Sent to someone's Telegram; they link their web chat and keep the web person: they may
    answer from the web, once for both."""
    core.register_sender(RecordingSender("telegram"))
    web = await citizen(core, "w", channel="web")  # the earlier person survives the merge
    survey_id = await pushed_survey(core, "t")
    async with core.db.read() as s:
        (tg,) = (await s.execute(select(SurveyInvitation.person_id))).scalars().all()
    code = await core.execute(IssueLinkCode(person_id=web))
    result = await core.execute(RedeemLinkCode(person_id=tg, code=code, channel="telegram"))
    assert result.summary is not None and result.summary.survivor_id == web
    async with core.db.read() as s:
        assert (await s.execute(select(SurveyInvitation.person_id))).scalars().all() == [web]
    assert await core.execute(c.CastBallot(survey_id=survey_id, person_id=web,
                                           answers=ANSWERS, channel="web")) == "cast"
