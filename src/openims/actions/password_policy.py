"""The account's password policy for RAM users' console passwords (enforced by `openims.credentials.passwords`
wherever a password is set, and by `openims.signin.ram_user` at logon)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from openims.actions.context import CallContext
from openims.actions.registry import WRITE, action
from openims.credentials import passwords
from openims.params import Bool, Int
from openims.signin import lockout
from openims.store.tables.credentials import login_profiles

# Limits from the SDK's SetPasswordPolicy docs.
POLICY_PARAMS = (
    Int("MinimumPasswordLength", min=8, max=32),
    Bool("RequireLowercaseCharacters"),
    Bool("RequireUppercaseCharacters"),
    Bool("RequireNumbers"),
    Bool("RequireSymbols"),
    Int("PasswordReusePrevention", min=0, max=24),
    Int("MaxPasswordAge", min=0, max=1095),
    Bool("HardExpire"),
    Int("MaxLoginAttemps", min=0, max=32),
    Bool("PasswordNotContainUserName"),
    Int("MinimumPasswordDifferentCharacter", min=0, max=8),
    Int("InitialPasswordAge", min=0, max=90),
    Bool("InterceptRiskPasswordOnApi"),
)
_FIELD_OF = {wire: field for field, wire in passwords.WIRE_NAMES.items()}


@action("SetPasswordPolicy", rw=WRITE, params=POLICY_PARAMS, sensitive=True)
def set_password_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Configure the password policy of RAM users; parameters not sent keep their current value. It applies
    to passwords set from now on, and to logons (expiry, lockout) at once. MaxLoginAttemps 0 turns the
    lockout off and unlocks every locked login profile."""
    changes = {_FIELD_OF[name]: value for name, value in p.items() if value is not None}
    if p["MaxLoginAttemps"] == 0:
        # Turning the lockout off also lifts the locks it made; a lock with no lockout rule would outlive it.
        ctx.conn.execute(
            update(login_profiles).where(login_profiles.c.account_id == ctx.account_id).values(**lockout.CLEARED)
        )
    return {"PasswordPolicy": passwords.save_policy(ctx.conn, ctx.account_id, changes, ctx.now_ms).view()}


@action("GetPasswordPolicy")
def get_password_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Query the password policy of RAM users."""
    return {"PasswordPolicy": passwords.load_policy(ctx.conn, ctx.account_id).view()}
