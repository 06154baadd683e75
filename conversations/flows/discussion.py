"""The discussion of a proposal: read opinions a page at a time, write one with a stance, reply,
공감, withdraw my own; statement voting (쟁점 투표) one statement at a time.

Every choice id names what it acts on (``d:o:<opinion>:support``, ``d:s:<statement>:agree``), so
a tap on an older message acts on the opinion or statement it was shown with, never another.
"""

from __future__ import annotations

from conversations.flow import Ctx, Flow, Step
from conversations.privacy import masked_note
from core.commands import AddFeedback
from core.deliberation.commands import AddStatement, SupportOpinion, VoteStatement, WithdrawOpinion
from core.deliberation.model import (
    OPINION_MAX,
    STATEMENT_MAX,
    OpinionSort,
    OpinionView,
    Stance,
    Vote,
    alias_label,
)
from core.domain.errors import AlreadyDone, NotAllowed, NotFound
from core.domain.model import parse_tracking
from core.messages import Choice, Reply
from core.privacy.pii import mask

__all__ = ["PREFIX", "flow", "stance_counts"]

PREFIX = "d:"
EXCERPT = 160  # characters of an opinion shown on a page; the whole text on its own screen
REPLY_EXCERPT = 80


def _cut(text: str, limit: int) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1].rstrip() + "…"


def _who(ctx: Ctx, item: OpinionView) -> str:
    if item.official:
        return ctx.t("disc.official")
    if item.alias is None:
        return ctx.t("disc.forum_citizen")
    name = ctx.t("disc.citizen", number=alias_label(item.alias))
    return name + (ctx.t("disc.me") if item.mine else "")


def _head(ctx: Ctx, item: OpinionView) -> str:
    parts = [_who(ctx, item)]
    if item.stance is not None:
        parts.append(ctx.t(f"disc.stance.{item.stance.value}"))
    parts.append(ctx.t("disc.supports", count=item.support_count))
    if item.reply_count:
        parts.append(ctx.t("disc.replies", count=item.reply_count))
    return " · ".join(parts)


def stance_counts(ctx: Ctx, total: int, by_stance: dict[str, int]) -> str:
    """"의견 5건 (찬성 3 · 반대 1 · 기타 1)": the proposal screen's line."""
    parts = [f"{ctx.t(f'disc.stance.{s.value}')} {by_stance.get(s.value, 0)}" for s in Stance]
    return ctx.t("disc.count_line", count=total, detail=" · ".join(parts))


def _tracking(ctx: Ctx) -> str:
    return str(ctx.data.get("tracking", ""))


def _back_to_proposal(ctx: Ctx) -> Choice:
    return Choice(id=f"p:{_tracking(ctx)}:show", label=ctx.t("conv.proposal.back_to_view"))


# --- the list ----------------------------------------------------------------------------
async def _render_list(ctx: Ctx) -> Reply:
    tracking = _tracking(ctx)
    sort = OpinionSort(ctx.data.get("sort", OpinionSort.TOP.value))
    page = await ctx.core.discussions.page(
        tracking, sort=sort, page=int(ctx.data.get("page", 0)), reader=ctx.person_id
    )
    if page is None:
        ctx.say(ctx.t("error.not_found"))
        ctx.menu()
        return Reply(text="")
    ctx.data["page"] = page.page
    lines = [ctx.t("disc.list_title", title=page.title, tracking=page.tracking),
             stance_counts(ctx, page.total, page.by_stance)]
    choices: list[Choice] = []
    if not page.items:
        lines.append(ctx.t("disc.empty"))
    for number, item in enumerate(page.items, start=1):
        lines += ["", f"{number}. {_head(ctx, item)}", _cut(item.body, EXCERPT)]
        for reply in item.replies:
            lines.append("   ↳ " + ctx.t("disc.reply_line", who=_who(ctx, reply),
                                           body=_cut(reply.body, REPLY_EXCERPT)))
        choices.append(Choice(id=f"{PREFIX}o:{item.id}:open",
                              label=ctx.t("disc.open", n=number)))
    if page.pages > 1:
        lines += ["", ctx.t("disc.page", page=page.page + 1, pages=page.pages)]
    choices.append(Choice(id=f"{PREFIX}{tracking}:write", label=ctx.t("disc.write")))
    if page.page + 1 < page.pages:
        choices.append(Choice(id="disc:next", label=ctx.t("disc.next")))
    if page.page > 0:
        choices.append(Choice(id="disc:prev", label=ctx.t("disc.prev")))
    other = OpinionSort.NEW if sort is OpinionSort.TOP else OpinionSort.TOP
    choices.append(Choice(id=f"disc:sort:{other.value}", label=ctx.t(f"disc.sort.{other.value}")))
    choices.append(_back_to_proposal(ctx))
    return Reply(text="\n".join(lines), choices=tuple(choices), meta={"tracking": tracking})


