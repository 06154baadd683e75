"""Deliberation's command handlers: opinions' stance and replies, 공감, withdrawal, the support
threshold, statement voting. The only code here that writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from sqlalchemy import select

from core import commands as c
from core import events as e
from core.adapters.orm import Feedback, Proposal
from core.deliberation import commands as dc
from core.deliberation import events as de
from core.deliberation.model import STATEMENT_MAX, VOTE_VALUE, Stance, StatementStatus
from core.deliberation.repository import DeliberationRepository
from core.domain.errors import AlreadyDone, InvalidField, NotAllowed, NotFound
from core.domain.model import FeedbackKind, ProposalStatus, parse_tracking
from core.domain.participation import Level
from core.messagebus import MessageBus
from core.participation import require as require_level
from core.privacy.pii import mask
from core.unit_of_work import UnitOfWork

__all__ = ["ThresholdRule", "check_opinion", "opinion_added", "register"]


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """Consul's rule: ``supports`` within ``days`` of submission send a proposal to review.

    ``supports`` 0 turns it off. ``reason`` is the status reason citizens read.
    """

    supports: int = 0
    days: int = 365
    reason: str = "공감 {count}명을 넘어 검토를 시작합니다."


def _repo(uow: UnitOfWork) -> DeliberationRepository:
    return uow.repo(DeliberationRepository)


async def _proposal(uow: UnitOfWork, tracking_text: str) -> Proposal:
    tracking = parse_tracking(tracking_text)
    proposal = await uow.proposals.get(tracking) if tracking is not None else None
    if proposal is None:
        raise NotFound("proposal", tracking=tracking_text)
    return proposal


async def check_opinion(
    cmd: c.AddFeedback, proposal_id: int, uow: UnitOfWork
) -> tuple[str | None, int | None]:
    """The stance and parent an opinion may have (called by ``add_feedback``)."""
    stance = None
    if cmd.stance is not None:
        try:
            stance = Stance(cmd.stance).value
        except ValueError:
            raise InvalidField("stance", "unknown") from None
    parent_id = cmd.parent_id
    if parent_id is None and cmd.parent_forum_id is not None:
        parent_id = (
            await uow.session.execute(
                select(Feedback.id).where(Feedback.forum_id == cmd.parent_forum_id)
            )
        ).scalar_one_or_none()
    if parent_id is None:
        return stance, None
    parent = await _repo(uow).opinion(parent_id)
    if parent is None or parent.proposal_id != proposal_id or parent.withdrawn_at is not None:
        raise NotFound("opinion", opinion=parent_id)
    if parent.parent_id is not None:  # one level of replies: answer the opinion itself
        parent_id = parent.parent_id
    return stance, parent_id


async def opinion_added(cmd: c.AddFeedback, proposal_id: int, uow: UnitOfWork) -> None:
    """Give the writer a pseudonym on this proposal (drawn once)."""
    if cmd.person_id is not None:
        await _repo(uow).ensure_alias(proposal_id, cmd.person_id)


async def support_opinion(
    cmd: dc.SupportOpinion, uow: UnitOfWork, *, participation: Level = Level.GUEST
) -> int:
    opinion = await _repo(uow).opinion(cmd.opinion_id)
    if opinion is None or opinion.withdrawn_at is not None or opinion.kind != FeedbackKind.COMMENT:
        raise NotFound("opinion", opinion=cmd.opinion_id)
    if opinion.person_id == cmd.person_id:
        raise NotAllowed("own opinion", opinion=cmd.opinion_id)
    await require_level(uow, cmd.person_id, participation)
    count = await _repo(uow).add_support(opinion.id, cmd.person_id, uow.now())
    if count is None:
        raise AlreadyDone("already supported", opinion=cmd.opinion_id)
    uow.emit(de.OpinionSupported(opinion_id=opinion.id, proposal_id=opinion.proposal_id,
                                 person_id=cmd.person_id, support_count=count))
    return count


async def withdraw_opinion(cmd: dc.WithdrawOpinion, uow: UnitOfWork) -> None:
    opinion = await _repo(uow).opinion(cmd.opinion_id, for_update=True)
    if opinion is None or opinion.kind != FeedbackKind.COMMENT:
        raise NotFound("opinion", opinion=cmd.opinion_id)
    if opinion.person_id != cmd.person_id:
        raise NotAllowed("not the writer", opinion=cmd.opinion_id)
    if opinion.withdrawn_at is not None:
        raise AlreadyDone("already withdrawn", opinion=cmd.opinion_id)
    opinion.withdrawn_at = uow.now()
    uow.emit(de.OpinionWithdrawn(opinion_id=opinion.id, proposal_id=opinion.proposal_id,
                                 person_id=cmd.person_id, forum_id=opinion.forum_id))


async def on_supported(rule: ThresholdRule, event: e.ProposalSupported, uow: UnitOfWork) -> None:
    """In the support's transaction: reaching the threshold moves the proposal to review."""
    if rule.supports <= 0 or event.support_count < rule.supports:
        return
    proposal = await uow.proposals.get(event.tracking, for_update=True)
    if proposal is None or proposal.status != ProposalStatus.RECEIVED.value:
        return
    if uow.now() - proposal.created_at > timedelta(days=rule.days):
        return
    reason = rule.reason.format(count=event.support_count)
    version = proposal.status_version + 1
    await uow.proposals.set_status(
        proposal, to_status=ProposalStatus.UNDER_REVIEW.value, reason=reason,
        expected_date=None, actor="system:threshold", source="system", version=version,
        now=uow.now(),
    )
    uow.emit(e.StatusChanged(
        proposal_id=proposal.id, tracking=proposal.tracking,
        from_status=ProposalStatus.RECEIVED, to_status=ProposalStatus.UNDER_REVIEW,
        reason=reason, expected_date=None, actor="system:threshold", source="system",
        version=version,
    ))
    uow.emit(de.SupportThresholdReached(proposal_id=proposal.id, tracking=proposal.tracking,
                                        support_count=event.support_count,
                                        threshold=rule.supports))


