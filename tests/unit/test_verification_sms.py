"""The SMS verifier end to end against the fake SMS API: sent, typed back, level raised;
wrong, expired, resend, one phone for one person."""

from __future__ import annotations

from sqlalchemy import select

from bots.sms import HttpSmsGateway, SmsSettings
from core import commands as cc
from core.adapters.orm import Person
from core.bootstrap import Core
from core.verification import MAX_ATTEMPTS, Outcome, normalise_phone
from core.verification.sms import SmsVerifier
from tests.fakes.sms import FakeSms
from tests.support import ManualClock

PHONE = "010-1234-5678"
E164 = "+821012345678"


async def _person(core: Core, name: str) -> int:
    return int(await core.execute(cc.EnsureIdentity(
        channel="web", external_id=name, address=f"a-{name}")))


async def _verified(core: Core, pid: int) -> bool:
    async with core.db.read() as s:
        return (await s.execute(select(Person.verified_at).where(Person.id == pid))
                ).scalar_one() is not None


async def test_sms_code_sent_typed_back_and_level_raised(core: Core, clock: ManualClock) -> None:
    from core.participation import Level, level_of
    from core.unit_of_work import UnitOfWork

    fake = FakeSms()
    url = await fake.start()
    gateway = HttpSmsGateway(SmsSettings(api_url=url, api_token="sms-token", sender="0212345678",
                                         _env_file=None))  # type: ignore[call-arg]
    try:
        verifier = SmsVerifier(core, gateway)
        a, b = await _person(core, "a"), await _person(core, "b")
        assert await verifier.start(a, "not a phone", locale="ko") is Outcome.BAD_NUMBER
        assert await verifier.start(a, PHONE, locale="ko") is Outcome.SENT
        assert fake.sent[-1]["to"] == E164 and "인증번호" in fake.sent[-1]["text"]
        first = fake.last_code(E164)
        # resend: not before a minute; then a new code replaces the old one
        assert await verifier.start(a, PHONE, locale="ko") is Outcome.TOO_SOON
        clock.advance(seconds=61)
        assert await verifier.start(a, PHONE, locale="ko") is Outcome.SENT
        second = fake.last_code(E164)
        if first != second:
            assert await verifier.confirm(a, first) is Outcome.WRONG
        wrong = f"{(int(second) + 1) % 1_000_000:06d}"
        assert await verifier.confirm(a, wrong) is Outcome.WRONG
        assert not await _verified(core, a)
        assert await verifier.confirm(a, second) is Outcome.VERIFIED
        assert await _verified(core, a)
        async with UnitOfWork(core.db, core.clock) as uow:
            assert await level_of(uow, a) is Level.VERIFIED
        # spent: the same code again is no good
        assert await verifier.confirm(a, second) is Outcome.EXPIRED
        # one phone, one person: b cannot verify with a's number
        assert await verifier.start(b, PHONE, locale="ko") is Outcome.PHONE_TAKEN
        # expiry
        assert await verifier.start(b, "01099998888", locale="en") is Outcome.SENT
        assert "code" in fake.sent[-1]["text"]
        code = fake.last_code("+821099998888")
        clock.advance(minutes=5, seconds=1)
        assert await verifier.confirm(b, code) is Outcome.EXPIRED
        assert not await _verified(core, b)
        # attempts per code are limited
        clock.advance(seconds=61)
        assert await verifier.start(b, "01099998888", locale="ko") is Outcome.SENT
        code = fake.last_code("+821099998888")
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        outcomes = [await verifier.confirm(b, wrong) for _ in range(MAX_ATTEMPTS)]
        assert outcomes[-1] is Outcome.TOO_MANY_ATTEMPTS
        assert await verifier.confirm(b, code) is Outcome.TOO_MANY_ATTEMPTS
        # the gateway failing is said, not hidden
        clock.advance(seconds=61)
        fake.fail_next = 1
        assert await verifier.start(b, "01099998888", locale="ko") is Outcome.SEND_FAILED
        # sends per hour are capped
        for _ in range(10):
            clock.advance(seconds=61)
            last = await verifier.start(b, "01099998888", locale="ko")
        assert last is Outcome.TOO_MANY_SENDS
    finally:
        await gateway.close()
        await fake.stop()


def test_phone_numbers() -> None:
    assert normalise_phone("010-1234-5678") == E164
    assert normalise_phone("+82 10 1234 5678") == E164
    assert normalise_phone("01012345678") == E164
    for bad in ("", "02-123-4567", "010-12", "1" * 1000, "+1 415 555 0100", "０１０"):
        assert normalise_phone(bad) is None
