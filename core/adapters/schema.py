"""Imports every table module so ``metadata`` is complete (Alembic and tests use it)."""

from __future__ import annotations

import core.adapters.orm_campaigns  # noqa: F401,E402

# Feature table modules register themselves on the same Base.metadata when imported.
# Add one line per module below.
import core.adapters.orm_deliberation  # noqa: F401,E402
import core.adapters.orm_delivery  # noqa: F401,E402
import core.adapters.orm_officials  # noqa: F401,E402
import core.adapters.orm_people  # noqa: F401,E402
import core.adapters.orm_sync  # noqa: F401,E402
import core.adapters.orm_web  # noqa: F401,E402
from core.adapters import orm

metadata = orm.Base.metadata


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """False for what migrations keep outside the models (the similar-proposal index)."""
    from core.adapters.search import FTS_TABLE, PG_INDEX

    if type_ == "table" and name is not None and name.startswith(FTS_TABLE):
        return False
    return not (type_ == "index" and name == PG_INDEX)
