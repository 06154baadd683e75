"""campaigns tables: surveys, participations, ballots, consent, topic subscriptions, pushes

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.adapters.orm

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("live_results", sa.Boolean(), nullable=False),
        sa.Column("allow_change", sa.Boolean(), nullable=False),
        sa.Column("opens_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.Column("closes_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("voter_salt", sa.LargeBinary(length=32), nullable=True),
        sa.Column("ballot_count", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.Column("closed_at", core.adapters.orm.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveys")),
        sa.UniqueConstraint("slug", name=op.f("uq_surveys_slug")),
    )
    with op.batch_alter_table("surveys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_surveys_closes_at"), ["closes_at"], unique=False)

    op.create_table(
        "ballots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("cast_at", core.adapters.orm.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["persons.id"],
            name=op.f("fk_ballots_person_id_persons"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["surveys.id"],
            name=op.f("fk_ballots_survey_id_surveys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ballots")),
        sa.UniqueConstraint("survey_id", "person_id", name=op.f("uq_ballots_survey_id_person_id")),
    )
    with op.batch_alter_table("ballots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ballots_survey_id"), ["survey_id"], unique=False)

    op.create_table(
        "consent_ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=12), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("created_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["persons.id"],
            name=op.f("fk_consent_ledger_person_id_persons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_ledger")),
    )
    with op.batch_alter_table("consent_ledger", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_ledger_person_id"), ["person_id"], unique=False
        )

    op.create_table(
        "consent_states",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("opted_in", sa.Boolean(), nullable=False),
        sa.Column("updated_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["persons.id"],
            name=op.f("fk_consent_states_person_id_persons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_consent_states")),
    )
    op.create_table(
        "pushes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=True),
        sa.Column("message", sa.JSON(), nullable=False),
        sa.Column("segment", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("scheduled_at", core.adapters.orm.UTCDateTime(), nullable=True),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("enqueued", sa.Integer(), nullable=False),
        sa.Column("fanout_done", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("progress_ref", sa.Text(), nullable=True),
        sa.Column("created_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.Column("started_at", core.adapters.orm.UTCDateTime(), nullable=True),
        sa.Column("finished_at", core.adapters.orm.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["surveys.id"],
            name=op.f("fk_pushes_survey_id_surveys"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pushes")),
    )
    with op.batch_alter_table("pushes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pushes_status_scheduled", ["status", "scheduled_at"], unique=False
        )

    op.create_table(
        "survey_participations",
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("voter_key", sa.String(length=64), nullable=False),
        sa.Column("ballot_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["surveys.id"],
            name=op.f("fk_survey_participations_survey_id_surveys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("survey_id", "voter_key", name=op.f("pk_survey_participations")),
    )
    op.create_table(
        "topic_subscriptions",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("created_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["persons.id"],
            name=op.f("fk_topic_subscriptions_person_id_persons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("person_id", "kind", "topic", name=op.f("pk_topic_subscriptions")),
    )
    with op.batch_alter_table("topic_subscriptions", schema=None) as batch_op:
        batch_op.create_index("ix_topic_subscriptions_topic", ["kind", "topic"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("topic_subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_topic_subscriptions_topic")

    op.drop_table("topic_subscriptions")
    op.drop_table("survey_participations")
    with op.batch_alter_table("pushes", schema=None) as batch_op:
        batch_op.drop_index("ix_pushes_status_scheduled")

    op.drop_table("pushes")
    op.drop_table("consent_states")
    with op.batch_alter_table("consent_ledger", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_ledger_person_id"))

    op.drop_table("consent_ledger")
    with op.batch_alter_table("ballots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ballots_survey_id"))

    op.drop_table("ballots")
    with op.batch_alter_table("surveys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_surveys_closes_at"))

    op.drop_table("surveys")