def _statement_text(text: str) -> str:
    """One line, 2–140 characters, personal data masked (statements are shown to everyone)."""
    value = mask(" ".join(text.split())).text
    if len(value) < 2:
        raise InvalidField("statement", "too_short", min=2, max=STATEMENT_MAX)
    if len(value) > STATEMENT_MAX:
        raise InvalidField("statement", "too_long", min=2, max=STATEMENT_MAX, length=len(value))
    return value


async def open_statements(cmd: dc.OpenStatements, uow: UnitOfWork) -> bool:
    proposal = await _proposal(uow, cmd.tracking)
    if cmd.actor is None and proposal.author_id != cmd.person_id:
        raise NotAllowed("not the author", tracking=proposal.tracking)
    opened_by = cmd.actor or f"person:{cmd.person_id}"
    texts = [_statement_text(t) for t in cmd.statements]
    opened = await _repo(uow).open_round(proposal.id, opened_by, uow.now())
    for text in texts:
        await _repo(uow).add_statement(
            proposal_id=proposal.id, text=text, person_id=cmd.person_id, actor=cmd.actor,
            status=StatementStatus.APPROVED.value, now=uow.now(),
        )
    if opened:
        uow.emit(de.StatementsOpened(proposal_id=proposal.id, tracking=proposal.tracking,
                                     opened_by=opened_by))
    return opened


async def add_statement(cmd: dc.AddStatement, uow: UnitOfWork) -> int:
    proposal = await _proposal(uow, cmd.tracking)
    round_ = await _repo(uow).round_of(proposal.id)
    if round_ is None or round_.closed_at is not None:
        raise NotAllowed("statement voting is not open", tracking=proposal.tracking)
    text = _statement_text(cmd.text)
    by_official = cmd.actor is not None
    status = StatementStatus.APPROVED if by_official else StatementStatus.PENDING
    statement_id = await _repo(uow).add_statement(
        proposal_id=proposal.id, text=text, person_id=cmd.person_id, actor=cmd.actor,
        status=status.value, now=uow.now(),
    )
    uow.emit(de.StatementAdded(statement_id=statement_id, proposal_id=proposal.id,
                               tracking=proposal.tracking, pending=not by_official))
    return statement_id


async def moderate_statement(cmd: dc.ModerateStatement, uow: UnitOfWork) -> None:
    statement = await _repo(uow).statement(cmd.statement_id)
    if statement is None:
        raise NotFound("statement", statement=cmd.statement_id)
    status = StatementStatus.APPROVED if cmd.approve else StatementStatus.HIDDEN
    if statement.status == status.value:
        raise AlreadyDone("same status", statement=cmd.statement_id)
    statement.status = status.value


async def vote_statement(
    cmd: dc.VoteStatement, uow: UnitOfWork, *, participation: Level = Level.GUEST
) -> bool:
    statement = await _repo(uow).statement(cmd.statement_id)
    if statement is None or statement.status != StatementStatus.APPROVED.value:
        raise NotFound("statement", statement=cmd.statement_id)
    round_ = await _repo(uow).round_of(statement.proposal_id)
    if round_ is None or round_.closed_at is not None:
        raise NotAllowed("statement voting is closed", statement=cmd.statement_id)
    await require_level(uow, cmd.person_id, participation)
    if not await _repo(uow).vote(statement.id, cmd.person_id, VOTE_VALUE[cmd.vote], uow.now()):
        raise AlreadyDone("already voted", statement=cmd.statement_id)
    return True


def register(
    bus: MessageBus, *, threshold: ThresholdRule, participation: Level = Level.GUEST
) -> None:
    bus.register(dc.SupportOpinion, partial(support_opinion, participation=participation))
    bus.register(dc.WithdrawOpinion, withdraw_opinion)
    bus.register(dc.OpenStatements, open_statements)
    bus.register(dc.AddStatement, add_statement)
    bus.register(dc.ModerateStatement, moderate_statement)
    bus.register(dc.VoteStatement, partial(vote_statement, participation=participation))
    bus.in_transaction(e.ProposalSupported, partial(on_supported, threshold))
