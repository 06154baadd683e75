""""Delete me" on SQLite and PostgreSQL: no personal data left in any text column; the forum
hears the anonymisation exactly once; the daily purge removes old finished rows once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core import commands as cc
from core.adapters.orm import Feedback, Identity, Person, Proposal
from core.adapters.orm_campaigns import Ballot
from core.adapters.orm_delivery import Delivery
from core.adapters.orm_web import WebSessionRow
from core.bootstrap import Core, bootstrap
from core.campaigns import commands as camp
from core.domain.model import ProposalStatus
from core.messages import Reply
from core.ports import StateKey
from core.privacy.commands import ErasePerson, ProposalsOnErasure
from tests.campaign_support import POLL_YAML
from tests.conftest import make_settings
from tests.fakes.forum import FakeForum
from tests.privacy_support import text_hits
from tests.support import ManualClock

TOKEN = "forum-token"
TG_ID, TG_CHAT, NAME = "tg-user-5550001", "5550001", "홍길동테스트"


@pytest.fixture
async def forum() -> AsyncIterator[FakeForum]:
    fake = FakeForum(token=TOKEN)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def core(
    database_url: str, tmp_path: Path, clock: ManualClock, forum: FakeForum
) -> AsyncIterator[Core]:
    settings = make_settings(
        tmp_path, database_url=database_url, forum_backend="http", forum_url=forum.url,
        forum_token=TOKEN, forum_timeout_seconds=0.5, sync_backoff_base_seconds=1.0,
    )
    instance = await bootstrap(settings, clock=clock)
    try:
        yield instance
    finally:
        await instance.stop()


def _jpeg() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 120, 40)).save(out, format="JPEG")
    return out.getvalue()


async def _drain(core: Core, clock: ManualClock) -> None:
    relay = core.sync.relay
    for _ in range(5):
        await relay.drain()
        clock.advance(seconds=60)


async def _citizen_with_everything(core: Core) -> tuple[int, str, list[str]]:
    """A person on Telegram and the web chat with proposals, comments, supports, a ballot …"""
    pid = await core.execute(cc.EnsureIdentity(
        channel="telegram", external_id=TG_ID, address=TG_CHAT, display_name=NAME))
    token, web = await core.webchat.open_session()
    web_pid = await core.execute(cc.EnsureIdentity(channel="web", external_id=web.id,
                                                   address=web.address))
    other = await core.execute(cc.EnsureIdentity(channel="web", external_id="someone-else",
                                                 address="someone-else"))
    mine = await core.execute(cc.SubmitProposal(
        person_id=pid, title="동네 도서관 연장 운영",
        body="저녁에도 도서관을 열어 주세요. 부탁드립니다.",
        category="culture", channel="telegram"))
    theirs = await core.execute(cc.SubmitProposal(
        person_id=other, title="자전거 도로 정비", body="자전거 도로가 끊겨 있어 위험합니다.",
        category="transport"))
    await core.execute(cc.SupportProposal(person_id=pid, tracking=theirs))
    await core.execute(cc.AddFeedback(tracking=theirs, body="좋은 제안입니다", person_id=pid))
    await core.execute(camp.SetConsent(person_id=pid, opted_in=True, channel="telegram",
                                       source="수신동의"))
    await core.execute(camp.SetSubscription(person_id=pid, kind="category", topic="culture",
                                            on=True))
    poll = await core.campaigns.create_survey_from_yaml(POLL_YAML, actor="test")
    await core.execute(camp.CastBallot(survey_id=poll, person_id=pid, answers={"q1": ["1"]},
                                       channel="telegram"))
    # A queued message to them, and a conversation in progress.
    async with core.db.write() as session:
        session.add(Delivery(dedupe_key="x:1", channel="telegram", address=TG_CHAT,
                             person_id=pid, kind="text", payload={"text": "안내"},
                             next_attempt_at=core.clock.now()))
    await core.state.set(StateKey("telegram", TG_ID), {"flow": "intake", "data": {}}, ttl=600)
    assert web_pid != pid  # two persons in the database for now: erase the Telegram one
    return pid, mine, [TG_ID, TG_CHAT, NAME, web.id, token]


async def test_delete_me_leaves_no_personal_data_and_the_forum_hears_it_once(
    core: Core, forum: FakeForum, clock: ManualClock
) -> None:
    pid, mine, _ = await _citizen_with_everything(core)
    await _drain(core, clock)
    assert await core.execute(ErasePerson(person_id=pid)) is True
    assert await core.execute(ErasePerson(person_id=pid)) is False  # twice: nothing more
    await _drain(core, clock)
    await _drain(core, clock)

    assert await text_hits(core, [TG_ID, TG_CHAT, NAME]) == []
    async with core.db.read() as session:
        person = await session.get(Person, pid)
        assert person is not None and person.erased_at is not None
        assert await session.scalar(
            select(func.count()).select_from(Identity).where(Identity.person_id == pid)) == 0
        assert await session.scalar(
            select(func.count()).select_from(Ballot).where(Ballot.person_id == pid)) == 0
        assert await session.scalar(select(func.count()).select_from(Ballot)) == 1  # kept, anon
        assert await session.scalar(
            select(func.count()).select_from(Feedback).where(Feedback.person_id == pid)) == 0
        status = await session.scalar(select(Proposal.status).where(Proposal.tracking == mine))
        assert status == ProposalStatus.RECEIVED.value  # anonymous, not withdrawn
    assert await core.state.get(StateKey("telegram", TG_ID)) is None
    anonymised = [w for w in forum.writes if w[0] == "anonymise"]
    assert sorted(w[1] for w in anonymised) == ["P-2026-000001", "P-2026-000002"]
    assert len({w[2] for w in anonymised}) == 1  # the same (pseudonymous) ref for both
    for record in forum.proposals.values():
        refs = [record.author_ref, *record.supports, *(c["author_ref"] for c in record.comments)]
        assert anonymised[0][2] not in refs


async def test_delete_me_on_the_web_deletes_the_session_and_can_withdraw(
    core: Core, forum: FakeForum, clock: ManualClock
) -> None:
    token, web = await core.webchat.open_session()
    pid = await core.execute(cc.EnsureIdentity(channel="web", external_id=web.id,
                                               address=web.address, display_name=NAME))
    tracking = await core.execute(cc.SubmitProposal(
        person_id=pid, title="공원 가로등 설치",
        body="밤에 공원이 너무 어둡습니다. 가로등이 필요해요.",
        category="environment"))
    await core.webchat.put(web.address, Reply(text="상태가 바뀌었습니다"))
    photo = await core.webchat.save_upload(web, _jpeg())
    found = await core.webchat.upload(photo)
    assert found is not None and found[0].is_file()
    await _drain(core, clock)
    await core.execute(ErasePerson(person_id=pid, proposals=ProposalsOnErasure.WITHDRAW))
    await _drain(core, clock)
    assert await core.webchat.find_session(token) is None
    assert not found[0].exists()  # the photo's file went too (the erasure hook)
    assert await text_hits(core, [web.id, NAME]) == []
    async with core.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(WebSessionRow)) == 0
        status = await session.scalar(select(Proposal.status).where(Proposal.tracking == tracking))
    assert status == ProposalStatus.WITHDRAWN.value
    assert [w[0] for w in forum.writes if w[1] == tracking] == ["create", "withdraw", "anonymise"]
    assert forum.proposals["F-1"].status == "withdrawn"


async def test_daily_purge_removes_old_finished_rows_once(core: Core, clock: ManualClock) -> None:
    old = clock.now() - timedelta(days=45)
    async with core.db.write() as session:
        for i, status in enumerate(("sent", "failed", "pending", "sent")):
            session.add(Delivery(
                dedupe_key=f"k{i}", channel="telegram", address="1", kind="text", payload={},
                status=status, created_at=old if i < 3 else clock.now(), next_attempt_at=old))
    job = core.privacy.retention.daily
    await job()
    await job()  # the same day again (or another process): nothing more happens
    async with core.db.read() as session:
        left = sorted((await session.execute(select(Delivery.dedupe_key))).scalars())
    assert left == ["k2", "k3"]  # the pending row and the recent one stay
    counts = await core.privacy.retention.run(clock.now())
    assert counts["deliveries"] == 0  # idempotent: a second pass finds nothing
