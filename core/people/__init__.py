"""One person, one voice: identities on several channels linked into one person.

``/link`` (or the menu's "다른 메신저 연결") shows a one-time code; typed on another channel
(``/link 123456`` or "연결 123456") it joins both identities into one person
(``core.people.merge``). Commands in ``core.people.commands``, plain results in
``core.people.model``; the channel-neutral conversation in ``conversations/flows/link.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.kernel import Kernel
    from core.people.views import PeopleViews

__all__ = ["install"]


def install(core: Kernel) -> PeopleViews:
    """Register the link handlers on the bus; the reads are the returned ``PeopleViews``."""
    from core.people import handlers
    from core.people.views import PeopleViews

    handlers.register(core.bus)
    return PeopleViews(core.db)
