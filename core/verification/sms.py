"""The SMS code verifier: the writes (a code kept as a digest, checked, the person verified) and
``SmsVerifier`` (the ``Verifier`` port over an ``SmsGateway``). Rules in ``core.verification``."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from core.adapters.orm import Person
from core.adapters.orm_people import VerificationCode, VerifiedPhone
from core.commands import Command
from core.messagebus import MessageBus
from core.unit_of_work import UnitOfWork
from core.verification.ports import (
    CODE_TTL,
    HOUR,
    MAX_ATTEMPTS,
    MAX_SENDS,
    RESEND_AFTER,
    Outcome,
    SmsFailed,
    SmsGateway,
    normalise_phone,
)

if TYPE_CHECKING:
    from core.kernel import Kernel

__all__ = ["CheckSmsCode", "SmsVerifier", "StoreSmsCode", "register"]


def _digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"gongnon-{kind}:{value}".encode()).hexdigest()


# --- commands and handlers (the writes) ------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreSmsCode(Command):
    """Keep a fresh code for ``person_id`` (replacing one pending). Returns (Outcome, code)."""

    person_id: int
    phone: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckSmsCode(Command):
    """Check an answer; on success the person is verified. Returns an ``Outcome``."""

    person_id: int
    answer: str


async def store_code(cmd: StoreSmsCode, uow: UnitOfWork) -> tuple[Outcome, str]:
    session = uow.session
    now = uow.now()
    phone = _digest("phone", cmd.phone)
    owner = (await session.execute(
        select(VerifiedPhone.person_id).where(VerifiedPhone.phone_digest == phone)
    )).scalar_one_or_none()
    if owner is not None and owner != cmd.person_id:
        return Outcome.PHONE_TAKEN, ""
    row = await session.get(VerificationCode, cmd.person_id, with_for_update=True)
    code = f"{secrets.randbelow(10**6):06d}"
    if row is None:
        session.add(VerificationCode(
            person_id=cmd.person_id, code_digest=_digest("code", code), phone_digest=phone,
            expires_at=now + CODE_TTL, attempts=0, sends=1, window_start=now, sent_at=now,
        ))
        return Outcome.SENT, code
    if now - row.sent_at < RESEND_AFTER:
        return Outcome.TOO_SOON, ""
    if now - row.window_start >= HOUR:
        row.window_start, row.sends = now, 0
    if row.sends >= MAX_SENDS:
        return Outcome.TOO_MANY_SENDS, ""
    row.code_digest, row.phone_digest = _digest("code", code), phone
    row.expires_at, row.attempts, row.sent_at = now + CODE_TTL, 0, now
    row.sends += 1
    return Outcome.SENT, code


async def check_code(cmd: CheckSmsCode, uow: UnitOfWork) -> Outcome:
    session = uow.session
    now = uow.now()
    row = await session.get(VerificationCode, cmd.person_id, with_for_update=True)
    if row is None or now >= row.expires_at:
        return Outcome.EXPIRED
    if row.attempts >= MAX_ATTEMPTS:
        return Outcome.TOO_MANY_ATTEMPTS
    answer = "".join(ch for ch in cmd.answer[:20] if ch.isdigit())
    if not hmac.compare_digest(_digest("code", answer), row.code_digest):
        row.attempts += 1
        return Outcome.TOO_MANY_ATTEMPTS if row.attempts >= MAX_ATTEMPTS else Outcome.WRONG
    owner = (await session.execute(
        select(VerifiedPhone.person_id).where(VerifiedPhone.phone_digest == row.phone_digest)
    )).scalar_one_or_none()
    if owner is not None and owner != cmd.person_id:  # verified elsewhere meanwhile
        await session.delete(row)
        return Outcome.PHONE_TAKEN
    if owner is None:
        session.add(VerifiedPhone(phone_digest=row.phone_digest, person_id=cmd.person_id,
                                  method="sms", verified_at=now))
    await session.execute(
        update(Person).where(Person.id == cmd.person_id, Person.verified_at.is_(None))
        .values(verified_at=now)
    )
    await session.delete(row)
    return Outcome.VERIFIED


def register(bus: MessageBus) -> None:
    bus.register(StoreSmsCode, store_code)
    bus.register(CheckSmsCode, check_code)


# --- the verifier ------------------------------------------------------------------------


class SmsVerifier:
    """``Verifier`` by a code sent in an SMS through ``gateway``."""

    method = "sms"

    def __init__(self, core: Kernel, gateway: SmsGateway) -> None:
        self.core = core
        self.gateway = gateway

    async def start(self, person_id: int, target: str, *, locale: str) -> Outcome:
        from core.i18n import t

        phone = normalise_phone(target)
        if phone is None:
            return Outcome.BAD_NUMBER
        outcome, code = await self.core.execute(StoreSmsCode(person_id=person_id, phone=phone))
        if outcome is not Outcome.SENT:
            return outcome  # type: ignore[no-any-return]
        try:
            await self.gateway.send_sms(phone, t("verify.sms_text", locale, code=code))
        except SmsFailed:
            return Outcome.SEND_FAILED
        return Outcome.SENT

    async def confirm(self, person_id: int, answer: str) -> Outcome:
        return await self.core.execute(  # type: ignore[no-any-return]
            CheckSmsCode(person_id=person_id, answer=answer)
        )

