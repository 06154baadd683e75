"""One proposal: its screen, history and actions (support, follow, unfollow, feedback)."""

from __future__ import annotations

from datetime import datetime

from conversations.flow import Ctx, Flow, Step
from conversations.flows.discussion import stance_counts
from conversations.privacy import masked_note
from core.commands import AddFeedback, FollowProposal, SupportProposal, UnfollowProposal
from core.deliberation.model import Stance
from core.domain.errors import AlreadyDone, NotAllowed
from core.domain.model import (
    FEEDBACK_MAX,
    FeedbackKind,
    ProposalStatus,
    ProposalView,
    parse_tracking,
)
from core.messages import Choice, Reply
from core.privacy.pii import mask

__all__ = ["ACTIONS", "flow"]

ACTIONS = ("show", "support", "follow", "unfollow", "feedback", "history")
ANSWERS_SHOWN = 3


def _date(ctx: Ctx, at: datetime) -> str:
    return at.astimezone(ctx.core.settings.tz).date().isoformat()



async def _load(ctx: Ctx) -> ProposalView | None:
    tracking = str(ctx.data.get("tracking", ""))
    return await ctx.core.views.proposal(tracking) if tracking else None


def _screen_text(ctx: Ctx, view: ProposalView) -> str:
    lines = [
        ctx.t("conv.proposal.title", title=view.title, tracking=view.tracking),
        ctx.t("conv.proposal.status", status=ctx.t(f"status.{view.status.value}")),
        ctx.t("conv.proposal.category", category=ctx.t(f"category.{view.category}")),
    ]
    if view.region:
        lines.append(ctx.t("conv.proposal.region", region=ctx.t(f"region.{view.region}")))
    lines.append(ctx.t("conv.proposal.supports", count=view.support_count))
    threshold = ctx.core.settings.support_threshold
    if threshold and view.status is ProposalStatus.RECEIVED:
        lines.append(ctx.t("disc.progress", count=view.support_count, threshold=threshold))
    lines.append(ctx.t("conv.proposal.submitted_on", date=_date(ctx, view.created_at)))
    last = view.history[-1] if view.history else None
    if last is not None and last.reason:
        lines.append(ctx.t("conv.proposal.reason", reason=last.reason))
    if last is not None and last.expected_date:
        lines.append(ctx.t("conv.proposal.expected", date=last.expected_date.isoformat()))
    lines += ["", view.body]
    answers = [f for f in view.feedback if f.kind is FeedbackKind.OFFICIAL_ANSWER]
    for answer in answers[-ANSWERS_SHOWN:]:
        lines += ["", ctx.t("conv.proposal.answer", date=_date(ctx, answer.at), body=answer.body)]
    return "\n".join(lines)


async def _render_view(ctx: Ctx) -> Reply:
    view = await _load(ctx)
    if view is None:
        ctx.say(ctx.t("error.not_found"))
        ctx.menu()
        return Reply(text="")
    opinions, by_stance = await ctx.core.discussions.counts(view.tracking)
    voting = await ctx.core.discussions.statements_open(view.tracking)
    relation = await ctx.core.views.relation(ctx.person_id, view.tracking)
    p = f"p:{view.tracking}"
    choices: list[Choice] = []
    if not relation.supporting and not view.status.is_final:
        choices.append(Choice(id=f"{p}:support", label=ctx.t("conv.proposal.support")))
    if relation.following:
        choices.append(Choice(id=f"{p}:unfollow", label=ctx.t("conv.proposal.unfollow")))
    else:
        choices.append(Choice(id=f"{p}:follow", label=ctx.t("conv.proposal.follow")))
    if opinions:
        choices.append(Choice(id=f"d:{view.tracking}:list",
                              label=ctx.t("disc.view", count=opinions)))
    if view.status is not ProposalStatus.WITHDRAWN:
        choices.append(Choice(id=f"{p}:feedback", label=ctx.t("conv.proposal.feedback")))
    if voting:
        choices.append(Choice(id=f"d:{view.tracking}:vote", label=ctx.t("disc.vote_open")))
    choices.append(Choice(id=f"{p}:history", label=ctx.t("conv.proposal.history")))
    choices.append(Choice(id="menu:main", label=ctx.t("conv.nav.menu")))
    text = _screen_text(ctx, view)
    if opinions:
        text += "\n\n" + stance_counts(ctx, opinions, by_stance)
    return Reply(text=text, choices=tuple(choices), meta={"tracking": view.tracking})


