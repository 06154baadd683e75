"""Linked identities: one-time codes, joining two people, counts that never double."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from sqlalchemy import func, select

from bots.server import conversation_engine
from core import commands as cc
from core.adapters.orm import Follow, Identity, Proposal, Support
from core.adapters.orm_campaigns import Ballot, Participation, Survey
from core.adapters.orm_people import PersonMerge
from core.bootstrap import Core
from core.campaigns import commands as camp
from core.campaigns.errors import AlreadyVoted
from core.domain.errors import AlreadyDone
from core.limits import LINK_GUESSES_ALL, Limited, Limits
from core.people.commands import IssueLinkCode, RedeemLinkCode, UnlinkIdentity
from core.people.handlers import GUESSES_PER_PERSON, normalise_code
from core.ports import StateKey
from core.ratelimit import MemoryRateLimiter
from tests.conftest import make_settings
from tests.support import ManualClock
from tests.support_chat import Chat

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "surveys"
SURVEY = (EXAMPLES / "transport-survey.yaml").read_text(encoding="utf-8")  # anonymous
POLL = (EXAMPLES / "library-hours-poll.yaml").read_text(encoding="utf-8")  # identified
ANSWERS = {"mode": "1", "satisfaction": 4, "comment": "좋아요"}


async def person(core: Core, name: str, channel: str = "web") -> int:
    return int(await core.execute(
        cc.EnsureIdentity(channel=channel, external_id=name, address=f"addr-{name}")
    ))


async def proposal(core: Core, author: int) -> str:
    return str(await core.execute(cc.SubmitProposal(
        person_id=author, title="버스 정류장 그늘막",
        body="여름에 너무 덥습니다. 그늘막을 놓아 주세요.",
        category="transport",
    )))


async def count(core: Core, model, *where) -> int:  # type: ignore[no-untyped-def]
    async with core.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(model).where(*where)))
                   .scalar_one())


async def scalar(core: Core, stmt):  # type: ignore[no-untyped-def]
    async with core.db.read() as s:
        return (await s.execute(stmt)).scalar_one()


def code_in(text: str) -> str:
    found = re.search(r"\b(\d{6})\b", text)
    assert found, text
    return found.group(1)


async def test_link_web_and_telegram_in_the_chat_counts_once(core: Core) -> None:
    engine = conversation_engine(core)
    web = Chat(engine, channel="web", user_id="w1")
    tg = Chat(engine, channel="telegram", user_id="t1")
    await web.send("안녕하세요")
    await tg.send("안녕하세요")
    async with core.db.read() as s:
        ids = dict((await s.execute(select(Identity.channel, Identity.person_id))).all())
    assert len(ids) == 2
    web_person, tg_person = ids["web"], ids["telegram"]
    assert web_person != tg_person
    author = await person(core, "author")
    tracking = await proposal(core, author)
    survey_id = await core.campaigns.create_survey_from_yaml(SURVEY, actor="t")
    # each identity, still two people, supports and answers
    await core.execute(cc.SupportProposal(person_id=web_person, tracking=tracking))
    await core.execute(cc.SupportProposal(person_id=tg_person, tracking=tracking))
    for pid in (web_person, tg_person):
        await core.execute(camp.CastBallot(survey_id=survey_id, person_id=pid, answers=ANSWERS,
                                           channel="web"))
    await web.send(tracking)  # the proposal screen counts people: two, for now
    assert "공감: 2명" in web.text
    shown = await tg.command("link")
    code = code_in(shown[-1].text)
    assert "10" in shown[-1].text
    answer = await web.send(f"연결 {code}")
    text = "\n".join(r.text for r in answer)
    assert "연결되었습니다" in text and "2건은 한 번만" in text  # the support and the ballot
    # one person now, whichever channel speaks
    async with core.db.read() as s:
        owners = set((await s.execute(select(Identity.person_id).where(
            Identity.external_id.in_(("w1", "t1"))))).scalars())
    assert owners == {tg_person}
    assert await scalar(core, select(Proposal.support_count).where(
        Proposal.tracking == tracking)) == 1
    assert await count(core, Support) == 1
    assert await count(core, Participation, Participation.survey_id == survey_id) == 1
    await web.send(tracking)  # the screen counts the one person once
    assert "공감: 1명" in web.text and "공감: 2명" not in web.text
    # neither channel can add a second support or ballot
    for _ in ("web", "telegram"):
        try:
            await core.execute(cc.SupportProposal(person_id=tg_person, tracking=tracking))
        except AlreadyDone:
            pass
        else:
            raise AssertionError("a second support counted")
    try:
        await core.execute(camp.CastBallot(survey_id=survey_id, person_id=tg_person,
                                           answers=ANSWERS, channel="web"))
    except AlreadyVoted:
        pass
    else:
        raise AssertionError("a second ballot counted")
    # the web conversation now speaks for the joined person
    state = await core.state.get(StateKey("web", "w1"))
    assert state is not None and state["person_id"] == tg_person
    # the code is spent
    again = await Chat(engine, channel="kakao", user_id="k1").send(f"연결 {code}")
    assert "이미 쓰인" in again[-1].text
    # the merge is on record
    (merge,) = await core.people.merges()
    assert (merge.survivor_id, merge.merged_id) == (tg_person, web_person)
    assert merge.summary["supports_dropped"] == 1
    assert merge.summary["anonymous_duplicates"] == 1


async def test_merging_two_supporters_leaves_one_support_and_one_ballot(core: Core) -> None:
    a, b = await person(core, "a", "web"), await person(core, "b", "telegram")
    author = await person(core, "author")
    tracking = await proposal(core, author)
    other = await proposal(core, author)
    poll_id = await core.campaigns.create_survey_from_yaml(POLL, actor="t")
    await core.execute(cc.SupportProposal(person_id=b, tracking=tracking))  # b first
    core.clock.advance(minutes=1)  # type: ignore[attr-defined]
    await core.execute(cc.SupportProposal(person_id=a, tracking=tracking))
    await core.execute(cc.SupportProposal(person_id=b, tracking=other))
    await core.execute(camp.CastBallot(survey_id=poll_id, person_id=b, answers={"q1": ["2"]},
                                       channel="telegram"))
    core.clock.advance(minutes=1)  # type: ignore[attr-defined]
    await core.execute(camp.CastBallot(survey_id=poll_id, person_id=a, answers={"q1": ["3"]},
                                       channel="web"))
    first_support = await scalar(core, select(func.min(Support.created_at)).where(
        Support.person_id == b))
    code = await core.execute(IssueLinkCode(person_id=a))
    result = await core.execute(RedeemLinkCode(person_id=b, code=code, channel="telegram"))
    assert result.summary is not None
    s = result.summary
    assert (s.survivor_id, s.merged_id) == (a, b)
    assert (s.supports, s.supports_dropped, s.ballots_dropped) == (1, 1, 1)
    counts = dict(await _rows(core, select(Proposal.tracking, Proposal.support_count)))
    assert counts == {tracking: 1, other: 1}
    assert await count(core, Support, Support.person_id == a) == 2
    assert await count(core, Support, Support.person_id == b) == 0
    # the earliest support (b's) is the one kept
    kept = await scalar(core, select(Support.created_at).where(
        Support.person_id == a, Support.proposal_id == select(Proposal.id).where(
            Proposal.tracking == tracking).scalar_subquery()))
    assert kept == first_support
    # one ballot for the one person: the earliest answer (b's "2")
    (ballot,) = await _rows(core, select(Ballot.person_id, Ballot.answers).where(
        Ballot.survey_id == poll_id))
    assert ballot[0] == a and ballot[1]["q1"] == ["2"]
    assert await scalar(core, select(Survey.ballot_count).where(Survey.id == poll_id)) == 1
    assert (await core.campaigns.results(poll_id)).ballots == 1
    assert await count(core, Participation, Participation.survey_id == poll_id) == 1
    assert await count(core, Follow, Follow.person_id == b) == 0
    assert await count(core, PersonMerge) == 1


async def _rows(core: Core, stmt):  # type: ignore[no-untyped-def]
    async with core.db.read() as s:
        return list((await s.execute(stmt)).all())


async def test_codes_cannot_be_guessed_reused_or_used_late(core: Core, clock: ManualClock) -> None:
    a, b, c = await person(core, "a"), await person(core, "b"), await person(core, "c")
    code = await core.execute(IssueLinkCode(person_id=a))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(GUESSES_PER_PERSON):
        r = await core.execute(RedeemLinkCode(person_id=b, code=wrong, channel="web"))
        assert r.refused == "invalid"
    # the limit holds even for the right code now, and it survives (it is in the database)
    r = await core.execute(RedeemLinkCode(person_id=b, code=code, channel="web"))
    assert r.refused == "too_many"
    # the code was not spent by the refused guess: someone else can still use it
    r = await core.execute(RedeemLinkCode(person_id=c, code=code, channel="telegram"))
    assert r.summary is not None
    # reuse
    r = await core.execute(RedeemLinkCode(person_id=b, code=code, channel="web"))
    assert r.refused in ("invalid", "too_many")
    clock.advance(minutes=11)  # the guesses age out of the window
    r = await core.execute(RedeemLinkCode(person_id=b, code=code, channel="web"))
    assert r.refused == "invalid"
    # expiry: 10 minutes
    late = await core.execute(IssueLinkCode(person_id=a))
    clock.advance(minutes=10, seconds=1)
    r = await core.execute(RedeemLinkCode(person_id=b, code=late, channel="web"))
    assert r.refused == "invalid"
    on_time = await core.execute(IssueLinkCode(person_id=a))
    clock.advance(minutes=9, seconds=59)
    r = await core.execute(RedeemLinkCode(person_id=b, code=on_time, channel="web"))
    assert r.summary is not None
    # a new code spends the person's older one
    first = await core.execute(IssueLinkCode(person_id=a))
    await core.execute(IssueLinkCode(person_id=a))
    d = await person(core, "d")
    assert (await core.execute(RedeemLinkCode(person_id=d, code=first, channel="web"))
            ).refused == "invalid"
    # own code
    own = await core.execute(IssueLinkCode(person_id=d))
    assert (await core.execute(RedeemLinkCode(person_id=d, code=own, channel="web"))
            ).refused == "same_person"


async def test_guesses_take_the_rate_limit_per_person_and_for_everyone(tmp_path: Path) -> None:
    limits = Limits(MemoryRateLimiter(), settings=make_settings(tmp_path))
    for _n in range(5):
        await limits.check(RedeemLinkCode(person_id=1, code="000000", channel="web"))
    try:
        await limits.check(RedeemLinkCode(person_id=1, code="000000", channel="web"))
    except Limited as err:
        assert err.key == "limits.link_guesses"
    else:
        raise AssertionError("no per-person limit")
    # many fresh sessions share one global budget
    refused = 0
    for pid in range(2, 2 + LINK_GUESSES_ALL + 10):
        try:
            await limits.check(RedeemLinkCode(person_id=pid, code="000000", channel="web"))
        except Limited:
            refused += 1
    assert refused == 10 + 5  # the first person's 5 took from the same global minute
    await limits.close()


def test_hostile_code_texts() -> None:
    assert normalise_code("123 456") == "123456"
    assert normalise_code("１２３４５６") == "123456"
    assert normalise_code("012345") == "012345"
    for bad in ("12345", "1234567", "12a456", "", "1" * 10_000, "١٢٣٤٥٦x", "-------"):
        assert normalise_code(bad) is None


async def test_unlink_gives_the_identity_back_its_own_person(core: Core) -> None:
    engine = conversation_engine(core)
    web = Chat(engine, channel="web", user_id="w9")
    tg = Chat(engine, channel="telegram", user_id="t9")
    await web.send("안녕하세요")
    code = code_in((await tg.command("link"))[-1].text)
    await web.command("link", code)
    state_tg = await core.state.get(StateKey("telegram", "t9"))
    assert state_tg is not None
    pid = int(state_tg["person_id"])
    rows = await core.people.identities_of(pid)
    assert {r.channel for r in rows} == {"web", "telegram"}
    listed = await tg.pick("link:list")
    assert "웹 채팅" in listed[-1].text
    web_row = next(r for r in rows if r.channel == "web")
    await tg.pick(f"link:unlink:{web_row.id}")
    assert "연결을 끊었습니다" in tg.last[0].text
    assert [r.channel for r in await core.people.identities_of(pid)] == ["telegram"]
    back = await web.send("안녕하세요")
    assert back
    (web_now,) = await _rows(core, select(Identity.person_id).where(Identity.channel == "web"))
    assert web_now[0] != pid
    try:
        await core.execute(UnlinkIdentity(person_id=pid, identity_id=rows[0].id
                                          if rows[0].channel == "telegram" else rows[1].id))
    except Exception as err:  # noqa: BLE001
        assert type(err).__name__ == "LastIdentity"
    else:
        raise AssertionError("the last identity was unlinked")


async def test_at_the_default_level_a_web_guest_links_telegram_and_then_counts_once(
    database_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    from core.bootstrap import bootstrap
    from core.participation import NeedsParticipation

    core = await bootstrap(make_settings(tmp_path, database_url=database_url,
                                         participation_level="messenger"), clock=clock)
    try:
        engine = conversation_engine(core)
        author = await person(core, "author")
        tracking = await proposal(core, author)
        tg_person = int(await core.execute(cc.EnsureIdentity(
            channel="telegram", external_id="t5", address="telegram-t5", level="messenger")))
        web = Chat(engine, channel="web", user_id="w5")
        tg = Chat(engine, channel="telegram", user_id="t5")
        await web.send(tracking)
        await web.pick(f"p:{tracking}:support")
        refused = web.last[-1]
        assert "메신저" in refused.text and "다른 메신저 연결" in refused.text
        assert refused.choices[0].id == "link:start"  # taken there, not to a dead end
        shown = await web.pick("link:start")
        code = code_in(shown[-1].text)
        await tg.send(f"연결 {code}")
        assert "연결되었습니다" in tg.last[-1].text
        state = await core.state.get(StateKey("web", "w5"))
        assert state is not None
        web_person = int(state["person_id"])
        # the web session is now the one person with a messenger: its support counts, once
        assert await core.execute(cc.SupportProposal(person_id=web_person, tracking=tracking)) == 1
        tg_state = await core.state.get(StateKey("telegram", "t5"))
        assert tg_state is not None and int(tg_state["person_id"]) == web_person
        try:
            await core.execute(cc.SupportProposal(person_id=web_person, tracking=tracking))
        except AlreadyDone:
            pass
        else:
            raise AssertionError("a second support counted")
        # the emptied person (joined into the other) can never count again
        try:
            await core.execute(cc.SupportProposal(person_id=tg_person, tracking=tracking))
        except NeedsParticipation:
            pass
        else:
            raise AssertionError("the emptied person counted")
        assert await scalar(core, select(Proposal.support_count).where(
            Proposal.tracking == tracking)) == 1
    finally:
        await core.stop()


async def test_merge_report_lists_merges(
    sqlite_url: str, tmp_path: Path, capsys, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    from bots import cli
    from core.bootstrap import bootstrap

    core = await bootstrap(make_settings(tmp_path, database_url=sqlite_url))
    try:
        a, b = await person(core, "ra"), await person(core, "rb", "telegram")
        code = await core.execute(IssueLinkCode(person_id=a))
        await core.execute(RedeemLinkCode(person_id=b, code=code, channel="telegram"))
    finally:
        await core.stop()
    monkeypatch.setenv("GONGNON_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("GONGNON_DATA_DIR", str(tmp_path))
    rc = await asyncio.to_thread(cli.main, ["people", "merge-report"])
    assert rc == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert (line["kept_person"], line["merged_person"], line["channel"]) == (a, b, "telegram")
    assert line["identities"] == 1
