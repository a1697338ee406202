"""applications, app secrets and domains

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 03:26:15.574230
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "applications",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("app_type", sa.String(length=16), nullable=False),
        sa.Column("protocol_version", sa.String(length=8), server_default="2.0", nullable=False),
        sa.Column("redirect_uris", sa.Text(), server_default="[]", nullable=False),
        sa.Column("predefined_scopes", sa.Text(), server_default="[]", nullable=False),
        sa.Column("required_scopes", sa.Text(), server_default="[]", nullable=False),
        sa.Column("access_token_validity", sa.Integer(), nullable=False),
        sa.Column("refresh_token_validity", sa.Integer(), nullable=False),
        sa.Column("is_multi_tenant", sa.Boolean(), nullable=False),
        sa.Column("secret_required", sa.Boolean(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_applications_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
    )
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.create_index("uq_applications_account_name", ["account_id", "name"], unique=True)

    op.create_table(
        "domains",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("domain_type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("verification_token", sa.String(length=64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("verified_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_domains_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", "name", name=op.f("pk_domains")),
    )
    with op.batch_alter_table("domains", schema=None) as batch_op:
        batch_op.create_index(
            "uq_domains_default",
            ["account_id"],
            unique=True,
            sqlite_where=sa.text("is_default"),
            postgresql_where=sa.text("is_default"),
        )
        batch_op.create_index(
            "uq_domains_verified_name",
            ["name"],
            unique=True,
            sqlite_where=sa.text("status = 'Verified'"),
            postgresql_where=sa.text("status = 'Verified'"),
        )

    op.create_table(
        "app_secrets",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("app_id", sa.String(length=24), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_app_secrets_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["app_id"], ["applications.id"], name=op.f("fk_app_secrets_app_id_applications"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_secrets")),
    )
    with op.batch_alter_table("app_secrets", schema=None) as batch_op:
        batch_op.create_index("ix_app_secrets_app", ["app_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("app_secrets", schema=None) as batch_op:
        batch_op.drop_index("ix_app_secrets_app")

    op.drop_table("app_secrets")
    with op.batch_alter_table("domains", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_domains_verified_name",
            sqlite_where=sa.text("status = 'Verified'"),
            postgresql_where=sa.text("status = 'Verified'"),
        )
        batch_op.drop_index(
            "uq_domains_default", sqlite_where=sa.text("is_default"), postgresql_where=sa.text("is_default")
        )

    op.drop_table("domains")
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_index("uq_applications_account_name")

    op.drop_table("applications")
