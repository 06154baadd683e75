"""survey audiences: surveys.audience (open | targeted) and the invitations of targeted ones

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.adapters.orm

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("surveys") as batch:
        batch.add_column(
            sa.Column("audience", sa.String(length=12), nullable=False, server_default="open")
        )
    with op.batch_alter_table("surveys") as batch:
        batch.alter_column("audience", server_default=None)
    op.create_table(
        "survey_invitations",
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("created_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["survey_id"], ["surveys.id"],
            name=op.f("fk_survey_invitations_survey_id_surveys"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"],
            name=op.f("fk_survey_invitations_person_id_persons"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("survey_id", "person_id", name=op.f("pk_survey_invitations")),
    )
    op.create_index(
        op.f("ix_survey_invitations_person_id"), "survey_invitations", ["person_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_survey_invitations_person_id"), table_name="survey_invitations")
    op.drop_table("survey_invitations")
    with op.batch_alter_table("surveys") as batch:
        batch.drop_column("audience")
