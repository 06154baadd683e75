"""Polls and surveys in the core: one ballot per person, anonymity, changes, closing, CSV."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core import commands as cc
from core.adapters.orm_campaigns import Ballot, Participation, Survey
from core.bootstrap import Core
from core.campaigns import commands as c
from core.campaigns.errors import AlreadyVoted, SurveyClosed
from core.campaigns.loader import SurveyErrors
from core.campaigns.service import CampaignService
from core.domain.errors import AlreadyDone, InvalidField
from tests.support import ManualClock

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "surveys"
SURVEY = (EXAMPLES / "transport-survey.yaml").read_text(encoding="utf-8")
POLL = (EXAMPLES / "library-hours-poll.yaml").read_text(encoding="utf-8")
ANSWERS = {"mode": "1", "satisfaction": 4, "comment": "=HYPERLINK(\"x\") 그늘막이 필요합니다"}


async def person(core: Core, name: str, channel: str = "web") -> int:
    return int(await core.execute(
        cc.EnsureIdentity(channel=channel, external_id=name, address=f"addr-{name}")
    ))


def service(core: Core) -> CampaignService:
    return core.campaigns


async def count(core: Core, model, *where) -> int:  # type: ignore[no-untyped-def]
    async with core.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(model).where(*where)))
                   .scalar_one())


async def test_double_tap_storm_leaves_one_ballot(core: Core) -> None:
    survey_id = await service(core).create_survey_from_yaml(SURVEY, actor="test")
    pid = await person(core, "alice")
    cast = c.CastBallot(survey_id=survey_id, person_id=pid, answers=ANSWERS, channel="web")
    outcomes = await asyncio.gather(*(core.execute(cast) for _ in range(100)),
                                    return_exceptions=True)
    assert [o for o in outcomes if o == "cast"] == ["cast"]
    assert all(isinstance(o, AlreadyVoted) for o in outcomes if o != "cast")
    assert await count(core, Ballot, Ballot.survey_id == survey_id) == 1
    assert await count(core, Participation, Participation.survey_id == survey_id) == 1
    assert (await service(core).results(survey_id)).ballots == 1


async def test_identified_poll_storm_with_changes_still_one_ballot(core: Core) -> None:
    poll_id = await service(core).create_survey_from_yaml(POLL, actor="test")
    pid = await person(core, "bob")
    casts = [
        c.CastBallot(survey_id=poll_id, person_id=pid, answers={"q1": [str(1 + i % 4)]},
                     channel="telegram" if i % 2 else "web")
        for i in range(100)
    ]
    outcomes = await asyncio.gather(*(core.execute(x) for x in casts))
    assert outcomes.count("cast") == 1 and outcomes.count("changed") == 99
    assert await count(core, Ballot, Ballot.survey_id == poll_id) == 1


async def test_anonymous_ballot_names_nobody_and_export_has_no_person(core: Core) -> None:
    survey_id = await service(core).create_survey_from_yaml(SURVEY, actor="test")
    for name in ("a", "b", "c"):
        await core.execute(c.CastBallot(survey_id=survey_id, person_id=await person(core, name),
                                        answers=ANSWERS, channel="web"))
    async with core.db.read() as s:
        ballots = (await s.execute(select(Ballot))).scalars().all()
        keys = (await s.execute(select(Participation))).scalars().all()
    assert all(b.person_id is None and b.channel is None and b.cast_at is None for b in ballots)
    assert all(p.ballot_id is None and len(p.voter_key) == 64 for p in keys)
    rows = list(csv.reader(io.StringIO(await service(core).export_csv(survey_id))))
    header = rows[0]
    assert header[0] == "ballot" and len(header) == 4
    assert not any(h in header for h in ("person_id", "channel", "cast_at"))
    assert len(rows) == 4
    assert rows[1][1] == "버스" and rows[1][2] == "4"
    assert rows[1][3].startswith("'=HYPERLINK")  # no spreadsheet formulas from citizens
    with pytest.raises(AlreadyVoted):
        await core.execute(c.CastBallot(survey_id=survey_id, person_id=await person(core, "a"),
                                        answers=ANSWERS, channel="web"))


async def test_identified_export_names_people(core: Core) -> None:
    poll_id = await service(core).create_survey_from_yaml(POLL, actor="test")
    pid = await person(core, "dora", channel="telegram")
    await core.execute(c.CastBallot(survey_id=poll_id, person_id=pid,
                                    answers={"q1": ["2", "4"]}, channel="telegram"))
    rows = list(csv.reader(io.StringIO(await service(core).export_csv(poll_id))))
    assert rows[0][:4] == ["ballot", "person_id", "channel", "cast_at"]
    assert rows[1][1:3] == [str(pid), "telegram"] and rows[1][4] == "수요일 | 토요일"


async def test_answers_are_checked(core: Core) -> None:
    survey_id = await service(core).create_survey_from_yaml(SURVEY, actor="test")
    poll_id = await service(core).create_survey_from_yaml(POLL, actor="test")
    pid = await person(core, "eve")
    bad = [
        (survey_id, {"mode": "9", "satisfaction": 3}, "unknown_option"),
        (survey_id, {"mode": "1", "satisfaction": 6}, "scale"),
        (survey_id, {"mode": "1"}, "required"),
        (survey_id, {"mode": "1", "satisfaction": 2, "comment": "x" * 1001}, "too_long"),
        (poll_id, {"q1": ["1", "2", "3"]}, "too_many"),
    ]
    for sid, answers, code in bad:
        with pytest.raises(InvalidField) as err:
            await core.execute(c.CastBallot(survey_id=sid, person_id=pid, answers=answers,
                                            channel="web"))
        assert err.value.code == code
    assert await count(core, Ballot) == 0
    # the optional question may be skipped
    assert await core.execute(c.CastBallot(survey_id=survey_id, person_id=pid,
                                           answers={"mode": "2", "satisfaction": "5"},
                                           channel="web")) == "cast"


async def test_slug_is_unique_and_close_time_must_be_ahead(core: Core, clock: ManualClock) -> None:
    await service(core).create_survey_from_yaml(SURVEY, actor="test")
    with pytest.raises(AlreadyDone):
        await service(core).create_survey_from_yaml(SURVEY, actor="test")
    clock.advance(days=800)
    with pytest.raises(SurveyErrors) as err:  # the validator says which line, before any id
        await service(core).create_survey_from_yaml(POLL, actor="test")
    assert "closes_at" in err.value.lines("en")[0] and "already passed" in err.value.lines("en")[0]


async def test_close_publishes_results_with_chart_and_forgets_participants(
    core: Core, clock: ManualClock
) -> None:
    survey_id = await service(core).create_survey_from_yaml(SURVEY, actor="test")
    voters = [await person(core, f"v{i}") for i in range(3)]
    await person(core, "bystander")
    for i, pid in enumerate(voters):
        await core.execute(c.CastBallot(survey_id=survey_id, person_id=pid, channel="web",
                                        answers={"mode": str(1 + i % 2), "satisfaction": 3 + i}))
    clock.advance(days=800)  # past closes_at
    with pytest.raises(SurveyClosed):
        await core.execute(c.CastBallot(survey_id=survey_id, person_id=voters[0],
                                        answers=ANSWERS, channel="web"))
    await service(core).tick()
    async with core.db.read() as s:
        survey = (await s.execute(select(Survey).where(Survey.id == survey_id))).scalar_one()
        from core.adapters.orm_delivery import Delivery

        deliveries = (await s.execute(select(Delivery))).scalars().all()
    assert survey.status == "closed" and survey.voter_salt is None
    assert sorted(d.person_id for d in deliveries) == sorted(voters)  # not the bystander
    payload = deliveries[0].payload
    assert "최종 결과" in payload["text"] and "(참여 3명)" in payload["text"]
    assert payload["image"]["png"]  # the bar chart rides along
    await service(core).tick()  # idempotent: nothing new
    async with core.db.read() as s:
        assert len((await s.execute(select(Delivery))).scalars().all()) == 3
    results = await service(core).results(survey_id)
    assert results.questions[0].counts == (2, 1, 0, 0)
    assert results.questions[1].average == pytest.approx(4.0)
