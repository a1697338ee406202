"""keys: AccessKey last use, AccessKey network access policies, credential report snapshots

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 04:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credential_reports",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("generated_ms", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_credential_reports_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_credential_reports")),
    )
    op.create_table(
        "access_key_policies",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("access_key_id", sa.String(length=32), nullable=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["access_key_id"],
            ["access_keys.id"],
            name=op.f("fk_access_key_policies_access_key_id_access_keys"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_access_key_policies_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_key_policies")),
    )
    with op.batch_alter_table("access_key_policies", schema=None) as batch_op:
        batch_op.create_index("ix_access_key_policies_account", ["account_id"], unique=False)

    op.create_table(
        "access_key_usage",
        sa.Column("access_key_id", sa.String(length=32), nullable=False),
        sa.Column("last_used_ms", sa.BigInteger(), nullable=False),
        sa.Column("service_name", sa.String(length=32), server_default="", nullable=False),
        sa.Column("source_ip", sa.String(length=64), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["access_key_id"],
            ["access_keys.id"],
            name=op.f("fk_access_key_usage_access_key_id_access_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("access_key_id", name=op.f("pk_access_key_usage")),
    )


def downgrade() -> None:
    op.drop_table("access_key_usage")
    with op.batch_alter_table("access_key_policies", schema=None) as batch_op:
        batch_op.drop_index("ix_access_key_policies_account")

    op.drop_table("access_key_policies")
    op.drop_table("credential_reports")
