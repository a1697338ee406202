"""Credentials and sign-in security: console logon profiles, password history, the password policy,
security preferences and virtual MFA devices.

Tables (all times integer ms, UTC):
- `login_profiles`: one row per RAM user with console logon (`user_id` is the key). `password_hash` is an
  argon2id hash, never the password. `status` Active/Inactive; `password_reset_required`,
  `mfa_bind_required`; `password_initial` (set by an administrator and not yet changed by the user);
  `password_set_ms` (start of MaxPasswordAge / InitialPasswordAge); `failed_attempts`,
  `first_failed_ms`, `locked_until_ms` (MaxLoginAttemps lockout); `last_login_ms` (also copied to
  `users.last_login_ms`).
- `password_history`: the last N argon2id hashes per user (N = PasswordReusePrevention), newest `seq` last.
- `password_policies`: one row per account; absent means Alibaba's defaults.
- `security_preferences`: one row per account; absent means Alibaba's defaults. `verification_types` is
  a comma-separated list.
- `mfa_devices`: virtual MFA devices. `serial_number` is `acs:ram::<account>:mfa/<name>`; `seed_sealed` is
  the Base32 seed sealed with the master key (context: the serial number); `user_id` is the RAM user it
  is bound to (NULL while unbound; a user has at most one), `bound_ms` when (ActivateDate);
  `last_step` the last accepted TOTP time step (codes of that step or earlier are never accepted again).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, LargeBinary, String, Table, false, text

from openims.store.constraints import register
from openims.store.schema import Seq, metadata

login_profiles = Table(
    "login_profiles",
    metadata,
    Column("user_id", String(24), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("status", String(16), nullable=False, server_default="Active"),
    Column("password_reset_required", Boolean, nullable=False, server_default=false()),
    Column("mfa_bind_required", Boolean, nullable=False, server_default=false()),
    Column("password_initial", Boolean, nullable=False, server_default=false()),
    Column("password_set_ms", BigInteger, nullable=False),
    Column("failed_attempts", Integer, nullable=False, server_default=text("0")),
    Column("first_failed_ms", BigInteger),
    Column("locked_until_ms", BigInteger),
    Column("last_login_ms", BigInteger),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)
Index("ix_login_profiles_account", login_profiles.c.account_id)

password_history = Table(
    "password_history",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("user_id", String(24), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)
Index("ix_password_history_user", password_history.c.user_id, password_history.c.seq)

password_policies = Table(
    "password_policies",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("minimum_password_length", Integer, nullable=False),
    Column("require_lowercase_characters", Boolean, nullable=False),
    Column("require_uppercase_characters", Boolean, nullable=False),
    Column("require_numbers", Boolean, nullable=False),
    Column("require_symbols", Boolean, nullable=False),
    Column("password_reuse_prevention", Integer, nullable=False),
    Column("max_password_age", Integer, nullable=False),
    Column("hard_expire", Boolean, nullable=False),
    Column("max_login_attemps", Integer, nullable=False),
    Column("password_not_contain_user_name", Boolean, nullable=False),
    Column("minimum_password_different_character", Integer, nullable=False),
    Column("initial_password_age", Integer, nullable=False),
    Column("intercept_risk_password_on_api", Boolean, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

security_preferences = Table(
    "security_preferences",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("allow_user_to_change_password", Boolean, nullable=False),
    Column("allow_user_to_login_with_passkey", Boolean, nullable=False),
    Column("allow_user_to_manage_access_keys", Boolean, nullable=False),
    Column("allow_user_to_manage_mfa_devices", Boolean, nullable=False),
    Column("allow_user_to_manage_personal_ding_talk", Boolean, nullable=False),
    Column("allow_user_to_manage_service_credentials", Boolean, nullable=False),
    Column("enable_save_mfa_ticket", Boolean, nullable=False),
    Column("login_network_masks", String(512), nullable=False),
    Column("login_session_duration", Integer, nullable=False),
    Column("mfa_operation_for_login", String(16), nullable=False),
    Column("operation_for_risk_login", String(16), nullable=False),
    Column("max_idle_days_for_access_keys", Integer, nullable=False),
    Column("max_idle_days_for_users", Integer, nullable=False),
    Column("verification_types", String(128), nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

mfa_devices = Table(
    "mfa_devices",
    metadata,
    Column("serial_number", String(128), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("seed_sealed", LargeBinary, nullable=False),
    # Deleting a user for good deletes the device bound to it: its seed was the user's.
    Column("user_id", String(24), ForeignKey("users.id", ondelete="CASCADE"), unique=True),
    Column("bound_ms", BigInteger),
    Column("last_step", BigInteger),
    Column("created_ms", BigInteger, nullable=False),
)
Index("uq_mfa_devices_account_name", mfa_devices.c.account_id, mfa_devices.c.name, unique=True)

register(
    "pk_login_profiles",
    "EntityAlreadyExists.User.LoginProfile",
    "The user already has a login profile.",
    "login_profiles.user_id",
)
register(
    "uq_mfa_devices_account_name",
    "EntityAlreadyExists.VirtualMFADevice",
    "The virtual MFA device already exists.",
    "mfa_devices.account_id, mfa_devices.name",
)
register(
    "uq_mfa_devices_user_id",
    "EntityAlreadyExists.User.MFADevice",
    "The user already has an MFA device bound.",
    "mfa_devices.user_id",
)
