"""Linking identities: a one-time code shown on one channel, typed on another, joins the people.

A code is 6 digits, valid ``CODE_TTL`` (10 minutes), spent at its first use; only its digest is
stored. Guessing is limited twice: wrong codes are stored per person (``link_attempts``: at most
``GUESSES_PER_PERSON`` in ``GUESS_WINDOW``, a limit that survives restarts and holds across
processes), and every guess takes a place in the rate-limit port per person and for everyone
(``core.limits``), so spreading guesses over many fresh sessions meets the global limit. With
5 guesses per person per 10 minutes and at most a handful of live codes, a guesser's chance per
window is about 5 × live codes / 1,000,000.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from core.adapters.orm import Identity, Person
from core.adapters.orm_people import LinkAttempt, LinkCode
from core.messagebus import MessageBus
from core.people import commands as pc
from core.people.errors import LastIdentity
from core.people.merge import merge_people
from core.people.model import LinkResult
from core.unit_of_work import UnitOfWork

__all__ = [
    "CODE_TTL",
    "GUESSES_PER_PERSON",
    "GUESS_WINDOW",
    "LinkResult",
    "normalise_code",
    "register",
]

CODE_TTL = timedelta(minutes=10)
GUESS_WINDOW = timedelta(minutes=10)
GUESSES_PER_PERSON = 5
CODE_DIGITS = 6


def _digest(code: str) -> str:
    return hashlib.sha256(f"gongnon-link:{code}".encode()).hexdigest()


def normalise_code(text: str) -> str | None:
    """"123 456", "123-456", "１２３４５６" → "123456"; anything else None."""
    if len(text) > 20:
        return None
    digits = "".join(ch for ch in text if not ch.isspace() and ch not in "-.")
    if len(digits) != CODE_DIGITS or not digits.isdigit():
        return None
    try:
        return "".join(str(int(ch)) for ch in digits)  # full-width digits too
    except ValueError:
        return None


async def issue_code(cmd: pc.IssueLinkCode, uow: UnitOfWork) -> str:
    session = uow.session
    now = uow.now()
    await session.execute(delete(LinkCode).where(
        or_(LinkCode.expires_at <= now, LinkCode.used_at.is_not(None),
            LinkCode.person_id == cmd.person_id)
    ))
    for _ in range(20):
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        try:
            async with session.begin_nested():
                session.add(LinkCode(digest=_digest(code), person_id=cmd.person_id,
                                     created_at=now, expires_at=now + CODE_TTL))
                await session.flush()
        except IntegrityError:  # the same digits are live for someone else: draw again
            continue
        return code
    raise RuntimeError("no free link code")  # 20 collisions in a million: not reached


async def redeem_code(cmd: pc.RedeemLinkCode, uow: UnitOfWork) -> LinkResult:
    session = uow.session
    now = uow.now()
    recent = (await session.execute(
        select(func.count()).select_from(LinkAttempt).where(
            LinkAttempt.person_id == cmd.person_id, LinkAttempt.created_at > now - GUESS_WINDOW)
    )).scalar_one()
    if recent >= GUESSES_PER_PERSON:
        return LinkResult(refused="too_many")
    code = normalise_code(cmd.code)
    issuer = None
    if code is not None:
        issuer = (await session.execute(
            update(LinkCode)
            .where(LinkCode.digest == _digest(code), LinkCode.used_at.is_(None),
                   LinkCode.expires_at > now)
            .values(used_at=now)
            .returning(LinkCode.person_id)
        )).scalar_one_or_none()
    if issuer is None:
        session.add(LinkAttempt(person_id=cmd.person_id, created_at=now))
        return LinkResult(refused="invalid")
    if issuer == cmd.person_id:
        return LinkResult(refused="same_person")
    summary = await merge_people(session, survivor=issuer, merged=cmd.person_id,
                                 channel=cmd.channel, now=now)
    return LinkResult(summary=summary)


async def unlink_identity(cmd: pc.UnlinkIdentity, uow: UnitOfWork) -> int:
    """Returns the new person of the unlinked identity."""
    session = uow.session
    ids = list((await session.execute(
        select(Identity.id).where(Identity.person_id == cmd.person_id)
    )).scalars())
    if cmd.identity_id not in ids:
        raise LastIdentity("not theirs") if not ids else _not_found()
    if len(ids) < 2:
        raise LastIdentity("last")
    locale = (await session.execute(
        select(Person.locale).where(Person.id == cmd.person_id))).scalar_one()
    person = Person(locale=locale, created_at=uow.now())
    session.add(person)
    await session.flush()
    await session.execute(update(Identity).where(Identity.id == cmd.identity_id)
                          .values(person_id=person.id))
    return person.id


def _not_found() -> Exception:
    from core.domain.errors import NotFound

    return NotFound("identity")


def register(bus: MessageBus) -> None:
    bus.register(pc.IssueLinkCode, issue_code)
    bus.register(pc.RedeemLinkCode, redeem_code)
    bus.register(pc.UnlinkIdentity, unlink_identity)
