"""oauth: the authorization server's signing keys, consents, authorization codes and tokens (hashed)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 13:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    referred = target.split(".")[0]
    return sa.ForeignKeyConstraint([column], [target], name=op.f(f"fk_{table}_{column}_{referred}"), ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "oauth_signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=8), nullable=False),
        sa.Column("private_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_oauth_signing_keys")),
    )
    op.create_index("ix_oauth_signing_keys_created", "oauth_signing_keys", ["created_ms"], unique=False)
    op.create_table(
        "oauth_consents",
        sa.Column("app_id", sa.String(length=24), nullable=False),
        sa.Column("subject", sa.String(length=24), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=24), nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("granted_ms", sa.BigInteger(), nullable=False),
        _fk("oauth_consents", "app_id", "applications.id"),
        _fk("oauth_consents", "account_id", "accounts.id"),
        _fk("oauth_consents", "user_id", "users.id"),
        sa.PrimaryKeyConstraint("app_id", "subject", name=op.f("pk_oauth_consents")),
    )
    op.create_index("ix_oauth_consents_user", "oauth_consents", ["user_id"], unique=False)
    op.create_table(
        "oauth_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("app_id", sa.String(length=24), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=24), nullable=True),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("nonce", sa.String(length=255), nullable=True),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("code_challenge_method", sa.String(length=8), nullable=True),
        sa.Column("auth_time_ms", sa.BigInteger(), nullable=False),
        sa.Column("mfa_authenticated", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        _fk("oauth_codes", "app_id", "applications.id"),
        _fk("oauth_codes", "account_id", "accounts.id"),
        _fk("oauth_codes", "user_id", "users.id"),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_oauth_codes")),
    )
    op.create_index("ix_oauth_codes_expires", "oauth_codes", ["expires_ms"], unique=False)
    op.create_index("ix_oauth_codes_app_nonce", "oauth_codes", ["app_id", "nonce"], unique=False)
    op.create_index("ix_oauth_codes_user", "oauth_codes", ["user_id"], unique=False)
    op.create_table(
        "oauth_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("grant_id", sa.String(length=32), nullable=False),
        sa.Column("access_hash", sa.String(length=64), nullable=False),
        sa.Column("refresh_hash", sa.String(length=64), nullable=True),
        sa.Column("app_id", sa.String(length=24), nullable=False),
        sa.Column("secret_id", sa.String(length=64), nullable=True),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=24), nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("auth_time_ms", sa.BigInteger(), nullable=False),
        sa.Column("issued_ms", sa.BigInteger(), nullable=False),
        sa.Column("access_expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("refresh_expires_ms", sa.BigInteger(), nullable=True),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=16), nullable=True),
        _fk("oauth_tokens", "app_id", "applications.id"),
        _fk("oauth_tokens", "secret_id", "app_secrets.id"),
        _fk("oauth_tokens", "account_id", "accounts.id"),
        _fk("oauth_tokens", "user_id", "users.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_tokens")),
        sa.UniqueConstraint("access_hash", name=op.f("uq_oauth_tokens_access_hash")),
        sa.UniqueConstraint("refresh_hash", name=op.f("uq_oauth_tokens_refresh_hash")),
    )
    op.create_index("ix_oauth_tokens_grant", "oauth_tokens", ["grant_id"], unique=False)
    op.create_index("ix_oauth_tokens_expires", "oauth_tokens", ["expires_ms"], unique=False)
    op.create_index("ix_oauth_tokens_user", "oauth_tokens", ["user_id"], unique=False)
    op.create_index("ix_oauth_tokens_app", "oauth_tokens", ["app_id"], unique=False)
    op.create_index("ix_oauth_tokens_secret", "oauth_tokens", ["secret_id"], unique=False)


def downgrade() -> None:
    op.drop_table("oauth_tokens")
    op.drop_table("oauth_codes")
    op.drop_table("oauth_consents")
    op.drop_index("ix_oauth_signing_keys_created", table_name="oauth_signing_keys")
    op.drop_table("oauth_signing_keys")
