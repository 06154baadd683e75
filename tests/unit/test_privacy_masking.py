"""Personal data typed into a proposal is masked before it is kept anywhere (both databases)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import text

from bots.server import conversation_engine
from core import commands as c
from core import events as e
from core.bootstrap import Core, bootstrap
from core.ports import StateKey
from core.privacy.logsafe import quiet_driver_loggers
from core.unit_of_work import UnitOfWork
from tests.conftest import make_settings
from tests.privacy_support import text_hits
from tests.support import ManualClock
from tests.support_chat import Chat

TITLE = "정류장 그늘막 설치 010-1234-5678"
BODY = "여름에 햇볕이 너무 뜨겁습니다. 제 주민번호 850315-1234566, 전화 010-1234-5678 입니다."
NEEDLES = ["1234-5678", "850315-", "1234566"]


@pytest.fixture
async def wired(database_url: str, tmp_path: Path, clock: ManualClock) -> Core:
    """A core whose forum sync and Slack board are on, so their outboxes get rows."""
    core = await bootstrap(
        make_settings(
            tmp_path,
            database_url=database_url,
            forum_backend="http",
            forum_url="http://127.0.0.1:9",
            forum_token="t",
            slack_bot_token="xoxb-test",
            slack_signing_secret="s",
            slack_triage_channel="C-TRIAGE",
        ),
        clock=clock,
    )
    yield core  # type: ignore[misc]
    await core.stop()


async def test_intake_shows_the_masking_and_keeps_only_masked_text(wired: Core) -> None:
    chat = Chat(conversation_engine(wired))
    await chat.command("start")
    await chat.press("제안하기")
    await chat.send(TITLE)
    await chat.send(BODY)
    state = await wired.state.get(StateKey("web", "u1"))
    assert not any(n in str(state) for n in NEEDLES)  # the draft holds the masked text only
    await chat.pick("cat:transport")
    await chat.pick("ext:done")
    review = chat.text
    assert "정류장 그늘막 설치 ***-****-****" in review
    assert "******-*******" in review
    assert "개인정보로 보이는 부분을 가렸습니다: 전화번호 2건, 주민등록번호 1건" in review
    await chat.press("제출하기")
    assert "P-2026-000001" in chat.text

    view = await wired.views.proposal("P-2026-000001")
    assert view is not None and "***-****-****" in view.title
    assert await text_hits(wired, NEEDLES) == []  # proposals, sync_outbox, official_outbox, …
    found = await wired.views.search("주민번호")
    assert [p.tracking for p in found] == ["P-2026-000001"]
    assert "1234-5678" not in found[0].title


async def test_core_masks_even_when_a_channel_did_not(wired: Core) -> None:
    pid = await wired.execute(c.EnsureIdentity(channel="tg", external_id="9", address="9"))
    tracking = await wired.execute(
        c.SubmitProposal(person_id=pid, title=TITLE, body=BODY, category="transport")
    )
    await wired.execute(c.AddFeedback(tracking=tracking, body="제 메일 hong@example.com 입니다",
                                      person_id=pid))
    assert await text_hits(wired, [*NEEDLES, "hong@example.com"]) == []


async def test_feedback_in_chat_says_what_was_hidden(wired: Core) -> None:
    pid = await wired.execute(c.EnsureIdentity(channel="web", external_id="u2", address="a2"))
    tracking = await wired.execute(
        c.SubmitProposal(
            person_id=pid, title="버스 노선 늘려 주세요", body=BODY, category="transport"
        )
    )
    chat = Chat(conversation_engine(wired))
    await chat.command("start")
    await chat.pick(f"p:{tracking}:feedback")
    await chat.send("저도 찬성합니다. 연락은 010-9876-5432 로 주세요")
    assert "개인정보로 보이는 부분을 가렸습니다: 전화번호 1건" in chat.text
    assert await text_hits(wired, ["9876-5432"]) == []


async def test_a_database_error_mid_turn_logs_no_citizen_text(
    core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "우리집앞비밀정원검색어"

    async def broken(_event: e.ProposalSubmitted, uow: UnitOfWork) -> None:
        # A statement that fails with the citizen's words as its parameter; on PostgreSQL the
        # driver even repeats the value in its message ("invalid input syntax … '<value>'").
        if uow.session.bind.dialect.name == "postgresql":
            await uow.session.execute(text("SELECT CAST(:v AS INTEGER)"), {"v": secret})
        else:
            await uow.session.execute(text("SELECT no_such_column, :v"), {"v": secret})

    core.bus.in_transaction(e.ProposalSubmitted, broken)
    quiet_driver_loggers()  # as `gongnon serve` sets up logging; everything else at DEBUG
    chat = Chat(conversation_engine(core))
    await chat.command("start")
    await chat.press("제안하기")
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        await chat.send(f"{secret} 제안")
        await chat.send(f"{secret}에 대한 설명입니다. 연락 010-2222-3333")
        await chat.pick("cat:transport")
        await chat.pick("ext:done")
        await chat.press("제출하기")
    assert "잠시 후" in chat.text or "문제" in chat.text  # a polite answer, not a crash
    assert "conversation turn failed" in caplog.text  # the failure was logged …
    assert "Error" in caplog.text
    assert secret not in caplog.text and "2222-3333" not in caplog.text  # … without the payload
