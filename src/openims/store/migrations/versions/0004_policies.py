"""policies: custom policies, their versions, and attachments to users and groups

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 03:29:14.064149
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policies",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=1024), server_default="", nullable=False),
        sa.Column("default_version", sa.String(length=16), nullable=False),
        sa.Column("next_version", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_policies_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policies")),
    )
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.create_index("uq_policies_account_name", ["account_id", "name"], unique=True)

    op.create_table(
        "policy_versions",
        sa.Column("policy_id", sa.String(length=24), nullable=False),
        sa.Column("version_id", sa.String(length=16), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["policies.id"], name=op.f("fk_policy_versions_policy_id_policies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("policy_id", "version_id", name=op.f("pk_policy_versions")),
    )
    op.create_table(
        "group_policies",
        sa.Column("group_id", sa.String(length=24), nullable=False),
        sa.Column("policy_type", sa.String(length=8), nullable=False),
        sa.Column("policy_name", sa.String(length=128), nullable=False),
        sa.Column("policy_id", sa.String(length=24), nullable=True),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("attached_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_group_policies_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name=op.f("fk_group_policies_group_id_groups"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["policies.id"], name=op.f("fk_group_policies_policy_id_policies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("group_id", "policy_type", "policy_name", name=op.f("pk_group_policies")),
    )
    with op.batch_alter_table("group_policies", schema=None) as batch_op:
        batch_op.create_index("ix_group_policies_policy", ["account_id", "policy_type", "policy_name"], unique=False)
        batch_op.create_index("ix_group_policies_policy_id", ["policy_id"], unique=False)

    op.create_table(
        "user_policies",
        sa.Column("user_id", sa.String(length=24), nullable=False),
        sa.Column("policy_type", sa.String(length=8), nullable=False),
        sa.Column("policy_name", sa.String(length=128), nullable=False),
        sa.Column("policy_id", sa.String(length=24), nullable=True),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("attached_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_user_policies_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["policies.id"], name=op.f("fk_user_policies_policy_id_policies"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_policies_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "policy_type", "policy_name", name=op.f("pk_user_policies")),
    )
    with op.batch_alter_table("user_policies", schema=None) as batch_op:
        batch_op.create_index("ix_user_policies_policy", ["account_id", "policy_type", "policy_name"], unique=False)
        batch_op.create_index("ix_user_policies_policy_id", ["policy_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("user_policies", schema=None) as batch_op:
        batch_op.drop_index("ix_user_policies_policy_id")
        batch_op.drop_index("ix_user_policies_policy")

    op.drop_table("user_policies")
    with op.batch_alter_table("group_policies", schema=None) as batch_op:
        batch_op.drop_index("ix_group_policies_policy_id")
        batch_op.drop_index("ix_group_policies_policy")

    op.drop_table("group_policies")
    op.drop_table("policy_versions")
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.drop_index("uq_policies_account_name")

    op.drop_table("policies")
