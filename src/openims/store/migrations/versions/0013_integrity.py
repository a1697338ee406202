"""the tamper-evident log: log_queue, log_leaves, log_state, log_checkpoints, log_keys

Events recorded before this revision are queued for the log here, oldest first, so the whole history is covered.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 11:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_queue",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_queue")),
        sa.UniqueConstraint("event_id", name=op.f("uq_log_queue_event_id")),
    )
    op.create_index("ix_log_queue_account", "log_queue", ["account_id", "id"], unique=False)
    op.create_table(
        "log_leaves",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "leaf_index", name=op.f("pk_log_leaves")),
        sa.UniqueConstraint("event_id", name=op.f("uq_log_leaves_event_id")),
    )
    op.create_table(
        "log_state",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("frontier", sa.Text(), nullable=False),
        sa.Column("start", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_log_state")),
    )
    op.create_table(
        "log_checkpoints",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("previous", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("frontier", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "size", name=op.f("pk_log_checkpoints")),
    )
    op.create_table(
        "log_keys",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("public_pem", sa.Text(), nullable=False),
        sa.Column("private_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("retired_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_log_keys")),
    )
    op.execute(
        "INSERT INTO log_queue (account_id, event_id) SELECT account_id, event_id FROM events ORDER BY event_ms, seq"
    )


def downgrade() -> None:
    op.drop_table("log_keys")
    op.drop_table("log_checkpoints")
    op.drop_table("log_state")
    op.drop_table("log_leaves")
    op.drop_index("ix_log_queue_account", table_name="log_queue")
    op.drop_table("log_queue")
