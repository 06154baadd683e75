"""officials tables

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import core.adapters.orm  # noqa: F401

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tables of core/adapters/orm_officials.py: op.create_table(...) for each, and indexes.
    pass


def downgrade() -> None:
    pass