async def _pick_list(ctx: Ctx, choice_id: str) -> None:
    page = int(ctx.data.get("page", 0))
    if choice_id == "disc:next":
        ctx.data["page"] = page + 1
    elif choice_id == "disc:prev":
        ctx.data["page"] = max(0, page - 1)
    elif choice_id.startswith("disc:sort:"):
        ctx.data["sort"] = choice_id.removeprefix("disc:sort:")
        ctx.data["page"] = 0
    else:
        return
    ctx.stay()


# --- one opinion -------------------------------------------------------------------------
async def _render_opinion(ctx: Ctx) -> Reply:
    found = await ctx.core.discussions.opinion(int(ctx.data.get("opinion", 0)),
                                               reader=ctx.person_id)
    if found is None:
        ctx.say(ctx.t("disc.gone"))
        ctx.goto("list", remember=False)
        return Reply(text="")
    tracking, item = found
    ctx.data["tracking"] = tracking
    lines = [_head(ctx, item), item.body]
    if item.replies:
        lines += ["", ctx.t("disc.replies_title", count=item.reply_count)]
        for reply in item.replies:
            lines.append("↳ " + ctx.t("disc.reply_line", who=_who(ctx, reply), body=reply.body))
    o = f"{PREFIX}o:{item.id}"
    choices: list[Choice] = []
    if not item.mine and not item.supported and not item.official:
        choices.append(Choice(id=f"{o}:support", label=ctx.t("disc.support")))
    if not item.official:
        choices.append(Choice(id=f"{o}:reply", label=ctx.t("disc.reply")))
    if item.mine:
        choices.append(Choice(id=f"{o}:withdraw", label=ctx.t("disc.withdraw")))
    choices.append(Choice(id=f"{PREFIX}{tracking}:list", label=ctx.t("disc.back_to_list")))
    return Reply(text="\n".join(lines), choices=tuple(choices))


# --- writing -----------------------------------------------------------------------------
def _stance_choices(ctx: Ctx) -> list[Choice]:
    chosen = ctx.data.get("stance")
    out = []
    for stance in Stance:
        label = ctx.t(f"disc.stance.{stance.value}")
        if chosen == stance.value:
            label = ctx.t("disc.chosen", label=label)
        out.append(Choice(id=f"disc:stance:{stance.value}", label=label))
    return out


async def _render_write(ctx: Ctx) -> Reply:
    key = "disc.ask_reply" if ctx.data.get("parent") else "disc.ask_opinion"
    choices = [] if ctx.data.get("parent") else _stance_choices(ctx)
    back = (Choice(id=f"{PREFIX}o:{ctx.data['parent']}:open", label=ctx.t("disc.back"))
            if ctx.data.get("parent") else _back_to_proposal(ctx))
    return Reply(text=ctx.t(key, tracking=_tracking(ctx), max=OPINION_MAX),
                 choices=(*choices, back))


