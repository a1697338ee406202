"""federation: OIDC and SAML identity providers, user-based SSO settings

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 03:26:05.756680
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oidc_providers",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("issuer_url", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=256), server_default="", nullable=False),
        sa.Column("client_ids", sa.Text(), server_default="", nullable=False),
        sa.Column("fingerprints", sa.Text(), server_default="", nullable=False),
        sa.Column("issuance_limit_time", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_oidc_providers_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_providers")),
    )
    with op.batch_alter_table("oidc_providers", schema=None) as batch_op:
        batch_op.create_index("uq_oidc_providers_account_issuer", ["account_id", "issuer_url"], unique=True)
        batch_op.create_index("uq_oidc_providers_account_name", ["account_id", "name"], unique=True)

    op.create_table(
        "saml_providers",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=256), server_default="", nullable=False),
        sa.Column("authn_sign_algo", sa.String(length=16), nullable=False),
        sa.Column("metadata_document", sa.Text(), nullable=False),
        sa.Column("entity_id", sa.String(length=1024), nullable=False),
        sa.Column("certificates", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_saml_providers_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saml_providers")),
    )
    with op.batch_alter_table("saml_providers", schema=None) as batch_op:
        batch_op.create_index("uq_saml_providers_account_name", ["account_id", "name"], unique=True)

    op.create_table(
        "user_sso_settings",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("sso_enabled", sa.Boolean(), nullable=False),
        sa.Column("sso_login_with_domain", sa.Boolean(), nullable=False),
        sa.Column("auxiliary_domain", sa.String(length=128), server_default="", nullable=False),
        sa.Column("authn_sign_algo", sa.String(length=16), nullable=False),
        sa.Column("metadata_document", sa.Text(), server_default="", nullable=False),
        sa.Column("entity_id", sa.String(length=1024), server_default="", nullable=False),
        sa.Column("certificates", sa.Text(), server_default="[]", nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_user_sso_settings_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_user_sso_settings")),
    )


def downgrade() -> None:
    op.drop_table("user_sso_settings")
    with op.batch_alter_table("saml_providers", schema=None) as batch_op:
        batch_op.drop_index("uq_saml_providers_account_name")

    op.drop_table("saml_providers")
    with op.batch_alter_table("oidc_providers", schema=None) as batch_op:
        batch_op.drop_index("uq_oidc_providers_account_name")
        batch_op.drop_index("uq_oidc_providers_account_issuer")

    op.drop_table("oidc_providers")
