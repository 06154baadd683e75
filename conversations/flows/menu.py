"""The main menu and help: where every conversation starts and every flow ends."""

from __future__ import annotations

from collections.abc import Sequence

from conversations.flow import Ctx, Flow, MenuItem, Render, Step
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
    ("menu:link", "link"),
)


def _choices(ctx: Ctx, extra: Sequence[MenuItem]) -> tuple[Choice, ...]:
    return tuple(
        Choice(id=choice_id, label=ctx.t(f"conv.menu.{choice_id.split(':')[1]}"))
        for choice_id, _ in MENU_ITEMS
    ) + tuple(Choice(id=item.choice_id, label=ctx.t(item.label_key)) for item in extra)


def _renderer(extra: Sequence[MenuItem]) -> Render:
    async def render(ctx: Ctx) -> list[Reply]:
        replies: list[Reply] = []
        if ctx.data.pop("help", False):
            replies.append(Reply(text=ctx.t("conv.menu.help_text")))
        if ctx.data.pop("greet", False):
            text = ctx.t("conv.menu.greeting") + "\n\n" + ctx.t("conv.menu.prompt")
        else:
            text = ctx.t("conv.menu.prompt")
        replies.append(Reply(text=text, choices=_choices(ctx, extra)))
        return replies

    return render


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


def flow(extra: Sequence[MenuItem] = ()) -> Flow:
    """The main menu: the built-in entries, then ``extra`` (the features' entries, whose
    choice ids are routed to their own flows)."""
    return Flow(
        name="menu", start="main", steps={"main": Step(render=_renderer(extra), on_pick=_pick)}
    )