async def _pick_write(ctx: Ctx, choice_id: str) -> None:
    if choice_id.startswith("disc:stance:"):
        ctx.data["stance"] = choice_id.removeprefix("disc:stance:")
        ctx.say(ctx.t("disc.stance_set", stance=ctx.t(f"disc.stance.{ctx.data['stance']}")))
        ctx.stay()


def _say_masked(ctx: Ctx, findings: dict[str, int]) -> None:
    note = masked_note(findings, ctx.locale)
    if note:
        ctx.say(note)


async def _write_text(ctx: Ctx, text: str) -> None:
    parent = ctx.data.get("parent")
    masked, findings = mask(text)  # never kept or shown unmasked (the core masks again)
    try:
        await ctx.execute(AddFeedback(
            tracking=_tracking(ctx), body=masked, person_id=ctx.person_id,
            stance=None if parent else ctx.data.get("stance"), parent_id=parent,
        ))
    except NotFound:
        ctx.say(ctx.t("disc.gone"))
        ctx.goto("list", remember=False)
        return
    ctx.data.pop("stance", None)
    if parent:
        ctx.say(ctx.t("disc.reply_saved"))
        _say_masked(ctx, findings)
        ctx.data["opinion"] = parent
        ctx.data.pop("parent", None)
        ctx.goto("opinion", remember=False)
        return
    ctx.say(ctx.t("conv.proposal.feedback_saved"))
    _say_masked(ctx, findings)
    ctx.data.update(sort=OpinionSort.NEW.value, page=0)
    ctx.goto("list", remember=False)


# --- withdrawing -------------------------------------------------------------------------
async def _render_withdraw(ctx: Ctx) -> Reply:
    o = f"{PREFIX}o:{ctx.data.get('opinion')}"
    return Reply(text=ctx.t("disc.withdraw_ask"), choices=(
        Choice(id=f"{o}:withdraw_yes", label=ctx.t("disc.withdraw_yes")),
        Choice(id=f"{o}:open", label=ctx.t("disc.withdraw_no")),
    ))


# --- statement voting ------------------------------------------------------------------------
async def _render_vote(ctx: Ctx) -> Reply:
    tracking = _tracking(ctx)
    if not await ctx.core.discussions.statements_open(tracking):
        ctx.say(ctx.t("disc.vote_closed"))
        ctx.start("proposal", tracking=tracking)
        return Reply(text="")
    statement = await ctx.core.discussions.next_statement(tracking, ctx.person_id)
    add = Choice(id=f"{PREFIX}{tracking}:statement", label=ctx.t("disc.add_statement"))
    if statement is None:
        return Reply(text=ctx.t("disc.vote_done"), choices=(add, _back_to_proposal(ctx)))
    s = f"{PREFIX}s:{statement.id}"
    return Reply(
        text=ctx.t("disc.vote_ask", text=statement.text),
        choices=(
            Choice(id=f"{s}:agree", label=ctx.t("disc.vote.agree")),
            Choice(id=f"{s}:disagree", label=ctx.t("disc.vote.disagree")),
            Choice(id=f"{s}:pass", label=ctx.t("disc.vote.pass")),
            add,
            _back_to_proposal(ctx),
        ),
    )


async def _render_statement(ctx: Ctx) -> Reply:
    return Reply(text=ctx.t("disc.ask_statement", max=STATEMENT_MAX),
                 choices=(Choice(id=f"{PREFIX}{_tracking(ctx)}:vote", label=ctx.t("disc.back")),))


async def _statement_text(ctx: Ctx, text: str) -> None:
    masked, findings = mask(text)
    try:
        await ctx.execute(AddStatement(tracking=_tracking(ctx), text=masked,
                                       person_id=ctx.person_id))
    except NotAllowed:
        ctx.say(ctx.t("disc.vote_closed"))
        ctx.start("proposal", tracking=_tracking(ctx))
        return
    ctx.say(ctx.t("disc.statement_saved"))
    _say_masked(ctx, findings)
    ctx.goto("vote", remember=False)