async def _render_history(ctx: Ctx) -> Reply:
    view = await _load(ctx)
    if view is None:
        ctx.say(ctx.t("error.not_found"))
        ctx.menu()
        return Reply(text="")
    lines = [ctx.t("conv.proposal.history_title", title=view.title, tracking=view.tracking)]
    for change in view.history:
        line = ctx.t(
            "conv.proposal.history_line",
            date=_date(ctx, change.at),
            status=ctx.t(f"status.{change.to_status.value}"),
        )
        if change.reason:
            line += " — " + ctx.t("conv.proposal.history_reason", reason=change.reason)
        if change.expected_date:
            line += " " + ctx.t(
                "conv.proposal.history_expected", date=change.expected_date.isoformat()
            )
        lines.append(line)
    back = Choice(id=f"p:{view.tracking}:show", label=ctx.t("conv.proposal.back_to_view"))
    return Reply(text="\n".join(lines), choices=(back,))


async def _render_feedback(ctx: Ctx) -> Reply:
    tracking = str(ctx.data.get("tracking", ""))
    back = Choice(id=f"p:{tracking}:show", label=ctx.t("conv.proposal.back_to_view"))
    chosen = ctx.data.get("stance")
    stances = tuple(
        Choice(
            id=f"disc:stance:{s.value}",
            label=(
                ctx.t("disc.chosen", label=ctx.t(f"disc.stance.{s.value}"))
                if chosen == s.value
                else ctx.t(f"disc.stance.{s.value}")
            ),
        )
        for s in Stance
    )
    return Reply(
        text=ctx.t("disc.ask_opinion", tracking=tracking, max=FEEDBACK_MAX),
        choices=(*stances, back, Choice(id="nav:cancel", label=ctx.t("conv.nav.cancel"))),
    )


async def _feedback_pick(ctx: Ctx, choice_id: str) -> None:
    if choice_id.startswith("disc:stance:"):
        ctx.data["stance"] = choice_id.removeprefix("disc:stance:")
        ctx.say(ctx.t("disc.stance_set", stance=ctx.t(f"disc.stance.{ctx.data['stance']}")))
        ctx.stay()


async def _feedback_text(ctx: Ctx, text: str) -> None:
    tracking = str(ctx.data.get("tracking", ""))
    masked, findings = mask(text)
    await ctx.execute(
        AddFeedback(
            tracking=tracking,
            body=masked,
            person_id=ctx.person_id,
            stance=ctx.data.get("stance"),
        )
    )
    ctx.data.pop("stance", None)
    ctx.say(ctx.t("conv.proposal.feedback_saved"))
    if findings:
        ctx.say(masked_note(findings, ctx.locale))
    ctx.goto("view", remember=False)


async def _quick_action(ctx: Ctx, tracking: str, action: str) -> None:
    """Support, follow, unfollow: say what happened, then refresh the screen if it is open."""
    try:
        if action == "support":
            count = await ctx.core.execute(
                SupportProposal(person_id=ctx.person_id, tracking=tracking)
            )
            text = ctx.t("conv.proposal.supported", count=count)
        elif action == "follow":
            await ctx.core.execute(FollowProposal(person_id=ctx.person_id, tracking=tracking))
            text = ctx.t("conv.proposal.followed")
        else:
            await ctx.core.execute(UnfollowProposal(person_id=ctx.person_id, tracking=tracking))
            text = ctx.t("conv.proposal.unfollowed")
    except AlreadyDone:
        text = ctx.t("conv.proposal.already_supported")
    except NotAllowed:
        text = ctx.t("conv.proposal.closed")
    if ctx.flow == "proposal" and ctx.data.get("tracking") == tracking:
        ctx.say(text)
        ctx.goto("view", remember=False)
        return
    # Elsewhere (a notification's button in the middle of something): answer, stay put.
    show = Choice(id=f"p:{tracking}:show", label=ctx.t("conv.proposal.view"))
    ctx.say(Reply(text=text, choices=(show,)))


async def _route(ctx: Ctx, choice_id: str) -> None:
    _, _, rest = choice_id.partition(":")
    raw, _, action = rest.rpartition(":")
    tracking = parse_tracking(raw)
    if tracking is None or action not in ACTIONS:
        ctx.say(ctx.t("conv.hint.stale"))
        ctx.menu()
        return
    if await ctx.core.views.proposal(tracking) is None:
        ctx.say(ctx.t("error.not_found"))
        if ctx.flow == "proposal":
            ctx.menu()
        else:
            ctx.stay()
        return
    if action in ("support", "follow", "unfollow"):
        await _quick_action(ctx, tracking, action)
    elif action == "show":
        ctx.start("proposal", tracking=tracking)
    else:
        ctx.start("proposal", step=action, tracking=tracking)


def flow() -> Flow:
    return Flow(
        name="proposal",
        start="view",
        on_route=_route,
        steps={
            "view": Step(render=_render_view, nav=False),
            "history": Step(render=_render_history, nav=False, remember=False),
            "feedback": Step(
                render=_render_feedback, on_text=_feedback_text, on_pick=_feedback_pick, nav=False
            ),
        },
    )
