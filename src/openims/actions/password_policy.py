"""The account's password policy for RAM users' console passwords (enforced by `openims.passwords`
wherever a password is set, and by `openims.signin` at logon)."""
from __future__ import annotations

from typing import Any

from openims import passwords
from openims.actions.context import CallContext
from openims.actions.registry import WRITE, action
from openims.params import Bool, Int

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


@action("SetPasswordPolicy", rw=WRITE, params=POLICY_PARAMS)
def set_password_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Configure the password policy of RAM users; parameters not sent keep their current value. It applies
    to passwords set from now on, and to logons (expiry, lockout) at once."""
    changes = {_FIELD_OF[name]: value for name, value in p.items() if value is not None}
    return {"PasswordPolicy": passwords.save_policy(ctx.conn, ctx.account_id, changes, ctx.now_ms).view()}


@action("GetPasswordPolicy")
def get_password_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Query the password policy of RAM users."""
    return {"PasswordPolicy": passwords.load_policy(ctx.conn, ctx.account_id).view()}
