"""Command handlers for people and proposals: the only code that writes."""

from __future__ import annotations

from functools import partial
from zoneinfo import ZoneInfo

from core import commands as c
from core import events as e
from core.adapters.repository import IdentityIn
from core.deliberation.handlers import check_opinion, opinion_added
from core.domain.errors import AlreadyDone, InvalidField, NotAllowed, NotFound
from core.domain.model import (
    FeedbackKind,
    ProposalStatus,
    check_transition,
    format_tracking,
    parse_tracking,
    validate_body,
    validate_category,
    validate_feedback,
    validate_region,
    validate_title,
)
from core.domain.participation import Level
from core.i18n import LOCALES, normalise_locale
from core.messagebus import MessageBus
from core.participation import require as require_level
from core.privacy.pii import mask
from core.unit_of_work import UnitOfWork

__all__ = ["register"]

REASON_MAX = 1000
ASSIGNEE_MAX = 200


def _tracking(raw: str) -> str:
    tracking = parse_tracking(raw)
    if tracking is None:
        raise NotFound(raw, tracking=raw)
    return tracking


async def _proposal(uow: UnitOfWork, raw: str, *, for_update: bool = False):  # type: ignore[no-untyped-def]
    tracking = _tracking(raw)
    proposal = await uow.proposals.get(tracking, for_update=for_update)
    if proposal is None:
        raise NotFound(tracking, tracking=tracking)
    return proposal


async def ensure_identities(
    cmds: list[c.EnsureIdentity], uow: UnitOfWork, *, default_locale: str
) -> list[int]:
    """Person ids for channel identities (group-committed: see MessageBus.register_batched)."""
    results = await uow.persons.ensure_identities(
        [
            IdentityIn(
                channel=cmd.channel,
                external_id=cmd.external_id,
                address=cmd.address,
                locale=normalise_locale(cmd.locale, default_locale),
                display_name=cmd.display_name,
                level=cmd.level,
            )
            for cmd in cmds
        ],
        now=uow.now(),
    )
    return [person_id for person_id, _created in results]


async def set_locale(cmd: c.SetLocale, uow: UnitOfWork) -> None:
    if cmd.locale not in LOCALES:
        raise InvalidField("locale", "unknown")
    await uow.persons.set_locale(cmd.person_id, cmd.locale)


async def mark_unreachable(cmd: c.MarkUnreachable, uow: UnitOfWork) -> int:
    count = await uow.persons.set_reachable(
        channel=cmd.channel, address=cmd.address, reachable=cmd.reachable, reason=cmd.reason
    )
    if count:
        uow.emit(
            e.IdentityReachabilityChanged(
                channel=cmd.channel, address=cmd.address, reachable=cmd.reachable, reason=cmd.reason
            )
        )
    return count


async def submit_proposal(cmd: c.SubmitProposal, uow: UnitOfWork, *, tz: ZoneInfo) -> str:
    # Masked here too (defence in depth): Slack cards, the forum outbox and search read these.
    title = mask(validate_title(cmd.title)).text
    body = mask(validate_body(cmd.body)).text
    category = validate_category(cmd.category)
    region = validate_region(cmd.region)
    now = uow.now()
    year = now.astimezone(tz).year
    tracking = format_tracking(year, await uow.proposals.next_sequence(f"tracking:{year}"))
    proposal_id = await uow.proposals.add(
        tracking=tracking,
        title=title,
        body=body,
        category=category,
        region=region,
        author_id=cmd.person_id,
        channel=cmd.channel,
        attachments=cmd.attachments,
        now=now,
    )
    # The author follows their own proposal by default.
    await uow.proposals.set_follow(proposal_id, cmd.person_id, True, now)
    uow.emit(
        e.ProposalSubmitted(
            proposal_id=proposal_id,
            tracking=tracking,
            person_id=cmd.person_id,
            category=category,
            region=region,
            channel=cmd.channel,
        )
    )
    return tracking


