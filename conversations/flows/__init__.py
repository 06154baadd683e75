"""The built-in citizen flows: menu, language, intake, my/followed proposals, lookup, proposal,
discussion."""

from __future__ import annotations

from collections.abc import Sequence

from conversations.flow import FlowPack, MenuItem
from conversations.flows import (
    discussion,
    intake,
    language,
    listing,
    lookup,
    menu,
    proposal,
)

__all__ = ["builtin"]


def builtin(*, menu_items: Sequence[MenuItem] = ()) -> FlowPack:
    """The flows every engine has; ``menu_items`` are the features' main-menu entries."""
    return FlowPack(
        flows=(
            menu.flow(menu_items),
            language.flow(),
            intake.flow(),
            listing.mine_flow(),
            listing.following_flow(),
            lookup.flow(),
            proposal.flow(),
            discussion.flow(),
        ),
        routes=(
            ("p:", "proposal"),
            ("d:", "discussion"),
            ("menu:", "menu"),
            ("lang:", "language"),
        ),
    )
