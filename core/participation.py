"""Who may support and vote: participation levels (one person, one voice).

A person's level is the highest of their identities' levels and their verification:
``guest`` (a bare web session: free to make, so it cannot count), ``messenger`` (an account the
platform ties to a phone number; each channel declares this of itself, core names none), and
``verified`` (confirmed through a verification adapter). ``GONGNON_PARTICIPATION_LEVEL``
decides the level supports, ballots, 공감 on opinions and statement votes need; reading,
proposing and writing opinions stay open to everyone.
"""

from __future__ import annotations

from sqlalchemy import select

from core.adapters.orm import Identity, Person
from core.domain.participation import Level, NeedsParticipation
from core.unit_of_work import UnitOfWork

__all__ = ["Level", "NeedsParticipation", "level_of", "require"]


async def level_of(uow: UnitOfWork, person_id: int) -> Level:
    session = uow.session
    verified = (
        await session.execute(select(Person.verified_at).where(Person.id == person_id))
    ).scalar_one_or_none()
    if verified is not None:
        return Level.VERIFIED
    levels = (
        await session.execute(select(Identity.level).where(Identity.person_id == person_id))
    ).scalars()
    best = Level.GUEST
    for value in levels:
        if value and Level(value).rank > best.rank:
            best = Level(value)
    return best


async def require(uow: UnitOfWork, person_id: int, required: Level) -> None:
    """Raise ``NeedsParticipation`` unless this person's supports and votes count."""
    if required is Level.GUEST:
        return
    level = await level_of(uow, person_id)
    if level.rank < required.rank:
        raise NeedsParticipation(required=required, level=level)
