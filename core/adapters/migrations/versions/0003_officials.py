"""officials tables

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.adapters.orm

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "official_posts",
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("ts", sa.String(length=32), nullable=True),
        sa.Column("thread_open", sa.Boolean(), nullable=False),
        sa.Column("created_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.Column("updated_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposals.id"],
            name=op.f("fk_official_posts_proposal_id_proposals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("proposal_id", name=op.f("pk_official_posts")),
    )
    op.create_table(
        "official_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.Column("lease_until", core.adapters.orm.UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.Column("done_at", core.adapters.orm.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_official_outbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_official_outbox_dedupe_key")),
    )
    with op.batch_alter_table("official_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_official_outbox_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_official_outbox_proposal_id"), ["proposal_id"], unique=False
        )
    op.create_table(
        "official_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("tracking", sa.String(length=16), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_official_audit")),
    )
    with op.batch_alter_table("official_audit", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_official_audit_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            "ix_official_audit_tracking", ["tracking", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("official_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_official_audit_tracking")
        batch_op.drop_index(batch_op.f("ix_official_audit_created_at"))
    op.drop_table("official_audit")
    with op.batch_alter_table("official_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_official_outbox_proposal_id"))
        batch_op.drop_index("ix_official_outbox_due")
    op.drop_table("official_outbox")
    op.drop_table("official_posts")
