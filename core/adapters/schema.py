"""Imports every table module so ``metadata`` is complete (Alembic and tests use it)."""

from __future__ import annotations

from core.adapters import orm

# Feature table modules register themselves on the same Base.metadata when imported.
# Add one line per module below.
import core.adapters.orm_delivery  # noqa: F401,E402
import core.adapters.orm_web  # noqa: F401,E402
import core.adapters.orm_officials  # noqa: F401,E402
import core.adapters.orm_campaigns  # noqa: F401,E402
import core.adapters.orm_sync  # noqa: F401,E402

metadata = orm.Base.metadata
