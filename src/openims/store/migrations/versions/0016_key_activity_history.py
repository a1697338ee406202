"""AccessKey activity indexes on events, the trails' live_from_ms, and delivery_history_jobs

Trails that already started logging get live_from_ms = their creation time (rounded up to the second), so a
historic delivery job for them delivers only what is older than the trail and can never repeat an event their
live delivery sent.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 13:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

KEYED = sa.text("access_key_id <> ''")
ACTIVITY = {
    "ix_events_key_ip": ["source_ip"],
    "ix_events_key_event": ["event_name"],
    "ix_events_key_resource": ["resource_type", "resource_name"],
}


def upgrade() -> None:
    for name, cols in ACTIVITY.items():
        op.create_index(
            name,
            "events",
            ["account_id", "access_key_id", "service_name", *cols, "event_ms", "seq"],
            unique=False,
            sqlite_where=KEYED,
            postgresql_where=KEYED,
        )
    with op.batch_alter_table("trails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("live_from_ms", sa.BigInteger(), nullable=True))
    op.execute("UPDATE trails SET live_from_ms = ((created_ms + 999) / 1000) * 1000 WHERE start_logging_ms IS NOT NULL")
    op.create_table(
        "delivery_history_jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("trail_id", sa.String(length=32), nullable=True),
        sa.Column("trail_name", sa.String(length=36), nullable=False),
        sa.Column("client_token", sa.String(length=64), nullable=True),
        sa.Column("status", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("window_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("window_end_ms", sa.BigInteger(), nullable=False),
        sa.Column("event_rw", sa.String(length=8), server_default="All", nullable=False),
        sa.Column("cursor_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("cursor_seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("chunk_end_ms", sa.BigInteger(), nullable=True),
        sa.Column("chunk_end_seq", sa.BigInteger(), nullable=True),
        sa.Column("chunk_done_targets", sa.String(length=64), server_default="", nullable=False),
        sa.Column("delivered", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), server_default="", nullable=False),
        sa.Column("lease_until_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("started_ms", sa.BigInteger(), nullable=True),
        sa.Column("finished_ms", sa.BigInteger(), nullable=True),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("deleted_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_delivery_history_jobs_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["trail_id"], ["trails.id"], name=op.f("fk_delivery_history_jobs_trail_id_trails"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_history_jobs")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_delivery_history_jobs_account", "delivery_history_jobs", ["account_id", "id"], unique=False)
    op.create_index("uq_delivery_history_jobs_trail", "delivery_history_jobs", ["trail_id"], unique=True)
    op.create_index(
        "uq_delivery_history_jobs_running",
        "delivery_history_jobs",
        ["account_id"],
        unique=True,
        sqlite_where=sa.text("status < 2 AND deleted_ms IS NULL"),
        postgresql_where=sa.text("status < 2 AND deleted_ms IS NULL"),
    )
    op.create_index(
        "ix_delivery_history_jobs_due",
        "delivery_history_jobs",
        ["next_attempt_ms"],
        unique=False,
        sqlite_where=sa.text("status < 2"),
        postgresql_where=sa.text("status < 2"),
    )


def downgrade() -> None:
    op.drop_table("delivery_history_jobs")
    with op.batch_alter_table("trails", schema=None) as batch_op:
        batch_op.drop_column("live_from_ms")
    for name in ACTIVITY:
        op.drop_index(name, table_name="events")
