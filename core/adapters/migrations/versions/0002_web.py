"""web tables

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.adapters.orm

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("created_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.Column("delivered_up_to", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_web_sessions_last_seen_at"), ["last_seen_at"], unique=False
        )

    op.create_table(
        "web_inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=128), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_inbox")),
    )
    with op.batch_alter_table("web_inbox", schema=None) as batch_op:
        batch_op.create_index("ix_web_inbox_address_id", ["address", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_web_inbox_created_at"), ["created_at"], unique=False)

    op.create_table(
        "web_uploads",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["web_sessions.id"],
            name=op.f("fk_web_uploads_session_id_web_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_uploads")),
    )
    with op.batch_alter_table("web_uploads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_uploads_session_id"), ["session_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("web_uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_uploads_session_id"))
    op.drop_table("web_uploads")
    with op.batch_alter_table("web_inbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_inbox_created_at"))
        batch_op.drop_index("ix_web_inbox_address_id")
    op.drop_table("web_inbox")
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_sessions_last_seen_at"))
    op.drop_table("web_sessions")
