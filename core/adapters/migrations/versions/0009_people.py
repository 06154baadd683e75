"""people: link codes, failed guesses, merged people; SMS verification codes, verified phones

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.adapters.orm

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("created_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.Column("expires_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.Column("used_at", core.adapters.orm.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_link_codes_person_id_persons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_codes")),
        sa.UniqueConstraint("digest", name=op.f("uq_link_codes_digest")),
    )
    op.create_index(op.f("ix_link_codes_person_id"), "link_codes", ["person_id"])
    op.create_table(
        "link_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("created_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_link_attempts_person_id_persons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_attempts")),
    )
    op.create_index(op.f("ix_link_attempts_person_id"), "link_attempts", ["person_id"])
    op.create_table(
        "person_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survivor_id", sa.Integer(), nullable=False),
        sa.Column("merged_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("created_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["survivor_id"], ["persons.id"], name=op.f("fk_person_merges_survivor_id_persons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_merges")),
    )
    op.create_index(op.f("ix_person_merges_survivor_id"), "person_merges", ["survivor_id"])
    op.create_table(
        "verification_codes",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("code_digest", sa.String(length=64), nullable=False),
        sa.Column("phone_digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("window_start", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.Column("sent_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"],
            name=op.f("fk_verification_codes_person_id_persons"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_verification_codes")),
    )
    op.create_table(
        "verified_phones",
        sa.Column("phone_digest", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("verified_at", core.adapters.orm.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"],
            name=op.f("fk_verified_phones_person_id_persons"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("phone_digest", name=op.f("pk_verified_phones")),
    )
    op.create_index(op.f("ix_verified_phones_person_id"), "verified_phones", ["person_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_verified_phones_person_id"), table_name="verified_phones")
    op.drop_table("verified_phones")
    op.drop_table("verification_codes")
    op.drop_index(op.f("ix_person_merges_survivor_id"), table_name="person_merges")
    op.drop_table("person_merges")
    op.drop_index(op.f("ix_link_attempts_person_id"), table_name="link_attempts")
    op.drop_table("link_attempts")
    op.drop_index(op.f("ix_link_codes_person_id"), table_name="link_codes")
    op.drop_table("link_codes")