async def support_proposal(
    cmd: c.SupportProposal, uow: UnitOfWork, *, participation: Level = Level.GUEST
) -> int:
    proposal = await _proposal(uow, cmd.tracking)
    if ProposalStatus(proposal.status) is ProposalStatus.WITHDRAWN:
        raise NotAllowed("withdrawn", tracking=proposal.tracking)
    await require_level(uow, cmd.person_id, participation)
    count = await uow.proposals.add_support(proposal.id, cmd.person_id, uow.now())
    if count is None:
        raise AlreadyDone("supported", tracking=proposal.tracking)
    await uow.proposals.set_follow(proposal.id, cmd.person_id, True, uow.now())
    uow.emit(
        e.ProposalSupported(
            proposal_id=proposal.id,
            tracking=proposal.tracking,
            person_id=cmd.person_id,
            support_count=count,
        )
    )
    return count


async def _follow(
    cmd: c.FollowProposal | c.UnfollowProposal, uow: UnitOfWork, *, following: bool
) -> bool:
    proposal = await _proposal(uow, cmd.tracking)
    changed = await uow.proposals.set_follow(proposal.id, cmd.person_id, following, uow.now())
    if changed:
        uow.emit(
            e.ProposalFollowed(
                proposal_id=proposal.id,
                tracking=proposal.tracking,
                person_id=cmd.person_id,
                following=following,
            )
        )
    return changed


async def add_feedback(cmd: c.AddFeedback, uow: UnitOfWork) -> int | None:
    body = mask(validate_feedback(cmd.body)).text
    proposal = await _proposal(uow, cmd.tracking)
    stance, parent_id = await check_opinion(cmd, proposal.id, uow)
    feedback_id = await uow.proposals.add_feedback(
        proposal_id=proposal.id,
        person_id=cmd.person_id,
        kind=FeedbackKind.COMMENT.value,
        body=body,
        actor=None if cmd.person_id else "forum",
        forum_id=cmd.forum_id,
        now=uow.now(),
        stance=stance,
        parent_id=parent_id,
    )
    if feedback_id is None:  # the same forum comment again
        return None
    await opinion_added(cmd, proposal.id, uow)
    uow.emit(
        e.FeedbackAdded(
            feedback_id=feedback_id,
            proposal_id=proposal.id,
            tracking=proposal.tracking,
            person_id=cmd.person_id,
            from_forum=cmd.forum_id is not None,
        )
    )
    return feedback_id


async def withdraw_proposal(cmd: c.WithdrawProposal, uow: UnitOfWork) -> None:
    proposal = await _proposal(uow, cmd.tracking, for_update=True)
    if proposal.author_id != cmd.person_id:
        raise NotAllowed("not the author", tracking=proposal.tracking)
    current = ProposalStatus(proposal.status)
    check_transition(current, ProposalStatus.WITHDRAWN)
    await uow.proposals.set_status(
        proposal,
        to_status=ProposalStatus.WITHDRAWN.value,
        reason="",
        expected_date=None,
        actor=f"person:{cmd.person_id}",
        source="citizen",
        version=proposal.status_version + 1,
        now=uow.now(),
    )
    uow.emit(
        e.ProposalWithdrawn(
            proposal_id=proposal.id, tracking=proposal.tracking, person_id=cmd.person_id
        )
    )


