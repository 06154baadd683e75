"""campaigns tables

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import core.adapters.orm  # noqa: F401

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tables of core/adapters/orm_campaigns.py: op.create_table(...) for each, and indexes.
    pass


def downgrade() -> None:
    pass
