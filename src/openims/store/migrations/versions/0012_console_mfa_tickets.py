"""console_mfa_tickets: saved MFA tickets of RAM users' console sign-ins (EnableSaveMFATicket)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_mfa_tickets",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=24), nullable=False),
        sa.Column("serial_number", sa.String(length=128), nullable=False),
        sa.Column("device_bound_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_console_mfa_tickets_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_console_mfa_tickets_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_mfa_tickets")),
    )
    op.create_index("ix_console_mfa_tickets_account", "console_mfa_tickets", ["account_id"], unique=False)
    op.create_index("ix_console_mfa_tickets_expires", "console_mfa_tickets", ["expires_ms"], unique=False)
    op.create_index("ix_console_mfa_tickets_user", "console_mfa_tickets", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_console_mfa_tickets_user", table_name="console_mfa_tickets")
    op.drop_index("ix_console_mfa_tickets_expires", table_name="console_mfa_tickets")
    op.drop_index("ix_console_mfa_tickets_account", table_name="console_mfa_tickets")
    op.drop_table("console_mfa_tickets")