async def change_status(cmd: c.ChangeStatus, uow: UnitOfWork) -> bool:
    """True when the status moved; False for a late or repeated forum event (ignored)."""
    proposal = await _proposal(uow, cmd.tracking, for_update=True)
    current = ProposalStatus(proposal.status)
    if cmd.version is not None and cmd.version <= proposal.status_version:
        return False
    if cmd.status == current:
        if cmd.version is not None:  # the forum confirms what we have: remember its version
            proposal.status_version = cmd.version
            return False
        raise AlreadyDone("same status", tracking=proposal.tracking)
    if cmd.source != "forum":  # the system of record may move a proposal any way it likes
        if cmd.status is ProposalStatus.WITHDRAWN:  # the author's right alone (WithdrawProposal)
            raise NotAllowed("only the author withdraws", tracking=proposal.tracking)
        check_transition(current, cmd.status)
    reason = cmd.reason.strip()
    if not reason:
        raise InvalidField("reason", "too_short", min=1, max=REASON_MAX)
    if len(reason) > REASON_MAX:
        raise InvalidField("reason", "too_long", min=1, max=REASON_MAX, length=len(reason))
    version = cmd.version if cmd.version is not None else proposal.status_version + 1
    previous = await uow.proposals.set_status(
        proposal,
        to_status=cmd.status.value,
        reason=reason,
        expected_date=cmd.expected_date,
        actor=cmd.actor,
        source=cmd.source,
        version=version,
        now=uow.now(),
    )
    uow.emit(
        e.StatusChanged(
            proposal_id=proposal.id,
            tracking=proposal.tracking,
            from_status=ProposalStatus(previous),
            to_status=cmd.status,
            reason=reason,
            expected_date=cmd.expected_date,
            actor=cmd.actor,
            source=cmd.source,
            version=version,
        )
    )
    return True


async def assign_proposal(cmd: c.AssignProposal, uow: UnitOfWork) -> None:
    assignee = " ".join(cmd.assignee.split())
    if not assignee:
        raise InvalidField("assignee", "too_short", min=1, max=ASSIGNEE_MAX)
    if len(assignee) > ASSIGNEE_MAX:
        raise InvalidField("assignee", "too_long", min=1, max=ASSIGNEE_MAX, length=len(assignee))
    proposal = await _proposal(uow, cmd.tracking, for_update=True)
    if proposal.assigned_to == assignee:
        return
    await uow.proposals.assign(proposal, assignee, uow.now())
    uow.emit(
        e.ProposalAssigned(
            proposal_id=proposal.id,
            tracking=proposal.tracking,
            assignee=assignee,
            actor=cmd.actor,
            source=cmd.source,
        )
    )


async def answer_proposal(cmd: c.AnswerProposal, uow: UnitOfWork) -> int | None:
    body = validate_feedback(cmd.body)
    proposal = await _proposal(uow, cmd.tracking)
    feedback_id = await uow.proposals.add_feedback(
        proposal_id=proposal.id,
        person_id=None,
        kind=FeedbackKind.OFFICIAL_ANSWER.value,
        body=body,
        actor=cmd.actor,
        forum_id=cmd.forum_id,
        now=uow.now(),
    )
    if feedback_id is None:
        return None
    uow.emit(
        e.ProposalAnswered(
            proposal_id=proposal.id,
            tracking=proposal.tracking,
            feedback_id=feedback_id,
            actor=cmd.actor,
            source=cmd.source,
        )
    )
    return feedback_id


def register(
    bus: MessageBus, *, tz: ZoneInfo, default_locale: str, participation: Level = Level.GUEST
) -> None:
    bus.register_batched(
        c.EnsureIdentity, partial(ensure_identities, default_locale=default_locale)
    )
    bus.register(c.SetLocale, set_locale)
    bus.register(c.MarkUnreachable, mark_unreachable)
    bus.register(c.SubmitProposal, partial(submit_proposal, tz=tz))
    bus.register(c.SupportProposal, partial(support_proposal, participation=participation))
    bus.register(c.FollowProposal, partial(_follow, following=True))
    bus.register(c.UnfollowProposal, partial(_follow, following=False))
    bus.register(c.AddFeedback, add_feedback)
    bus.register(c.WithdrawProposal, withdraw_proposal)
    bus.register(c.ChangeStatus, change_status)
    bus.register(c.AssignProposal, assign_proposal)
    bus.register(c.AnswerProposal, answer_proposal)
