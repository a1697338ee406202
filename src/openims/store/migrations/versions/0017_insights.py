"""insights: insight_types, insight_selectors, insight_job, insight_profiles, insight_counts, insights,
insight_events

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 13:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "insight_types",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("insight_type", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_insight_types_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", "insight_type", name=op.f("pk_insight_types")),
    )
    op.create_table(
        "insight_selectors",
        sa.Column("trail_id", sa.String(length=32), nullable=False),
        sa.Column("insight_type", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["trail_id"], ["trails.id"], name=op.f("fk_insight_selectors_trail_id_trails"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("trail_id", "insight_type", name=op.f("pk_insight_selectors")),
    )
    op.create_table(
        "insight_job",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("cursor_seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("evaluated_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), server_default="", nullable=False),
        sa.Column("lease_until_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_insight_job")),
    )
    op.create_table(
        "insight_profiles",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=160), nullable=False),
        sa.Column("first_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "subject", "dimension", "value", name=op.f("pk_insight_profiles")),
    )
    op.create_table(
        "insight_counts",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("bucket_ms", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "metric", "subject", "bucket_ms", name=op.f("pk_insight_counts")),
    )
    op.create_index("ix_insight_counts_bucket", "insight_counts", ["bucket_ms"], unique=False)
    op.create_table(
        "insights",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("insight_type", sa.String(length=32), nullable=False),
        sa.Column("insight_object", sa.String(length=200), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=True),
        sa.Column("activity_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_event_id", sa.String(length=36), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insights")),
    )
    op.create_index("ix_insights_account", "insights", ["account_id", "open", "start_ms"], unique=False)
    op.create_index("ix_insights_open", "insights", ["open", "insight_type"], unique=False)
    op.create_table(
        "insight_events",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("event_ms", sa.BigInteger(), nullable=False),
        sa.Column("insight_id", sa.String(length=36), nullable=False),
        sa.Column("insight_type", sa.String(length=32), nullable=False),
        sa.Column("insight_object", sa.String(length=200), nullable=False),
        sa.Column("service_name", sa.String(length=32), server_default="", nullable=False),
        sa.Column("event_name", sa.String(length=64), server_default="", nullable=False),
        sa.Column("source_ip", sa.String(length=64), server_default="", nullable=False),
        sa.Column("access_key_id", sa.String(length=32), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_insight_events")),
    )
    op.create_index("ix_insight_events_time", "insight_events", ["account_id", "event_ms"], unique=False)
    op.create_index("ix_insight_events_insight", "insight_events", ["insight_id"], unique=False)


def downgrade() -> None:
    op.drop_table("insight_events")
    op.drop_table("insights")
    op.drop_table("insight_counts")
    op.drop_table("insight_profiles")
    op.drop_table("insight_job")
    op.drop_table("insight_selectors")
    op.drop_table("insight_types")
