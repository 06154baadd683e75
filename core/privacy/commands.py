"""Commands of the privacy feature."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.commands import Command

__all__ = ["ErasePerson", "ProposalsOnErasure", "RecordPrivacyConsent"]


class ProposalsOnErasure(StrEnum):
    """What becomes of the erased person's proposals: the person chooses."""

    ANONYMISE = "anonymise"  # they stay, with no author anyone can see or reach
    WITHDRAW = "withdraw"  # open ones are withdrawn (and anonymised)


@dataclass(frozen=True, slots=True, kw_only=True)
class ErasePerson(Command):
    """"Delete me". Returns False when the person was already erased (nothing done twice)."""

    person_id: int
    proposals: ProposalsOnErasure = ProposalsOnErasure.ANONYMISE


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordPrivacyConsent(Command):
    """The person agreed to (or refused) notice ``version`` on ``channel``."""

    person_id: int
    version: str
    agreed: bool
    channel: str
