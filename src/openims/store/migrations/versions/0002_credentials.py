"""credentials: login profiles, password history and policy, security preferences, virtual MFA devices

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 03:26:26.876314
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "password_policies",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("minimum_password_length", sa.Integer(), nullable=False),
        sa.Column("require_lowercase_characters", sa.Boolean(), nullable=False),
        sa.Column("require_uppercase_characters", sa.Boolean(), nullable=False),
        sa.Column("require_numbers", sa.Boolean(), nullable=False),
        sa.Column("require_symbols", sa.Boolean(), nullable=False),
        sa.Column("password_reuse_prevention", sa.Integer(), nullable=False),
        sa.Column("max_password_age", sa.Integer(), nullable=False),
        sa.Column("hard_expire", sa.Boolean(), nullable=False),
        sa.Column("max_login_attemps", sa.Integer(), nullable=False),
        sa.Column("password_not_contain_user_name", sa.Boolean(), nullable=False),
        sa.Column("minimum_password_different_character", sa.Integer(), nullable=False),
        sa.Column("initial_password_age", sa.Integer(), nullable=False),
        sa.Column("intercept_risk_password_on_api", sa.Boolean(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_password_policies_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_password_policies")),
    )

    op.create_table(
        "security_preferences",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("allow_user_to_change_password", sa.Boolean(), nullable=False),
        sa.Column("allow_user_to_login_with_passkey", sa.Boolean(), nullable=False),
        sa.Column("allow_user_to_manage_access_keys", sa.Boolean(), nullable=False),
        sa.Column("allow_user_to_manage_mfa_devices", sa.Boolean(), nullable=False),
        sa.Column("allow_user_to_manage_personal_ding_talk", sa.Boolean(), nullable=False),
        sa.Column("allow_user_to_manage_service_credentials", sa.Boolean(), nullable=False),
        sa.Column("enable_save_mfa_ticket", sa.Boolean(), nullable=False),
        sa.Column("login_network_masks", sa.String(length=512), nullable=False),
        sa.Column("login_session_duration", sa.Integer(), nullable=False),
        sa.Column("mfa_operation_for_login", sa.String(length=16), nullable=False),
        sa.Column("operation_for_risk_login", sa.String(length=16), nullable=False),
        sa.Column("max_idle_days_for_access_keys", sa.Integer(), nullable=False),
        sa.Column("max_idle_days_for_users", sa.Integer(), nullable=False),
        sa.Column("verification_types", sa.String(length=128), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_security_preferences_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_security_preferences")),
    )

    op.create_table(
        "login_profiles",
        sa.Column("user_id", sa.String(length=24), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="Active", nullable=False),
        sa.Column("password_reset_required", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("mfa_bind_required", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("password_initial", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("password_set_ms", sa.BigInteger(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("first_failed_ms", sa.BigInteger(), nullable=True),
        sa.Column("locked_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_login_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_login_profiles_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_login_profiles_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_login_profiles")),
    )
    with op.batch_alter_table("login_profiles", schema=None) as batch_op:
        batch_op.create_index("ix_login_profiles_account", ["account_id"], unique=False)

    op.create_table(
        "mfa_devices",
        sa.Column("serial_number", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("seed_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("user_id", sa.String(length=24), nullable=True),
        sa.Column("bound_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_mfa_devices_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_mfa_devices_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("serial_number", name=op.f("pk_mfa_devices")),
        sa.UniqueConstraint("user_id", name=op.f("uq_mfa_devices_user_id")),
    )
    with op.batch_alter_table("mfa_devices", schema=None) as batch_op:
        batch_op.create_index("uq_mfa_devices_account_name", ["account_id", "name"], unique=True)

    op.create_table(
        "password_history",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=24), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_password_history_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_password_history")),
    )
    with op.batch_alter_table("password_history", schema=None) as batch_op:
        batch_op.create_index("ix_password_history_user", ["user_id", "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("password_history", schema=None) as batch_op:
        batch_op.drop_index("ix_password_history_user")
    op.drop_table("password_history")
    with op.batch_alter_table("mfa_devices", schema=None) as batch_op:
        batch_op.drop_index("uq_mfa_devices_account_name")
    op.drop_table("mfa_devices")
    with op.batch_alter_table("login_profiles", schema=None) as batch_op:
        batch_op.drop_index("ix_login_profiles_account")
    op.drop_table("login_profiles")
    op.drop_table("security_preferences")
    op.drop_table("password_policies")
