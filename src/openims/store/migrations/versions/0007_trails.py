"""trails: trails, their outbox, delivery batches and per-target status

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trail_generations",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_trail_generations_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_trail_generations")),
    )
    op.create_table(
        "trails",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=36), nullable=False),
        sa.Column("event_rw", sa.String(length=8), server_default="Write", nullable=False),
        sa.Column("trail_region", sa.String(length=256), server_default="All", nullable=False),
        sa.Column("oss_bucket_name", sa.String(length=63), server_default="", nullable=False),
        sa.Column("oss_key_prefix", sa.String(length=32), server_default="", nullable=False),
        sa.Column("oss_write_role_arn", sa.String(length=256), server_default="", nullable=False),
        sa.Column("sls_project_arn", sa.String(length=256), server_default="", nullable=False),
        sa.Column("sls_write_role_arn", sa.String(length=256), server_default="", nullable=False),
        sa.Column("syslog_address", sa.String(length=262), server_default="", nullable=False),
        sa.Column("syslog_tls", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("webhook_url", sa.String(length=2048), server_default="", nullable=False),
        sa.Column("webhook_secret_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("is_logging", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("start_logging_ms", sa.BigInteger(), nullable=True),
        sa.Column("stop_logging_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_trails_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trails")),
    )
    with op.batch_alter_table("trails", schema=None) as batch_op:
        batch_op.create_index("uq_trails_account_name", ["account_id", "name"], unique=True)

    op.create_table(
        "trail_batches",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("trail_id", sa.String(length=32), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), server_default="", nullable=False),
        sa.Column("lease_until_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_ms", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("done_targets", sa.String(length=64), server_default="", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["trail_id"], ["trails.id"], name=op.f("fk_trail_batches_trail_id_trails"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trail_batches")),
    )
    with op.batch_alter_table("trail_batches", schema=None) as batch_op:
        batch_op.create_index(
            "ix_trail_batches_delivered",
            ["delivered_ms"],
            unique=False,
            sqlite_where=sa.text("delivered_ms IS NOT NULL"),
            postgresql_where=sa.text("delivered_ms IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_trail_batches_due",
            ["next_attempt_ms"],
            unique=False,
            sqlite_where=sa.text("delivered_ms IS NULL"),
            postgresql_where=sa.text("delivered_ms IS NULL"),
        )
        batch_op.create_index("ix_trail_batches_trail", ["trail_id"], unique=False)

    op.create_table(
        "trail_target_status",
        sa.Column("trail_id", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("last_attempt_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("ok", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("last_success_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["trail_id"], ["trails.id"], name=op.f("fk_trail_target_status_trail_id_trails"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("trail_id", "target", name=op.f("pk_trail_target_status")),
    )
    op.create_table(
        "trail_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("trail_id", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("batch_id", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["trail_batches.id"], name=op.f("fk_trail_outbox_batch_id_trail_batches"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["trail_id"], ["trails.id"], name=op.f("fk_trail_outbox_trail_id_trails"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trail_outbox")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("trail_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_trail_outbox_batch", ["batch_id"], unique=False)
        batch_op.create_index(
            "ix_trail_outbox_pending",
            ["trail_id", "id"],
            unique=False,
            sqlite_where=sa.text("batch_id IS NULL"),
            postgresql_where=sa.text("batch_id IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("trail_outbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_trail_outbox_pending",
            sqlite_where=sa.text("batch_id IS NULL"),
            postgresql_where=sa.text("batch_id IS NULL"),
        )
        batch_op.drop_index("ix_trail_outbox_batch")

    op.drop_table("trail_outbox")
    op.drop_table("trail_target_status")
    with op.batch_alter_table("trail_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_trail_batches_trail")
        batch_op.drop_index(
            "ix_trail_batches_due",
            sqlite_where=sa.text("delivered_ms IS NULL"),
            postgresql_where=sa.text("delivered_ms IS NULL"),
        )
        batch_op.drop_index(
            "ix_trail_batches_delivered",
            sqlite_where=sa.text("delivered_ms IS NOT NULL"),
            postgresql_where=sa.text("delivered_ms IS NOT NULL"),
        )

    op.drop_table("trail_batches")
    with op.batch_alter_table("trails", schema=None) as batch_op:
        batch_op.drop_index("uq_trails_account_name")

    op.drop_table("trails")
    op.drop_table("trail_generations")
