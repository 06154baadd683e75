"""My data: everything held about one person, and nobody else's (both databases)."""

from __future__ import annotations

import json

from core import commands as cc
from core.bootstrap import Core
from core.campaigns import commands as camp
from core.privacy.commands import ErasePerson
from core.privacy.mydata import my_data, to_json
from tests.campaign_support import POLL_YAML


async def test_my_data_lists_what_is_held_and_only_mine(core: Core) -> None:
    me = await core.execute(cc.EnsureIdentity(channel="telegram", external_id="1",
                                              address="1", display_name="나"))
    other = await core.execute(cc.EnsureIdentity(channel="web", external_id="o", address="o"))
    mine = await core.execute(cc.SubmitProposal(
        person_id=me, title="도서관 연장 운영", body="저녁에도 도서관을 열어 주세요.",
        category="culture"))
    theirs = await core.execute(cc.SubmitProposal(
        person_id=other, title="자전거 도로 정비", body="자전거 도로가 끊겨 있어 위험합니다.",
        category="transport"))
    await core.execute(cc.SupportProposal(person_id=me, tracking=theirs))
    await core.execute(cc.AddFeedback(tracking=theirs, body="찬성합니다 010-1234-5678",
                                      person_id=me))
    await core.execute(cc.AddFeedback(tracking=mine, body="남의 의견", person_id=other))
    await core.execute(camp.SetConsent(person_id=me, opted_in=True, channel="telegram",
                                       source="수신동의"))
    await core.execute(camp.SetSubscription(person_id=me, kind="region", topic="seoul", on=True))
    poll = await core.campaigns.create_survey_from_yaml(POLL_YAML, actor="test")
    await core.execute(camp.CastBallot(survey_id=poll, person_id=me, answers={"q1": ["1"]},
                                       channel="telegram"))

    data = await my_data(core.db, me)
    assert data is not None
    assert [i["channel"] for i in data["identities"]] == ["telegram"]
    assert [p["tracking"] for p in data["proposals"]] == [mine]
    assert data["comments"] == [
        {"tracking": theirs, "body": "찬성합니다 ***-****-****", "at": data["comments"][0]["at"]}
    ]
    assert [s["tracking"] for s in data["supports"]] == [theirs]
    assert sorted(f["tracking"] for f in data["follows"]) == sorted([mine, theirs])
    assert data["ballots"][0]["answers"] == {"q1": ["1"]}
    assert [c["action"] for c in data["consents"]] == ["opt_in"]
    assert data["subscriptions"] == [{"kind": "region", "topic": "seoul"}]
    raw = to_json(data)
    assert "남의 의견" not in raw.decode() and "자전거 도로가 끊겨" not in raw.decode()
    assert json.loads(raw) == data

    await core.execute(ErasePerson(person_id=me))
    assert await my_data(core.db, me) is None
