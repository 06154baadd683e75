"""privacy: the consent ledger also records the personal-data notice (purpose, version)

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consent_ledger") as batch:
        batch.add_column(
            sa.Column("purpose", sa.String(16), nullable=False, server_default="campaign")
        )
        batch.add_column(sa.Column("version", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consent_ledger") as batch:
        batch.drop_column("version")
        batch.drop_column("purpose")
