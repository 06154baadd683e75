"""The built-in citizen flows: menu, language, intake, my/followed proposals, lookup, proposal."""

from __future__ import annotations

from conversations.flow import Flow

__all__ = ["builtin_flows"]


def builtin_flows() -> list[Flow]:
    from conversations.flows import (
        discussion,
        intake,
        language,
        listing,
        lookup,
        menu,
        proposal,
    )

    return [
        menu.flow(),
        language.flow(),
        intake.flow(),
        listing.mine_flow(),
        listing.following_flow(),
        lookup.flow(),
        proposal.flow(),
        discussion.flow(),
    ]
