"""One person, one voice: who may support and vote, at each participation level.

The production default is ``messenger``: 150 fresh web sessions add no support and no ballot;
``guest`` (an operator's explicit choice) counts one per session; ``verified`` needs a
verification. Reading, proposing and writing opinions stay open to everyone. SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bots.server import conversation_engine
from core import commands as cc
from core.adapters.orm import Person, Support
from core.adapters.orm_campaigns import Ballot
from core.bootstrap import Core, bootstrap
from core.campaigns import commands as c
from core.deliberation import commands as dc
from core.participation import NeedsParticipation
from tests.conftest import make_settings
from tests.support import ManualClock
from tests.support_chat import Chat
from tests.unit.test_campaign_ballots import ANSWERS, SURVEY, service

SESSIONS = 150


async def _core(database_url: str, tmp_path: Path, clock: ManualClock, level: str) -> Core:
    settings = make_settings(tmp_path, database_url=database_url, participation_level=level)
    return await bootstrap(settings, clock=clock)


@pytest.fixture
async def default_core(
    database_url: str, tmp_path: Path, clock: ManualClock
) -> AsyncIterator[Core]:
    instance = await _core(database_url, tmp_path, clock, "messenger")
    yield instance
    await instance.stop()


async def _person(core: Core, name: str, channel: str = "web", level: str = "guest") -> int:
    return int(await core.execute(cc.EnsureIdentity(
        channel=channel, external_id=name, address=f"a-{name}", level=level)))


async def _count(core: Core, model: type) -> int:
    async with core.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def _stuff(core: Core, tracking: str, survey_id: int) -> list[BaseException | object]:
    outcomes: list[BaseException | object] = []
    for i in range(SESSIONS):
        pid = await _person(core, f"session-{i}")
        for command in (cc.SupportProposal(tracking=tracking, person_id=pid),
                        c.CastBallot(survey_id=survey_id, person_id=pid, answers=ANSWERS,
                                     channel="web")):
            try:
                outcomes.append(await core.execute(command))
            except NeedsParticipation as err:
                outcomes.append(err)
    return outcomes


async def test_fresh_web_sessions_count_nothing_at_the_default_level(default_core: Core) -> None:
    core = default_core
    assert core.settings.participation_level == "messenger"
    author = await _person(core, "author")
    tracking = await core.execute(cc.SubmitProposal(  # anyone may propose
        person_id=author, title="버스 정류장 그늘막 설치", body="여름 햇볕이 너무 뜨겁습니다. " * 3,
        category="transport"))
    survey_id = await service(core).create_survey_from_yaml(SURVEY, actor="test")
    outcomes = await _stuff(core, tracking, survey_id)
    assert all(isinstance(o, NeedsParticipation) for o in outcomes)
    assert await _count(core, Support) == 0 and await _count(core, Ballot) == 0
    view = await core.views.proposal(tracking)
    assert view is not None and view.support_count == 0
    # a messenger identity counts, once
    messenger = await _person(core, "tg-1", channel="telegram", level="messenger")
    assert await core.execute(cc.SupportProposal(tracking=tracking, person_id=messenger)) == 1
    await core.execute(c.CastBallot(survey_id=survey_id, person_id=messenger, answers=ANSWERS,
                                    channel="telegram"))
    assert await _count(core, Support) == 1 and await _count(core, Ballot) >= 1


async def test_guest_level_counts_one_per_session(
    database_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    core = await _core(database_url, tmp_path, clock, "guest")
    try:
        author = await _person(core, "author")
        tracking = await core.execute(cc.SubmitProposal(
            person_id=author, title="버스 정류장 그늘막 설치",
            body="여름 햇볕이 너무 뜨겁습니다. " * 3, category="transport"))
        survey_id = await service(core).create_survey_from_yaml(SURVEY, actor="test")
        outcomes = await _stuff(core, tracking, survey_id)
        assert not any(isinstance(o, NeedsParticipation) for o in outcomes)
        assert await _count(core, Support) == SESSIONS
        view = await core.views.proposal(tracking)
        assert view is not None and view.support_count == SESSIONS
    finally:
        await core.stop()


async def test_verified_level_needs_a_verification(
    database_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    core = await _core(database_url, tmp_path, clock, "verified")
    try:
        author = await _person(core, "author")
        tracking = await core.execute(cc.SubmitProposal(
            person_id=author, title="버스 정류장 그늘막 설치",
            body="여름 햇볕이 너무 뜨겁습니다. " * 3, category="transport"))
        messenger = await _person(core, "tg-1", channel="telegram", level="messenger")
        with pytest.raises(NeedsParticipation) as caught:
            await core.execute(cc.SupportProposal(tracking=tracking, person_id=messenger))
        assert caught.value.key == "error.participation.verified"
        async with core.db.write() as s:
            await s.execute(update(Person).where(Person.id == messenger)
                            .values(verified_at=clock.now()))
        assert await core.execute(cc.SupportProposal(tracking=tracking, person_id=messenger)) == 1
    finally:
        await core.stop()


async def test_a_later_contact_never_lowers_a_level(default_core: Core) -> None:
    core = default_core
    pid = await _person(core, "x", channel="telegram", level="messenger")
    assert await _person(core, "x", channel="telegram", level="guest") == pid
    author = await _person(core, "author")
    tracking = await core.execute(cc.SubmitProposal(
        person_id=author, title="버스 정류장 그늘막 설치", body="여름 햇볕이 너무 뜨겁습니다. " * 3,
        category="transport"))
    assert await core.execute(cc.SupportProposal(tracking=tracking, person_id=pid)) == 1


async def test_a_guest_is_told_kindly_and_keeps_what_they_wrote(default_core: Core) -> None:
    core = default_core
    author = await _person(core, "author")
    tracking = await core.execute(cc.SubmitProposal(
        person_id=author, title="버스 정류장 그늘막 설치", body="여름 햇볕이 너무 뜨겁습니다. " * 3,
        category="transport"))
    writer = await _person(core, "writer", channel="telegram", level="messenger")
    opinion = await core.execute(cc.AddFeedback(tracking=tracking, body="좋습니다",
                                                person_id=writer, stance="for"))
    chat = Chat(conversation_engine(core), user_id="guest-1")
    await chat.send(tracking)
    await chat.pick(f"p:{tracking}:support")
    assert "메신저(텔레그램, 카카오톡)로 오신 분" in chat.text
    assert "쓰시던 내용은 그대로 있습니다" in chat.text
    # writing an opinion stays open to a guest; 공감 on an opinion follows the rule
    await chat.pick(f"p:{tracking}:feedback")
    await chat.send("저도 찬성합니다")
    assert "의견을 남겼습니다" in chat.text
    guest = await _person(core, "guest-1")
    with pytest.raises(NeedsParticipation):
        await core.execute(dc.SupportOpinion(opinion_id=opinion, person_id=guest))
    english = Chat(conversation_engine(core), user_id="guest-en", locale="en")
    await english.pick(f"p:{tracking}:support")
    assert "count only for people who come through a messenger" in english.text
