"""Channel-agnostic conversations: the engine and one module per flow.

``build_engine(core, packs=…)`` returns the engine with the built-in flows and each feature's
``FlowPack`` (the composition root, ``bots/server.py``, chooses the packs);
``await engine.handle(inbound)`` returns the ``Reply`` list to show. No chat SDK and no
SQLAlchemy here: flows use ``core`` commands and the read ports of ``core.api``.
"""

from __future__ import annotations

from collections.abc import Sequence

from conversations.engine import Engine
from conversations.flow import FlowPack
from conversations.flows import builtin
from core.api import CoreAPI

__all__ = ["Engine", "FlowPack", "build_engine"]


def build_engine(core: CoreAPI, *, packs: Sequence[FlowPack] = ()) -> Engine:
    """The engine with the built-in flows plus ``packs``, in that order (menu entries,
    interceptors and gates keep the packs' order)."""
    base = builtin(menu_items=[item for pack in packs for item in pack.menu])
    every = (base, *packs)
    return Engine(
        core=core,
        flows=[flow for pack in every for flow in pack.flows],
        routes=[route for pack in every for route in pack.routes],
        interceptors=[fn for pack in every for fn in pack.interceptors],
        refusals=[fn for pack in every for fn in pack.refusals],
        gates=[fn for pack in every for fn in pack.gates],
    )
