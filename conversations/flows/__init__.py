"""The built-in citizen flows: menu, language, intake, my/followed proposals, lookup, proposal,
discussion, linking identities."""

from __future__ import annotations

from collections.abc import Sequence

from conversations.flow import FlowPack, MenuItem
from conversations.flows import (
    discussion,
    intake,
    language,
    link,
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
            link.flow(),
        ),
        routes=(
            ("p:", "proposal"),
            ("d:", "discussion"),
            ("menu:", "menu"),
            ("lang:", "language"),
            ("link:", "link"),
        ),
        interceptors=(link.intercept,),  # "연결 123456" from any step
        refusals=(link.offer_link,),  # a guest refused a support: the way to link a messenger
    )
