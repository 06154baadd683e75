"""What the conversations layer uses of the core: read ports and the ``CoreAPI`` protocol.

``conversations/`` types its ``core`` as ``CoreAPI`` and imports this module, commands, messages
and the domain, never ``core.bootstrap``, ``core.views`` or an adapter, so SQLAlchemy stays out
of its import graph (``make lint`` checks it). The wired ``core.bootstrap.Core`` satisfies
``CoreAPI``; tests may hand the engine anything else that does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from core.campaigns.model import SurveyInfo
from core.campaigns.results import Results
from core.commands import Command
from core.config import Settings
from core.deliberation.model import (
    PAGE_SIZE,
    DiscussionPage,
    OpinionSort,
    OpinionView,
    StatementView,
)
from core.domain.model import KnownIdentity, ProposalSummary, ProposalView, Relation
from core.people.model import IdentityRow
from core.ports import Clock, Sender, StateStore
from core.similarity import SimilarProposals
from core.verification.ports import Verifier

__all__ = [
    "CampaignReads",
    "CommandLimits",
    "CoreAPI",
    "DiscussionReads",
    "PeopleReads",
    "PrivacyReads",
    "ProposalReads",
]


class ProposalReads(Protocol):
    """The read side a conversation needs (``core.views``)."""

    async def identity(self, channel: str, external_id: str) -> KnownIdentity | None: ...

    async def proposal(self, tracking_text: str) -> ProposalView | None: ...

    async def proposals_of(
        self, person_id: int, *, limit: int = 10, offset: int = 0
    ) -> tuple[list[ProposalSummary], int]: ...

    async def followed_by(self, person_id: int, *, limit: int = 10) -> list[ProposalSummary]: ...

    async def relation(self, person_id: int, tracking: str) -> Relation: ...

    async def search(self, words: str, *, limit: int = 10) -> list[ProposalSummary]: ...

    async def news_waiting(self, channel: str, address: str, *, now: datetime) -> int: ...


class CampaignReads(Protocol):
    """What the survey and consent flows read of the campaigns (``core.campaigns``)."""

    async def survey(self, ref: int | str) -> SurveyInfo: ...

    async def has_voted(self, survey_id: int, person_id: int) -> bool: ...

    async def invited(self, survey_id: int, person_id: int) -> bool: ...

    async def results(self, ref: int | str) -> Results: ...

    async def consent_of(self, person_id: int) -> bool | None: ...

    async def subscriptions_of(self, person_id: int) -> set[tuple[str, str]]: ...


class DiscussionReads(Protocol):
    """What the discussion flow reads of the deliberation (``core.discussions``)."""

    async def page(
        self, tracking: str, *, sort: OpinionSort = OpinionSort.TOP, page: int = 0,
        reader: int | None = None, size: int = PAGE_SIZE,
    ) -> DiscussionPage | None: ...

    async def opinion(
        self, opinion_id: int, *, reader: int | None = None, replies: int = 20
    ) -> tuple[str, OpinionView] | None: ...

    async def counts(self, tracking: str) -> tuple[int, dict[str, int]]: ...

    async def statements_open(self, tracking: str) -> bool: ...

    async def next_statement(self, tracking: str, person_id: int) -> StatementView | None: ...


class PeopleReads(Protocol):
    """What the link flow reads of linked identities (``core.people``)."""

    async def identities_of(self, person_id: int) -> list[IdentityRow]: ...


class PrivacyReads(Protocol):
    """What the notice gate and "내 정보" read of the privacy feature (``core.privacy``)."""

    @property
    def notice_version(self) -> str: ...

    async def has_agreed(self, person_id: int) -> bool: ...

    async def data_of(self, person_id: int) -> dict[str, Any] | None: ...

    async def download_of(self, person_id: int) -> bytes | None: ...


class CommandLimits(Protocol):
    """What one person may do (``core.limits``): raises ``core.limits.Limited`` when over."""

    async def check(self, command: Command) -> None: ...


class CoreAPI(Protocol):
    """The core as a conversation sees it: settings, clock, the conversation store, the
    channels' senders (for their capabilities), the read side (views, similar proposals,
    campaigns, discussions, linked identities, privacy), a person's limits, and
    ``execute(command)``."""

    @property
    def settings(self) -> Settings: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def state(self) -> StateStore: ...

    @property
    def senders(self) -> Mapping[str, Sender]: ...

    @property
    def views(self) -> ProposalReads: ...

    @property
    def similar(self) -> SimilarProposals: ...

    @property
    def campaigns(self) -> CampaignReads: ...

    @property
    def discussions(self) -> DiscussionReads: ...

    @property
    def privacy(self) -> PrivacyReads: ...

    @property
    def limits(self) -> CommandLimits: ...

    @property
    def people(self) -> PeopleReads: ...

    @property
    def verifier(self) -> Verifier | None:
        """How a person verifies (``core.verification``), or None when none is configured."""
        ...

    async def execute(self, command: Command) -> Any: ...
