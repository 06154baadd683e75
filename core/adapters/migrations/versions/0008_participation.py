"""participation: the level an identity vouches for, and when a person was verified

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.adapters.orm

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.add_column(
            sa.Column("level", sa.String(length=16), nullable=False, server_default="guest")
        )
    # identities on a phone-tied messenger already vouch for more than a web session
    op.execute("UPDATE identities SET level = 'messenger' WHERE channel IN ('telegram', 'kakao')")
    with op.batch_alter_table("identities") as batch:
        batch.alter_column("level", server_default=None)
    with op.batch_alter_table("persons") as batch:
        batch.add_column(sa.Column("verified_at", core.adapters.orm.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("persons") as batch:
        batch.drop_column("verified_at")
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("level")
