"""Console logon of RAM users: login profiles (password, status, forced reset, MFA binding) and a RAM
user changing its own password. Every password set goes through the account's password policy."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from openims import clock
from openims.actions.context import CallContext
from openims.actions.registry import WRITE, action
from openims.actions.users import UPN, USER, find_user
from openims.credentials import passwords
from openims.errors import ApiError, already_exists, missing
from openims.params import Bool, Str
from openims.principal import RAM_USER, Principal
from openims.signin import console_access, lockout, ram_user
from openims.store.tables.credentials import login_profiles

WRONG_OLD_PASSWORD = "InvalidParameter.OldPassword.Mismatch"
# Alibaba's login profiles report this feature as always on.
AUTO_DISABLE_LOGIN_STATUS = "Enabled"
# The policy checks a new password's length (at most 32), with an error naming the rule.
PASSWORD = Str("Password", secret=True)
STATUS = Str("Status", choices=("Active", "Inactive"))
PROFILE_PARAMS = (UPN, PASSWORD, Bool("PasswordResetRequired"), Bool("MFABindRequired"), STATUS)


def _profile(ctx: CallContext, user: Row[Any]) -> Row[Any]:
    row = ctx.conn.execute(select(login_profiles).where(login_profiles.c.user_id == user.id)).first()
    if row is None:
        raise ApiError("EntityNotExist.User.LoginProfile", f"The user has no login profile: {user.upn}.")
    return row


def profile_view(ctx: CallContext, user: Row[Any], row: Row[Any]) -> dict[str, Any]:
    policy = passwords.load_policy(ctx.conn, ctx.account_id)
    return {
        "UserPrincipalName": user.upn,
        "Status": row.status,
        "PasswordResetRequired": row.password_reset_required,
        "MFABindRequired": row.mfa_bind_required,
        "PasswordStatus": passwords.password_status(policy, row.password_initial, row.password_set_ms, ctx.now_ms),
        "AutoDisableLoginStatus": AUTO_DISABLE_LOGIN_STATUS,
        "LastLoginTime": clock.iso(user.last_login_ms),
        "UpdateDate": clock.iso(row.updated_ms),
    }


def _argon2_ahead(ctx: CallContext, p: dict[str, Any]) -> passwords.Argon2Work:
    """The prepare step of the actions that set a password: their argon2 work, done (in the handler's order,
    stopping where the handler would refuse) before the write transaction, which then only looks it up.
    Hashing costs tens of milliseconds per hash; inside the transaction it would stall every other writer."""
    work = passwords.Argon2Work()
    new = p.get("NewPassword", p.get("Password"))
    if new is None:
        return work
    try:
        user = find_user(ctx, p.get("UserPrincipalName"))
        if "OldPassword" in p:
            row = _profile(ctx, user)
            if lockout.locked_until(row, ctx.now_ms) or not work.verify(row.password_hash, p["OldPassword"]):
                return work
    except ApiError:
        return work
    passwords.hash_ahead(ctx.conn, passwords.load_policy(ctx.conn, ctx.account_id), user, new, work)
    return work


def _reread(ctx: CallContext, user: Row[Any]) -> dict[str, Any]:
    return {"LoginProfile": profile_view(ctx, user, _profile(ctx, user))}


@action(
    "CreateLoginProfile",
    rw=WRITE,
    params=PROFILE_PARAMS,
    resource=(USER, "UserPrincipalName"),
    arn="user/{UserPrincipalName}",
    prepare=_argon2_ahead,
    sensitive=True,
)
def create_login_profile(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Enable console logon for a RAM user with an initial password that meets the password policy."""
    user = find_user(ctx, p["UserPrincipalName"])
    if ctx.conn.execute(select(login_profiles.c.user_id).where(login_profiles.c.user_id == user.id)).first():
        raise already_exists("User.LoginProfile", user.upn)
    if p["Password"] is None:
        raise missing("Password")
    policy = passwords.load_policy(ctx.conn, ctx.account_id)
    hashed = passwords.new_password_hash(ctx.conn, policy, user, p["Password"], ctx.now_ms, work=ctx.prepared)
    ctx.conn.execute(
        insert(login_profiles).values(
            user_id=user.id,
            account_id=ctx.account_id,
            password_hash=hashed,
            status=p["Status"] or "Active",
            password_reset_required=bool(p["PasswordResetRequired"]),
            mfa_bind_required=bool(p["MFABindRequired"]),
            password_initial=True,
            password_set_ms=ctx.now_ms,
            failed_attempts=0,
            created_ms=ctx.now_ms,
            updated_ms=ctx.now_ms,
        )
    )
    return _reread(ctx, user)


