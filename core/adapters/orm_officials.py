"""Tables for the officials feature (filled in by that feature's work)."""

from __future__ import annotations

from core.adapters.orm import Base  # noqa: F401
