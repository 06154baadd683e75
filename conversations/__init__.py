"""Channel-agnostic conversations: the engine and one module per flow.

``build_engine(core)`` returns the engine; ``await engine.handle(inbound)`` returns the
``Reply`` list to show. No chat SDK and no SQLAlchemy here: flows use ``core`` commands and views.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_engine"]


def build_engine(core: Any) -> Any:
    from conversations.engine import Engine

    return Engine.from_core(core)