@action(
    "GetLoginProfile",
    params=(UPN,),
    resource=(USER, "UserPrincipalName"),
    self_service=True,
    arn="user/{UserPrincipalName}",
)
def get_login_profile(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Query a RAM user's console logon settings."""
    return _reread(ctx, find_user(ctx, p["UserPrincipalName"]))


@action(
    "UpdateLoginProfile",
    rw=WRITE,
    params=PROFILE_PARAMS,
    resource=(USER, "UserPrincipalName"),
    arn="user/{UserPrincipalName}",
    prepare=_argon2_ahead,
    sensitive=True,
)
def update_login_profile(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Modify a RAM user's console logon: reset its password (a new initial password), enable or disable
    logon, require a password reset or MFA. Setting Password or Status also lifts a lockout."""
    user = find_user(ctx, p["UserPrincipalName"])
    _profile(ctx, user)
    changes: dict[str, Any] = {}
    if p["Password"] is not None:
        policy = passwords.load_policy(ctx.conn, ctx.account_id)
        changes.update(
            password_hash=passwords.new_password_hash(
                ctx.conn, policy, user, p["Password"], ctx.now_ms, work=ctx.prepared
            ),
            password_initial=True,
            password_set_ms=ctx.now_ms,
        )
    if p["Status"] is not None:
        changes["status"] = p["Status"]
    if p["Password"] is not None or p["Status"] is not None:
        changes.update(lockout.CLEARED)
    if p["PasswordResetRequired"] is not None:
        changes["password_reset_required"] = p["PasswordResetRequired"]
    if p["MFABindRequired"] is not None:
        changes["mfa_bind_required"] = p["MFABindRequired"]
    if changes:
        ctx.conn.execute(
            update(login_profiles).where(login_profiles.c.user_id == user.id).values(updated_ms=ctx.now_ms, **changes)
        )
    if p["Status"] == "Inactive":
        console_access.end(ctx.conn, user.id)
    return _reread(ctx, user)


@action(
    "DeleteLoginProfile",
    rw=WRITE,
    params=(UPN,),
    resource=(USER, "UserPrincipalName"),
    arn="user/{UserPrincipalName}",
    sensitive=True,
)
def delete_login_profile(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Disable console logon for a RAM user by deleting its login profile (its password history is kept)."""
    user = find_user(ctx, p["UserPrincipalName"])
    _profile(ctx, user)
    ctx.conn.execute(delete(login_profiles).where(login_profiles.c.user_id == user.id))
    console_access.end(ctx.conn, user.id)
    return {}


def _count_wrong_old_password(conn: Connection, principal: Principal, err: ApiError) -> None:
    """A wrong OldPassword is a failed password attempt: counted in the failure event's transaction, since the
    call's own was rolled back."""
    if err.code == WRONG_OLD_PASSWORD and principal.kind == RAM_USER and principal.user_id:
        ram_user.record_failed_attempt(conn, principal.account_id, principal.user_id, clock.now_ms())


@action(
    "ChangePassword",
    on_failure=_count_wrong_old_password,
    rw=WRITE,
    resource=(USER, None),
    self_service="AllowUserToChangePassword",
    arn="user/{UserPrincipalName}",
    prepare=_argon2_ahead,
    params=(
        Str("OldPassword", required=True, max_len=256, secret=True),
        Str("NewPassword", required=True, secret=True),
    ),
    sensitive=True,
)
def change_password(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Change the console password of the calling RAM user. A wrong OldPassword counts as a failed logon
    attempt (MaxLoginAttemps)."""
    if ctx.principal.kind != RAM_USER:
        raise ApiError(
            "InvalidParameter.Principal.NotRamUser",
            "ChangePassword changes the calling RAM user's own password; call it with a RAM user's AccessKey.",
        )
    user = find_user(ctx)
    row = _profile(ctx, user)
    locked_until = lockout.locked_until(row, ctx.now_ms)
    if locked_until:
        raise ApiError(
            "Forbidden.LoginProfile.Locked",
            f"Too many failed password attempts: the password cannot be used until {clock.iso(locked_until)}.",
        )
    work = ctx.prepared or passwords.Argon2Work()
    if not work.verify(row.password_hash, p["OldPassword"]):
        raise ApiError(WRONG_OLD_PASSWORD, 'The parameter "OldPassword" is not the current password of the user.')
    if p["NewPassword"] == p["OldPassword"]:
        raise ApiError(
            "InvalidParameter.NewPassword.SameAsOld",
            'The parameter "NewPassword" must differ from the current password.',
        )
    policy = passwords.load_policy(ctx.conn, ctx.account_id)
    hashed = passwords.new_password_hash(
        ctx.conn, policy, user, p["NewPassword"], ctx.now_ms, param="NewPassword", work=work
    )
    ctx.conn.execute(
        update(login_profiles)
        .where(login_profiles.c.user_id == user.id)
        .values(
            password_hash=hashed,
            password_initial=False,
            password_reset_required=False,
            password_set_ms=ctx.now_ms,
            updated_ms=ctx.now_ms,
            **lockout.CLEARED,
        )
    )
    return {}
