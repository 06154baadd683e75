"""The personal-data notice before a first proposal/comment, and "내 정보" (both databases)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bots.server import conversation_engine
from bots.web.sender import WebSender
from core import commands as cc
from core.adapters.orm import Person, Proposal
from core.adapters.orm_campaigns import ConsentEvent
from core.bootstrap import Core, bootstrap
from core.domain.model import ProposalStatus
from core.ports import ChannelCapabilities, ChannelLimits
from tests.conftest import make_settings
from tests.support import ManualClock
from tests.support_chat import Chat

NOTICE = "개인정보 수집·이용 안내"


@pytest.fixture
async def core(database_url: str, tmp_path: Path, clock: ManualClock) -> AsyncIterator[Core]:
    settings = make_settings(tmp_path, database_url=database_url, privacy_notice_enabled=True)
    instance = await bootstrap(settings, clock=clock)
    try:
        yield instance
    finally:
        await instance.stop()


async def _ledger(core: Core) -> list[tuple[str, str | None, str]]:
    async with core.db.read() as session:
        rows = await session.execute(
            select(ConsentEvent.purpose, ConsentEvent.version, ConsentEvent.action)
            .order_by(ConsentEvent.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_notice_before_the_first_proposal_and_again_when_it_changes(core: Core) -> None:
    chat = Chat(conversation_engine(core))
    await chat.command("start")
    await chat.press("제안하기")
    assert NOTICE in chat.text and "동의하지 않으셔도 됩니다" in chat.text
    assert "보관 기간" in chat.text and "목적" in chat.text
    await chat.press("동의합니다")
    assert "동의해 주셔서 고맙습니다" in chat.text and "제목" in chat.text  # straight on
    await chat.command("menu")
    await chat.press("제안하기")
    assert NOTICE not in chat.text and "제목" in chat.text  # agreed once: not asked again
    assert await _ledger(core) == [("privacy", "2026-12-01", "agree")]

    core.privacy.notice_version = "2027-01-01"  # the notice changed
    await chat.command("menu")
    await chat.press("제안하기")
    assert NOTICE in chat.text and "2027-01-01" in chat.text
    await chat.press("동의합니다")
    assert (await _ledger(core))[-1] == ("privacy", "2027-01-01", "agree")


async def test_refusing_keeps_browsing_and_asks_again_next_time(core: Core) -> None:
    other = await core.execute(cc.EnsureIdentity(channel="web", external_id="o", address="o"))
    tracking = await core.execute(cc.SubmitProposal(
        person_id=other, title="자전거 도로 정비", body="자전거 도로가 끊겨 있어 위험합니다.",
        category="transport"))
    chat = Chat(conversation_engine(core))
    await chat.command("start")
    await chat.pick(f"p:{tracking}:feedback")
    assert NOTICE in chat.text
    await chat.press("동의하지 않습니다")
    assert "동의하지 않으셨습니다" in chat.text and "무엇을 도와드릴까요?" in chat.text
    await chat.pick(f"p:{tracking}:show")
    assert "자전거 도로 정비" in chat.text  # reading needs no consent
    await chat.pick(f"p:{tracking}:feedback")
    assert NOTICE in chat.text  # asked again
    await chat.press("동의합니다")
    assert tracking in chat.text and "의견" in chat.text  # on to the comment box
    assert [a for _, _, a in await _ledger(core)] == ["refuse", "agree"]


class _Sender:
    """A registered sender with a channel's capabilities (the engine never sends)."""

    limits = ChannelLimits(per_second=30)

    def __init__(self, channel: str, capabilities: ChannelCapabilities) -> None:
        self.channel = channel
        self.capabilities = capabilities

    async def send(self, address: str, reply: object, *, edit_ref: str | None = None) -> None:
        raise AssertionError("the engine never sends by itself")


async def test_a_channel_without_files_says_where_to_download(core: Core) -> None:
    core.register_sender(_Sender("kakao", ChannelCapabilities(documents=False)))  # type: ignore[arg-type]
    chat = Chat(conversation_engine(core), channel="kakao", user_id="k1")
    await chat.command("mydata")
    await chat.press("내려받기")
    assert all(r.document is None for r in chat.last)
    assert "파일을 보내 드릴 수 없습니다" in chat.text and "보관 중인 내 정보입니다" in chat.text


async def test_my_data_download_withdraw_and_delete_me(core: Core) -> None:
    core.register_sender(_Sender("web", WebSender.capabilities))  # type: ignore[arg-type]
    chat = Chat(conversation_engine(core), channel="web", user_id="me", display_name="홍길동")
    await chat.command("start")
    person = (await core.views.identity("web", "me")).person_id  # type: ignore[union-attr]
    tracking = await core.execute(cc.SubmitProposal(
        person_id=person, title="공원 가로등 설치",
        body="밤에 공원이 너무 어둡습니다. 가로등이 필요해요.",
        category="environment"))

    await chat.press("내 정보")
    assert "보관 중인 내 정보입니다" in chat.text and "웹 채팅" in chat.text
    assert "제안 1건" in chat.text and tracking in chat.text
    await chat.press("내려받기")
    files = [r.document for r in chat.last if r.document is not None]
    assert len(files) == 1 and files[0].name.endswith(".json")
    data = json.loads(files[0].data)
    assert data["proposals"][0]["tracking"] == tracking
    assert data["identities"][0]["display_name"] == "홍길동"

    await chat.press("내 제안 철회")
    await chat.pick(f"mydata:wd:{tracking}")
    assert "철회할까요" in chat.text
    await chat.press("철회합니다")
    assert f"제안 {tracking}을 철회했습니다" in chat.text  # 1 (일) takes 을
    assert (await core.views.proposal(tracking)).status is ProposalStatus.WITHDRAWN  # type: ignore[union-attr]

    await chat.press("내 정보 삭제")
    assert "되돌릴 수 없습니다" in chat.text
    await chat.press("제안은 이름 없이 남기기")
    await chat.press("삭제합니다")
    assert "내 정보를 모두 삭제했습니다" in chat.text
    async with core.db.read() as session:
        erased = await session.scalar(select(Person.erased_at).where(Person.id == person))
        author = await session.scalar(
            select(Proposal.author_id).where(Proposal.tracking == tracking)
        )
    assert erased is not None and author == person
    await chat.send("안녕하세요")  # the next message starts afresh, as a new person
    again = await core.views.identity("web", "me")
    assert again is not None and again.person_id != person
    await chat.command("mydata")
    assert "제안 0건" in chat.text


async def test_only_the_author_can_withdraw(core: Core) -> None:
    other = await core.execute(cc.EnsureIdentity(channel="web", external_id="o", address="o"))
    tracking = await core.execute(cc.SubmitProposal(
        person_id=other, title="자전거 도로 정비", body="자전거 도로가 끊겨 있어 위험합니다.",
        category="transport"))
    chat = Chat(conversation_engine(core))
    await chat.command("start")
    await chat.pick("mydata:withdraw")
    assert "철회할 수 있는 제안이 없습니다" in chat.text
    await chat.pick(f"mydata:wd:{tracking}")  # a forged button
    await chat.pick("mydata:wd_yes")
    assert (await core.views.proposal(tracking)).status is ProposalStatus.RECEIVED  # type: ignore[union-attr]
