"""trail digest files and background verifications: trail_digest_heads, trail_digests, verify_jobs

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 13:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trail_digest_heads",
        sa.Column("trail_id", sa.String(length=32), nullable=False),
        sa.Column("location", sa.String(length=128), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("digest_key", sa.Text(), nullable=True),
        sa.Column("digest_sha256", sa.String(length=64), nullable=True),
        sa.Column("signature", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["trail_id"], ["trails.id"], name=op.f("fk_trail_digest_heads_trail_id_trails"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("trail_id", "location", name=op.f("pk_trail_digest_heads")),
    )
    op.create_table(
        "trail_digests",
        sa.Column("trail_id", sa.String(length=32), nullable=False),
        sa.Column("location", sa.String(length=128), nullable=False),
        sa.Column("batch_id", sa.String(length=80), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("digest_key", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trail_id"], ["trails.id"], name=op.f("fk_trail_digests_trail_id_trails"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("trail_id", "location", "batch_id", name=op.f("pk_trail_digests")),
    )
    op.create_index("ix_trail_digests_created", "trail_digests", ["created_ms"], unique=False)
    op.create_table(
        "verify_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("events_done", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("events_total", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("started_ms", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_ms", sa.BigInteger(), nullable=False),
        sa.Column("finished_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_verify_jobs_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verify_jobs")),
    )
    op.create_index("ix_verify_jobs_account", "verify_jobs", ["account_id", "started_ms"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_verify_jobs_account", table_name="verify_jobs")
    op.drop_table("verify_jobs")
    op.drop_index("ix_trail_digests_created", table_name="trail_digests")
    op.drop_table("trail_digests")
    op.drop_table("trail_digest_heads")
