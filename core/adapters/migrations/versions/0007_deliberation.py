"""deliberation: opinions' stance, replies, 공감 and withdrawal; pseudonyms; statement voting

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.adapters.orm

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("stance", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("support_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("withdrawn_at", core.adapters.orm.UTCDateTime(), nullable=True))
        batch.create_foreign_key(
            "fk_feedback_parent_id", "feedback", ["parent_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_feedback_parent_id", ["parent_id"])
    with op.batch_alter_table("feedback") as batch:
        batch.alter_column("support_count", server_default=None)
    op.create_table(
        "opinion_supports",
        sa.Column("feedback_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("created_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["feedback_id"], ["feedback.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("feedback_id", "person_id"),
    )
    op.create_index("ix_opinion_supports_person_id", "opinion_supports", ["person_id"])
    op.create_table(
        "discussion_aliases",
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposals.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("proposal_id", "person_id"),
        sa.UniqueConstraint("proposal_id", "alias", name="uq_discussion_alias"),
    )
    op.create_table(
        "statement_rounds",
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("opened_by", sa.String(length=128), nullable=False),
        sa.Column("opened_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.Column("closed_at", core.adapters.orm.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposals.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("proposal_id"),
    )
    op.create_table(
        "statements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposals.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_statements_proposal_status", "statements", ["proposal_id", "status"])
    op.create_table(
        "statement_votes",
        sa.Column("statement_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("vote", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["statement_id"], ["statements.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("statement_id", "person_id"),
    )
    op.create_index("ix_statement_votes_person_id", "statement_votes", ["person_id"])


def downgrade() -> None:
    op.drop_table("statement_votes")
    op.drop_table("statements")
    op.drop_table("statement_rounds")
    op.drop_table("discussion_aliases")
    op.drop_table("opinion_supports")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_index("ix_feedback_parent_id")
        batch.drop_constraint("fk_feedback_parent_id", type_="foreignkey")
        batch.drop_column("withdrawn_at")
        batch.drop_column("support_count")
        batch.drop_column("parent_id")
        batch.drop_column("stance")
