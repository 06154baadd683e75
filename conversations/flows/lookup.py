"""Look up a proposal by its tracking number, or search titles and bodies by words."""

from __future__ import annotations

from conversations.flow import Ctx, Flow, Step, short_label
from conversations.flows.listing import summary_line
from core.domain.model import parse_tracking
from core.messages import Choice, Reply

__all__ = ["flow"]

QUERY_MAX = 100
RESULTS = 5


async def _ask(ctx: Ctx) -> Reply:
    return Reply(text=ctx.t("conv.lookup.ask"))


async def _results(ctx: Ctx) -> Reply:
    query = str(ctx.data.get("query", ""))
    # Likeness first (spacing-insensitive, core.similarity); words too short for it (a
    # two-syllable "복지") or nothing alike: every word contained, newest first.
    found = await ctx.core.similar.search(query, limit=RESULTS)
    if not found:
        found = await ctx.core.views.search(query, limit=RESULTS)
    if not found:
        return Reply(text=ctx.t("conv.lookup.nothing", query=query))
    lines = [ctx.t("conv.lookup.found", query=query)]
    lines += [summary_line(ctx, i + 1, p) for i, p in enumerate(found)]
    choices = tuple(Choice(id=f"p:{p.tracking}:show", label=short_label(p.title)) for p in found)
    return Reply(text="\n".join(lines), choices=choices)


async def _text(ctx: Ctx, text: str) -> None:
    query = " ".join(text.split())
    if not query:
        ctx.retry(ctx.t("conv.lookup.ask"))
        return
    if len(query) > QUERY_MAX:
        ctx.retry(ctx.t("conv.lookup.too_long", max=QUERY_MAX))
        return
    if parse_tracking(query) is None and query[:2].upper() == "P-":
        ctx.retry(ctx.t("conv.lookup.bad_number"))
        return
    ctx.data["query"] = query
    ctx.goto("results", remember=ctx.step == "ask")


def flow() -> Flow:
    return Flow(
        name="lookup",
        start="ask",
        steps={
            "ask": Step(render=_ask, on_text=_text),
            "results": Step(render=_results, on_text=_text),
        },
    )
