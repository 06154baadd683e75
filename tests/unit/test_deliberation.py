"""Deliberation through the bus: opinions with stances, replies, 공감, pseudonyms, withdrawal,
the support threshold and statement voting, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from core import commands as c
from core.bootstrap import Core, bootstrap
from core.deliberation import commands as dc
from core.deliberation.model import OpinionSort, Stance, Vote
from core.domain.errors import AlreadyDone, InvalidField, NotAllowed, NotFound
from core.domain.model import ProposalStatus
from tests.conftest import make_settings
from tests.support import ManualClock
from tests.unit.test_proposals import person, submit


async def opinion(core: Core, tracking: str, pid: int, body: str, stance: str | None = "for",
                  parent: int | None = None) -> int:
    result = await core.execute(c.AddFeedback(tracking=tracking, body=body, person_id=pid,
                                              stance=stance, parent_id=parent))
    assert isinstance(result, int)
    return result


async def test_opinions_page_by_support_with_pseudonyms_and_replies(core: Core) -> None:
    author = await person(core, "author")
    tracking = await submit(core, author)
    people = [await person(core, f"p{i}") for i in range(8)]
    ids = []
    for i, pid in enumerate(people[:6]):
        stance = ("for", "against", "other")[i % 3]
        ids.append(await opinion(core, tracking, pid, f"의견 {i}", stance))
    # 공감: opinion 4 gets three, opinion 1 gets one
    for pid in people[5:8]:
        await core.execute(dc.SupportOpinion(opinion_id=ids[4], person_id=pid))
    await core.execute(dc.SupportOpinion(opinion_id=ids[1], person_id=people[7]))
    reply = await opinion(core, tracking, people[7], "답글입니다", None, parent=ids[4])
    # a reply to a reply attaches to the opinion itself (one level)
    nested = await opinion(core, tracking, people[0], "답글의 답글", None, parent=reply)

    page = await core.discussions.page(tracking, sort=OpinionSort.TOP, reader=people[7])
    assert page is not None and page.total == 6 and page.pages == 2
    assert page.by_stance == {"for": 2, "against": 2, "other": 2}
    first = page.items[0]
    assert first.id == ids[4] and first.support_count == 3 and first.supported
    assert first.reply_count == 2 and [r.id for r in first.replies] == [reply, nested]
    assert page.items[1].id == ids[1]
    aliases = {item.alias for item in page.items}
    assert all(a is not None and 1000 <= a <= 9999 for a in aliases)
    assert len(aliases) == len(page.items)  # distinct people, distinct pseudonyms
    # a person keeps one pseudonym on a proposal
    again = await opinion(core, tracking, people[4], "한 번 더", "for")
    newest = await core.discussions.page(tracking, sort=OpinionSort.NEW)
    assert newest is not None and newest.items[0].id == again
    assert newest.items[0].alias == first.alias
    second_page = await core.discussions.page(tracking, page=1)
    assert second_page is not None and len(second_page.items) == 2


async def test_pseudonyms_differ_between_proposals(core: Core) -> None:
    author = await person(core, "author")
    a, b = await submit(core, author), await submit(core, author, "다른 제안 제목입니다")
    speakers = [await person(core, f"s{i}") for i in range(5)]
    for pid in speakers:
        await opinion(core, a, pid, "가")
        await opinion(core, b, pid, "나")
    pa = await core.discussions.page(a, size=10)
    pb = await core.discussions.page(b, size=10)
    assert pa is not None and pb is not None
    assert [i.alias for i in pa.items] != [i.alias for i in pb.items]


async def test_support_once_not_own_and_concurrent_taps_count_once(core: Core) -> None:
    author = await person(core, "author")
    tracking = await submit(core, author)
    writer, reader = await person(core, "writer"), await person(core, "reader")
    oid = await opinion(core, tracking, writer, "좋은 생각입니다")
    with pytest.raises(NotAllowed):
        await core.execute(dc.SupportOpinion(opinion_id=oid, person_id=writer))
    results = await asyncio.gather(
        *(core.execute(dc.SupportOpinion(opinion_id=oid, person_id=reader)) for _ in range(10)),
        return_exceptions=True,
    )
    assert sum(1 for r in results if r == 1) == 1
    assert all(isinstance(r, AlreadyDone) for r in results if r != 1)
    page = await core.discussions.page(tracking)
    assert page is not None and page.items[0].support_count == 1


async def test_withdraw_only_own_and_it_leaves_the_page(core: Core) -> None:
    author = await person(core, "author")
    tracking = await submit(core, author)
    writer, other = await person(core, "writer"), await person(core, "other")
    oid = await opinion(core, tracking, writer, "철회할 의견")
    with pytest.raises(NotAllowed):
        await core.execute(dc.WithdrawOpinion(opinion_id=oid, person_id=other))
    await core.execute(dc.WithdrawOpinion(opinion_id=oid, person_id=writer))
    with pytest.raises(AlreadyDone):
        await core.execute(dc.WithdrawOpinion(opinion_id=oid, person_id=writer))
    page = await core.discussions.page(tracking)
    assert page is not None and page.total == 0
    with pytest.raises(NotFound):  # no reply to a withdrawn opinion
        await opinion(core, tracking, other, "답글", None, parent=oid)


async def test_bad_stance_and_foreign_parent_are_refused(core: Core) -> None:
    author = await person(core, "author")
    a, b = await submit(core, author), await submit(core, author, "두 번째 제안 제목입니다")
    pid = await person(core, "x")
    with pytest.raises(InvalidField):
        await opinion(core, a, pid, "의견", "maybe")
    on_b = await opinion(core, b, pid, "의견")
    with pytest.raises(NotFound):
        await opinion(core, a, pid, "답글", None, parent=on_b)


async def test_summary_counts_and_best_for_and_against(core: Core) -> None:
    author = await person(core, "author")
    tracking = await submit(core, author)
    people = [await person(core, f"p{i}") for i in range(6)]
    best_for = await opinion(core, tracking, people[0], "찬성 이유", "for")
    await opinion(core, tracking, people[1], "찬성 둘", "for")
    best_against = await opinion(core, tracking, people[2], "반대 이유", "against")
    for pid in people[3:]:
        await core.execute(dc.SupportOpinion(opinion_id=best_for, person_id=pid))
    await core.execute(dc.SupportOpinion(opinion_id=best_against, person_id=people[5]))
    await opinion(core, tracking, people[4], "답글", None, parent=best_for)
    summary = await core.discussions.summary(tracking)
    assert summary is not None
    assert summary.opinions == 3 and summary.replies == 1
    assert summary.by_stance == {"for": 2, "against": 1}
    assert summary.top_for[0].id == best_for and summary.top_against[0].id == best_against


@pytest.fixture
async def threshold_core(database_url: str, tmp_path: Path, clock: ManualClock) -> Core:
    settings = make_settings(tmp_path, database_url=database_url, support_threshold=3,
                             support_threshold_days=30)
    instance = await bootstrap(settings, clock=clock)
    yield instance  # type: ignore[misc]
    await instance.stop()


async def test_threshold_moves_to_review_once(threshold_core: Core, clock: ManualClock) -> None:
    core = threshold_core
    author = await person(core, "author")
    tracking = await submit(core, author)
    late = await submit(core, author, "오래된 제안의 제목입니다")
    for i in range(2):
        await core.execute(c.SupportProposal(tracking=tracking,
                                             person_id=await person(core, f"s{i}")))
    view = await core.views.proposal(tracking)
    assert view is not None and view.status is ProposalStatus.RECEIVED
    await core.execute(c.SupportProposal(tracking=tracking, person_id=await person(core, "s2")))
    view = await core.views.proposal(tracking)
    assert view is not None and view.status is ProposalStatus.UNDER_REVIEW
    assert view.history[-1].actor == "system:threshold"
    assert re.search(r"3", view.history[-1].reason)
    await core.execute(c.SupportProposal(tracking=tracking, person_id=await person(core, "s3")))
    view = await core.views.proposal(tracking)
    assert view is not None and len(view.history) == 2  # moved once
    # outside the period the rule does not apply
    clock.advance(days=31)
    for i in range(3):
        await core.execute(c.SupportProposal(tracking=late, person_id=await person(core, f"l{i}")))
    view = await core.views.proposal(late)
    assert view is not None and view.status is ProposalStatus.RECEIVED


async def test_statement_voting_round(core: Core) -> None:
    author = await person(core, "author")
    tracking = await submit(core, author)
    citizen = await person(core, "citizen")
    with pytest.raises(NotAllowed):  # only the author or an official opens it
        await core.execute(dc.OpenStatements(tracking=tracking, person_id=citizen))
    with pytest.raises(NotAllowed):  # not open yet
        await core.execute(dc.AddStatement(tracking=tracking, text="버스를 늘려야 한다",
                                           person_id=citizen))
    opened = await core.execute(dc.OpenStatements(
        tracking=tracking, actor="slack:U1", statements=("정류장에 그늘이 필요하다",
                                                         "예산은 다른 곳에 써야 한다")))
    assert opened is True and await core.discussions.statements_open(tracking)
    own = await core.execute(dc.AddStatement(tracking=tracking, text="밤에도 조명이 필요하다",
                                             person_id=citizen))
    first = await core.discussions.next_statement(tracking, citizen)
    assert first is not None and first.text == "정류장에 그늘이 필요하다"
    await core.execute(dc.VoteStatement(statement_id=first.id, person_id=citizen,
                                        vote=Vote.AGREE))
    with pytest.raises(AlreadyDone):
        await core.execute(dc.VoteStatement(statement_id=first.id, person_id=citizen,
                                            vote=Vote.DISAGREE))
    second = await core.discussions.next_statement(tracking, citizen)
    assert second is not None and second.id != first.id
    with pytest.raises(NotFound):  # a pending statement cannot be voted on
        await core.execute(dc.VoteStatement(statement_id=own, person_id=author,
                                            vote=Vote.AGREE))
    await core.execute(dc.ModerateStatement(statement_id=own, approve=True, actor="slack:U1"))
    listed = await core.discussions.statements(tracking)
    assert [s.agree for s in listed] == [1, 0, 0]
    with pytest.raises(InvalidField):
        await core.execute(dc.AddStatement(tracking=tracking, text="가" * 141,
                                           person_id=citizen))


async def test_statement_analysis_from_votes(core: Core) -> None:
    author = await person(core, "author")
    tracking = await submit(core, author)
    await core.execute(dc.OpenStatements(tracking=tracking, actor="slack:U1",
                                         statements=("모두 동의", "A만 동의", "B만 동의")))
    statements = await core.discussions.statements(tracking)
    ids = [s.id for s in statements]
    for camp in ("a", "b"):
        for i in range(8):
            pid = await person(core, f"{camp}{i}")
            plan = (Vote.AGREE, Vote.AGREE if camp == "a" else Vote.DISAGREE,
                    Vote.DISAGREE if camp == "a" else Vote.AGREE)
            for sid, vote in zip(ids, plan, strict=True):
                await core.execute(dc.VoteStatement(statement_id=sid, person_id=pid, vote=vote))
    result = await core.discussions.analysis(tracking)
    assert result is not None and result.groups == 2 and result.participants == 16
    assert [s.statement_id for s in result.consensus] == [str(ids[0])]
    assert {s.statement_id for s in result.divisive} == {str(ids[1]), str(ids[2])}


async def test_news_for_the_daily_summary(core: Core, clock: ManualClock) -> None:
    author = await person(core, "author")
    tracking = await submit(core, author)
    follower, writer = await person(core, "follower"), await person(core, "writer")
    await core.execute(c.FollowProposal(tracking=tracking, person_id=follower))
    since = clock.now()
    first = await opinion(core, tracking, writer, "찬성합니다", "for")
    await opinion(core, tracking, follower, "반대합니다", "against")
    await opinion(core, tracking, author, "답글", None, parent=first)
    clock.advance(minutes=1)
    news = await core.discussions.news_since(since, clock.now())
    assert news[author]["proposals"][tracking]["count"] == 2
    assert news[author]["proposals"][tracking]["against"] == 1
    assert news[follower]["proposals"][tracking]["count"] == 1  # not their own opinion
    assert news[writer]["replies"] == 1
    assert Stance.FOR.value == "for"


async def test_daily_summary_once_per_person_and_day(core: Core, clock: ManualClock) -> None:
    from sqlalchemy import select

    from core.adapters.orm_delivery import Delivery
    from core.deliberation.summary import send_daily_summaries

    author = await person(core, "author")
    tracking = await submit(core, author)
    follower, writer = await person(core, "follower"), await person(core, "writer")
    await core.execute(c.FollowProposal(tracking=tracking, person_id=follower))
    first = await opinion(core, tracking, writer, "찬성합니다", "for")
    await opinion(core, tracking, follower, "반대합니다", "against")
    await opinion(core, tracking, author, "답글", None, parent=first)
    await opinion(core, tracking, writer, "하나 더", "for")
    clock.advance(hours=1)
    assert await send_daily_summaries(core) == 3  # author, follower, writer (a reply)
    assert await send_daily_summaries(core) == 0  # the same day again: nothing
    async with core.db.read() as s:
        rows = (await s.execute(select(Delivery).where(
            Delivery.dedupe_key.like("disc-summary:%")))).scalars().all()
    by_address = {r.address: r for r in rows}
    assert len(rows) == 3
    author_text = by_address["addr-author"].payload["text"]
    assert "새 의견 3건 (찬성 2, 반대 1, 기타 0)" in author_text
    assert "새 의견 2건" in by_address["addr-follower"].payload["text"]  # not their own
    assert "내 의견에 새 답글 1건" in by_address["addr-writer"].payload["text"]
    assert all(r.kind == "notification" for r in rows)
    clock.advance(days=1)
    assert await send_daily_summaries(core) == 0  # nothing new since yesterday


async def test_daily_summary_one_identity_per_person_and_stop_honoured(
    core: Core, clock: ManualClock
) -> None:
    from sqlalchemy import select

    from core.adapters.orm import Identity
    from core.adapters.orm_delivery import Delivery
    from core.campaigns.commands import SetConsent
    from core.deliberation.summary import send_daily_summaries

    author = await person(core, "author")
    tracking = await submit(core, author)
    follower = await person(core, "follower")
    async with core.db.write() as s:  # the author also reached us on Telegram
        s.add(Identity(person_id=author, channel="telegram", external_id="t-author",
                       address="tg-author"))
    await core.execute(c.FollowProposal(tracking=tracking, person_id=follower))
    await core.execute(SetConsent(person_id=follower, opted_in=False, channel="web",
                                  source="STOP"))
    await opinion(core, tracking, await person(core, "w"), "찬성합니다", "for")
    clock.advance(hours=1)
    assert await send_daily_summaries(core) == 1
    async with core.db.read() as s:
        rows = (await s.execute(select(Delivery).where(
            Delivery.dedupe_key.like("disc-summary:%")))).scalars().all()
    assert [(r.person_id, r.channel) for r in rows] == [(author, "web")]
