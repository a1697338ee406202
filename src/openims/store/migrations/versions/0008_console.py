"""console: web console sessions and the root sign-in lockout

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 03:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_root_lockouts",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("first_failed_ms", sa.BigInteger(), nullable=True),
        sa.Column("locked_until_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_console_root_lockouts_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_console_root_lockouts")),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=24), nullable=True),
        sa.Column("user_name", sa.String(length=160), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("mfa_authenticated", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("pending_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("pending_serial", sa.String(length=128), nullable=True),
        sa.Column("next_stages", sa.String(length=64), server_default="", nullable=False),
        sa.Column("flash", sa.Text(), nullable=True),
        sa.Column("source_ip", sa.String(length=64), server_default="", nullable=False),
        sa.Column("user_agent", sa.String(length=255), server_default="", nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_console_sessions_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_console_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_sessions")),
    )
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_console_sessions_account", ["account_id"], unique=False)
        batch_op.create_index("ix_console_sessions_expires", ["expires_ms"], unique=False)
        batch_op.create_index("ix_console_sessions_user", ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_console_sessions_user")
        batch_op.drop_index("ix_console_sessions_expires")
        batch_op.drop_index("ix_console_sessions_account")

    op.drop_table("console_sessions")
    op.drop_table("console_root_lockouts")
