"""The main menu and help: where every conversation starts and every flow ends."""

from __future__ import annotations

from conversations.flow import Ctx, Flow, Step
from core.messages import Choice, Reply

__all__ = ["MENU_ITEMS", "flow"]

# choice id → the flow it starts (None: handled here)
MENU_ITEMS: tuple[tuple[str, str | None], ...] = (
    ("menu:submit", "intake"),
    ("menu:mine", "mine"),
    ("menu:following", "following"),
    ("menu:lookup", "lookup"),
    ("menu:help", None),
    ("menu:language", "language"),
)


def menu_choices(ctx: Ctx) -> tuple[Choice, ...]:
    # Features add (routed choice id, catalog key) pairs in core.extras["menu_items"].
    extra = tuple(Choice(id=i, label=ctx.t(k)) for i, k in ctx.core.extras.get("menu_items", ()))
    return tuple(
        Choice(id=choice_id, label=ctx.t(f"conv.menu.{choice_id.split(':')[1]}"))
        for choice_id, _ in MENU_ITEMS
    ) + extra


async def _render(ctx: Ctx) -> list[Reply]:
    replies: list[Reply] = []
    if ctx.data.pop("help", False):
        replies.append(Reply(text=ctx.t("conv.menu.help_text")))
    if ctx.data.pop("greet", False):
        text = ctx.t("conv.menu.greeting") + "\n\n" + ctx.t("conv.menu.prompt")
    else:
        text = ctx.t("conv.menu.prompt")
    replies.append(Reply(text=text, choices=menu_choices(ctx)))
    return replies


async def _pick(ctx: Ctx, choice_id: str) -> None:
    if choice_id == "menu:main":
        ctx.start("menu")
        return
    for item, target in MENU_ITEMS:
        if choice_id == item:
            if target is None:
                ctx.start("menu", help=True)
            else:
                ctx.start(target)
            return


def flow() -> Flow:
    return Flow(name="menu", start="main", steps={"main": Step(render=_render, on_pick=_pick)})