# --- routing -----------------------------------------------------------------------------
async def _opinion_action(ctx: Ctx, opinion_id: int, action: str) -> None:
    if action == "open":
        ctx.start("discussion", step="opinion", opinion=opinion_id,
                  tracking=ctx.data.get("tracking", ""))
        return
    if action == "reply":
        found = await ctx.core.discussions.opinion(opinion_id)
        if found is None:
            ctx.say(ctx.t("disc.gone"))
            ctx.stay()
            return
        ctx.start("discussion", step="write", parent=opinion_id, tracking=found[0])
        return
    if action == "withdraw":
        ctx.start("discussion", step="withdraw", opinion=opinion_id,
                  tracking=ctx.data.get("tracking", ""))
        return
    try:
        if action == "support":
            count = await ctx.execute(SupportOpinion(opinion_id=opinion_id,
                                                     person_id=ctx.person_id))
            ctx.say(ctx.t("disc.supported", count=count))
        elif action == "withdraw_yes":
            await ctx.execute(WithdrawOpinion(opinion_id=opinion_id, person_id=ctx.person_id))
            ctx.say(ctx.t("disc.withdrawn"))
            ctx.start("discussion", step="list", tracking=ctx.data.get("tracking", ""))
            return
        else:
            ctx.say(ctx.t("conv.hint.stale"))
    except AlreadyDone:
        ctx.say(ctx.t("disc.already"))
    except NotAllowed:
        ctx.say(ctx.t("disc.not_allowed"))
    except NotFound:
        ctx.say(ctx.t("disc.gone"))
        ctx.stay()
        return
    ctx.start("discussion", step="opinion", opinion=opinion_id,
              tracking=ctx.data.get("tracking", ""))


async def _vote_action(ctx: Ctx, statement_id: int, action: str) -> None:
    try:
        vote = Vote(action)
    except ValueError:
        ctx.say(ctx.t("conv.hint.stale"))
        ctx.stay()
        return
    try:
        await ctx.execute(VoteStatement(statement_id=statement_id, person_id=ctx.person_id,
                                        vote=vote))
        ctx.say(ctx.t("disc.voted"))
    except AlreadyDone:
        ctx.say(ctx.t("disc.already_voted"))
    except (NotFound, NotAllowed):
        ctx.say(ctx.t("disc.vote_closed"))
    ctx.stay()


async def _route(ctx: Ctx, choice_id: str) -> None:
    parts = choice_id.removeprefix(PREFIX).split(":")
    if len(parts) == 3 and parts[0] in ("o", "s") and parts[1].isdigit():
        if parts[0] == "o":
            await _opinion_action(ctx, int(parts[1]), parts[2])
        else:
            await _vote_action(ctx, int(parts[1]), parts[2])
        return
    if len(parts) == 2 and parts[1] in ("list", "write", "vote", "statement"):
        tracking = parse_tracking(parts[0])
        if tracking is not None and await ctx.core.views.proposal(tracking) is not None:
            ctx.start("discussion", step=parts[1], tracking=tracking)
            return
    ctx.say(ctx.t("conv.hint.stale"))
    ctx.stay()


def flow() -> Flow:
    return Flow(
        name="discussion",
        start="list",
        on_route=_route,
        steps={
            "list": Step(render=_render_list, on_pick=_pick_list, nav=False),
            "opinion": Step(render=_render_opinion, nav=False),
            "write": Step(render=_render_write, on_pick=_pick_write, on_text=_write_text,
                          nav=False),
            "withdraw": Step(render=_render_withdraw, nav=False, remember=False),
            "vote": Step(render=_render_vote, nav=False),
            "statement": Step(render=_render_statement, on_text=_statement_text, nav=False),
        },
    )

