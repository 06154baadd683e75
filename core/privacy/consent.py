"""Consent to the personal-data notice (PIPA Art. 15, 22), kept in the campaigns' consent ledger.

Before a person's first proposal, comment or ballot the conversation shows the notice (purpose,
items, retention, the right to refuse and what refusing means). Their answer becomes a ledger row
``purpose="privacy"`` with the notice's ``version`` (``GONGNON_PRIVACY_NOTICE_VERSION``). The
latest row decides: agreed to the current version, or the notice is shown (again).
"""

from __future__ import annotations

from sqlalchemy import select

from core.adapters.db import Database
from core.adapters.orm_campaigns import ConsentEvent
from core.domain.errors import InvalidField
from core.privacy.commands import RecordPrivacyConsent
from core.unit_of_work import UnitOfWork

__all__ = ["PURPOSE", "RecordPrivacyConsent", "agreed_version", "record_privacy_consent"]

PURPOSE = "privacy"
VERSION_MAX = 32


async def record_privacy_consent(cmd: RecordPrivacyConsent, uow: UnitOfWork) -> None:
    version = cmd.version.strip()
    if not version or len(version) > VERSION_MAX:
        raise InvalidField("version", "unknown")
    uow.session.add(
        ConsentEvent(
            person_id=cmd.person_id,
            purpose=PURPOSE,
            version=version,
            action="agree" if cmd.agreed else "refuse",
            channel=cmd.channel[:16],
            source=f"notice:{version}",
            created_at=uow.now(),
        )
    )


async def agreed_version(db: Database, person_id: int) -> str | None:
    """The notice version the person last agreed to; None if never, or refused since."""
    async with db.read() as session:
        row = (
            await session.execute(
                select(ConsentEvent.action, ConsentEvent.version)
                .where(ConsentEvent.person_id == person_id, ConsentEvent.purpose == PURPOSE)
                .order_by(ConsentEvent.id.desc())
                .limit(1)
            )
        ).first()
    if row is None or row.action != "agree":
        return None
    return row.version
