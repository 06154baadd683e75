"""Language switch: the person picks Korean or English; every later text follows."""

from __future__ import annotations

from conversations.flow import Ctx, Flow, Step
from core.commands import SetLocale
from core.i18n import LOCALES
from core.messages import Choice, Reply

__all__ = ["flow"]


async def _render(ctx: Ctx) -> Reply:
    return Reply(
        text=ctx.t("conv.language.prompt"),
        choices=tuple(
            Choice(id=f"lang:{loc}", label=ctx.t(f"conv.language.{loc}")) for loc in LOCALES
        ),
    )


async def _pick(ctx: Ctx, choice_id: str) -> None:
    locale = choice_id.removeprefix("lang:")
    if not choice_id.startswith("lang:") or locale not in LOCALES:
        return
    await ctx.core.execute(SetLocale(person_id=ctx.person_id, locale=locale))
    ctx.locale = locale
    ctx.say(ctx.t("conv.language.changed"))
    ctx.menu()


def flow() -> Flow:
    return Flow(
        name="language", start="choose", steps={"choose": Step(render=_render, on_pick=_pick)}
    )
