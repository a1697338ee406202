"""saml_authn_requests, saml_assertions_used: SP-initiated SAML requests awaiting their Response, and the IDs
of Assertions already used (one-time use across processes)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 13:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "saml_authn_requests",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("next_path", sa.String(length=512), server_default="/console/", nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_saml_authn_requests_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_saml_authn_requests")),
    )
    op.create_index("ix_saml_authn_requests_account", "saml_authn_requests", ["account_id"], unique=False)
    op.create_index("ix_saml_authn_requests_expires", "saml_authn_requests", ["expires_ms"], unique=False)
    op.create_table(
        "saml_assertions_used",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("assertion_id", sa.String(length=256), nullable=False),
        sa.Column("used_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_saml_assertions_used_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "assertion_id", name=op.f("pk_saml_assertions_used")),
    )
    op.create_index("ix_saml_assertions_used_expires", "saml_assertions_used", ["expires_ms"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_saml_assertions_used_expires", table_name="saml_assertions_used")
    op.drop_table("saml_assertions_used")
    op.drop_index("ix_saml_authn_requests_expires", table_name="saml_authn_requests")
    op.drop_index("ix_saml_authn_requests_account", table_name="saml_authn_requests")
    op.drop_table("saml_authn_requests")
