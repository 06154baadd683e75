"""Verifying in the chat: the SMS verifier offered in the menu and beside a refusal, the number
and the code typed, wrong and expired codes, the level raised; the composition root wires it
from GONGNON_SMS_*; the trial notice says when nothing can count."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bots import trial
from bots.server import conversation_engine, flow_packs
from bots.sms import HttpSmsGateway, SmsSettings, install_verifier
from core import commands as cc
from core.adapters.orm import Person, Proposal
from core.bootstrap import Core, bootstrap
from core.ports import StateKey
from core.verification.sms import SmsVerifier
from tests.conftest import make_settings
from tests.fakes.sms import FakeSms
from tests.support import ManualClock
from tests.support_chat import Chat

PHONE = "010-2222-3333"
E164 = "+821022223333"


@pytest.fixture
async def sms() -> AsyncIterator[tuple[FakeSms, SmsSettings]]:
    fake = FakeSms()
    url = await fake.start()
    try:
        yield fake, SmsSettings(api_url=url, api_token=fake.token, sender="0212345678",
                                _env_file=None)  # type: ignore[call-arg]
    finally:
        await fake.stop()


@pytest.fixture
async def vcore(
    database_url: str, tmp_path: Path, clock: ManualClock
) -> AsyncIterator[Core]:
    """A core where supports and ballots count only for verified people."""
    instance = await bootstrap(make_settings(tmp_path, database_url=database_url,
                                             participation_level="verified"), clock=clock)
    try:
        yield instance
    finally:
        await instance.stop()


async def verified(core: Core, person_id: int) -> bool:
    async with core.db.read() as s:
        return (await s.execute(select(Person.verified_at).where(Person.id == person_id))
                ).scalar_one() is not None


async def test_a_guest_refused_a_support_verifies_by_sms_and_then_counts(
    vcore: Core, sms: tuple[FakeSms, SmsSettings], clock: ManualClock
) -> None:
    fake, settings = sms
    assert install_verifier(vcore, settings)
    assert not install_verifier(vcore, settings)  # once
    author = int(await vcore.execute(cc.EnsureIdentity(channel="web", external_id="author",
                                                       address="a")))
    tracking = str(await vcore.execute(cc.SubmitProposal(
        person_id=author, title="공원 화장실 개방 시간",
        body="밤에도 열어 주세요. 산책하는 분이 많습니다.", category="welfare",
    )))
    chat = Chat(conversation_engine(vcore), channel="web", user_id="w1")
    await chat.send(tracking)
    await chat.pick(f"p:{tracking}:support")
    refused = chat.last[-1]
    assert "본인 확인" in refused.text and "휴대폰 문자로 본인 확인" in refused.text
    assert "verify:start" in [c.id for c in refused.choices]
    await chat.pick("verify:start")
    assert "휴대폰 번호를 보내 주세요" in chat.text
    await chat.send("02-123-4567")  # not a mobile number: asked again
    assert "010으로 시작하는" in chat.text and fake.sent == []
    await chat.send(PHONE)
    assert "문자로 보냈습니다" in chat.text and "6자리 인증번호" in chat.text
    code = fake.last_code(E164)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    await chat.send(wrong)
    assert "맞지 않습니다" in chat.text
    await chat.send("x" * 5000)  # hostile: too long to be a code, refused without a lookup
    assert "맞지 않습니다" in chat.text
    state = await vcore.state.get(StateKey("web", "w1"))
    assert state is not None and "2222" not in str(state)  # the number is not kept
    await chat.send(code)
    assert "본인 확인이 끝났습니다" in chat.text
    person = await _person(vcore, "w1")
    assert await verified(vcore, person)
    # the support the guest tried now counts, once
    await chat.send(tracking)
    await chat.pick(f"p:{tracking}:support")
    async with vcore.db.read() as s:
        count = (await s.execute(select(Proposal.support_count)
                                 .where(Proposal.tracking == tracking))).scalar_one()
    assert count == 1


async def _person(core: Core, user_id: str) -> int:
    state = await core.state.get(StateKey("web", user_id))
    assert state is not None
    return int(state["person_id"])


async def test_expired_code_and_a_new_one_from_the_menu(
    vcore: Core, sms: tuple[FakeSms, SmsSettings], clock: ManualClock
) -> None:
    fake, settings = sms
    install_verifier(vcore, settings)
    chat = Chat(conversation_engine(vcore), channel="telegram", user_id="t1", locale="en")
    await chat.command("start")
    assert "Verify by text message" in chat.labels
    await chat.press("Verify by text message")
    await chat.send(PHONE)
    code = fake.last_code(E164)
    clock.advance(minutes=5, seconds=1)
    await chat.send(code)
    assert "expired" in chat.text and "mobile number" in chat.text  # back to the number
    await chat.send(PHONE)
    assert "sent you a code" in chat.text  # more than a minute since the first
    await chat.press("Send a new code")  # too soon: said, and back to the menu
    await chat.send(PHONE)
    assert "one code a minute" in chat.text
    clock.advance(seconds=61)
    await chat.press("Verify by text message")
    await chat.send(PHONE)
    await chat.send(fake.last_code(E164))
    assert "You are verified" in chat.text


async def test_no_verifier_no_offer(core: Core) -> None:
    assert core.verifier is None
    assert all(p.flows[0].name != "verify" for p in flow_packs(core))
    chat = Chat(conversation_engine(core))
    await chat.command("start")
    assert "휴대폰 문자로 본인 확인" not in chat.labels


async def test_the_sms_service_down_is_said(
    vcore: Core, sms: tuple[FakeSms, SmsSettings]
) -> None:
    fake, settings = sms
    gateway = HttpSmsGateway(settings)
    vcore.verifier = SmsVerifier(vcore, gateway)
    try:
        fake.fail_next = 1
        chat = Chat(conversation_engine(vcore), channel="web", user_id="w2")
        await chat.pick("verify:start")
        await chat.send(PHONE)
        assert "문자를 보내지 못했습니다" in chat.text
    finally:
        await gateway.close()


def test_trial_notice(tmp_path: Path) -> None:
    base = make_settings(tmp_path, participation_level="messenger")
    text = trial.notice(base, messenger=False, verifier=False)
    assert text and "do not count" in text and "GONGNON_PARTICIPATION_LEVEL=guest" in text
    assert trial.notice(base, messenger=True, verifier=False) is None
    assert trial.notice(base, messenger=False, verifier=True) is None
    guest = make_settings(tmp_path, participation_level="guest")
    assert trial.notice(guest, messenger=False, verifier=False) is None
    strict = make_settings(tmp_path, participation_level="verified")
    text = trial.notice(strict, messenger=True, verifier=False)
    assert text and "GONGNON_SMS_API_URL" in text
    assert trial.notice(strict, messenger=True, verifier=True) is None


async def test_the_server_says_trial_mode_at_start_and_wires_sms(
    database_url: str, tmp_path: Path, clock: ManualClock, sms: tuple[FakeSms, SmsSettings],
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from bots.appkeys import CORE, ENGINE
    from bots.server import create_app

    monkeypatch.delenv("GONGNON_KAKAO_SKILL_SECRET", raising=False)
    monkeypatch.delenv("GONGNON_SMS_API_URL", raising=False)
    settings = make_settings(tmp_path, database_url=database_url,
                             participation_level="messenger")
    caplog.set_level("WARNING", logger="bots.server")
    app = create_app(settings, clock=clock)
    async with TestClient(TestServer(app)):
        assert app[CORE].verifier is None
    assert "TRIAL MODE" in caplog.text and "GONGNON_PARTICIPATION_LEVEL=guest" in caplog.text
    # the same server with an SMS API: no notice, and the chat offers verification
    caplog.clear()
    fake, configured = sms
    monkeypatch.setenv("GONGNON_SMS_API_URL", str(configured.api_url))
    monkeypatch.setenv("GONGNON_SMS_API_TOKEN", fake.token)
    app = create_app(settings, clock=clock)
    async with TestClient(TestServer(app)):
        assert app[CORE].verifier is not None
        assert "verify" in app[ENGINE].flows
    assert "TRIAL MODE" not in caplog.text
