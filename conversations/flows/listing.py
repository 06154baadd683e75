"""Lists of proposals: the ones I wrote and the ones I follow, a page at a time."""

from __future__ import annotations

from conversations.flow import Ctx, Flow, Step, short_label
from core.domain.model import ProposalSummary
from core.messages import Choice, Reply

__all__ = ["PAGE_SIZE", "following_flow", "mine_flow", "summary_line"]

PAGE_SIZE = 5


def summary_line(ctx: Ctx, number: int, item: ProposalSummary) -> str:
    return ctx.t(
        "conv.list.line",
        n=number,
        title=item.title,
        tracking=item.tracking,
        status=ctx.t(f"status.{item.status.value}"),
        supports=item.support_count,
    )


async def _page_of(ctx: Ctx, kind: str, page: int) -> tuple[list[ProposalSummary], bool]:
    offset = page * PAGE_SIZE
    if kind == "mine":
        items, total = await ctx.core.views.proposals_of(
            ctx.person_id, limit=PAGE_SIZE, offset=offset
        )
        return list(items), offset + PAGE_SIZE < total
    rows = await ctx.core.views.followed_by(ctx.person_id, limit=offset + PAGE_SIZE + 1)
    return list(rows[offset : offset + PAGE_SIZE]), len(rows) > offset + PAGE_SIZE


def _render_for(kind: str):  # type: ignore[no-untyped-def]
    async def render(ctx: Ctx) -> Reply:
        page = int(ctx.data.get("page", 0))
        items, more = await _page_of(ctx, kind, page)
        if not items and page == 0:
            choice = Choice(id="menu:submit", label=ctx.t("conv.menu.submit"))
            return Reply(text=ctx.t(f"conv.list.{kind}_empty"), choices=(choice,))
        lines = [ctx.t(f"conv.list.{kind}_title")]
        lines += [summary_line(ctx, page * PAGE_SIZE + i + 1, p) for i, p in enumerate(items)]
        choices = [Choice(id=f"p:{p.tracking}:show", label=short_label(p.title)) for p in items]
        if page > 0:
            choices.append(Choice(id="list:prev", label=ctx.t("conv.list.prev")))
        if more:
            choices.append(Choice(id="list:next", label=ctx.t("conv.list.next")))
        return Reply(text="\n".join(lines), choices=tuple(choices), edit=page > 0)

    return render


async def _pick(ctx: Ctx, choice_id: str) -> None:
    page = int(ctx.data.get("page", 0))
    if choice_id == "list:next":
        ctx.data["page"] = page + 1
        ctx.stay()
    elif choice_id == "list:prev":
        ctx.data["page"] = max(0, page - 1)
        ctx.stay()


def _flow(kind: str) -> Flow:
    return Flow(
        name=kind, start="list", steps={"list": Step(render=_render_for(kind), on_pick=_pick)}
    )


def mine_flow() -> Flow:
    return _flow("mine")


def following_flow() -> Flow:
    return _flow("following")
