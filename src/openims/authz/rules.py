"""Who may call what. Until an explicit rule allows a call, it is denied.

The rules, in order: the root identity may do anything in its own account; an explicit Deny in the caller's
policies denies; an Allow allows; a RAM user may call a self-service action on itself unless the security
preference the action names is off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from openims.actions import security_preference
from openims.authz import decide
from openims.errors import ApiError
from openims.store.schema import access_keys

if TYPE_CHECKING:
    from openims.actions.context import CallContext
    from openims.actions.registry import Action


def authorize(ctx: CallContext, action: Action, params: dict[str, Any]) -> None:
    """Raise NoPermission unless a rule allows the caller to run `action` with `params`."""
    if ctx.principal.is_root:
        return
    verdict = decide.policy_decider(ctx, action, params)
    if verdict is False:
        raise denied(action, ctx, "ExplicitDeny", params=params)
    if verdict:
        return
    closed_by = None
    if action.self_service and targets_self(ctx, params):
        closed_by = security_preference.self_service_closed_by(ctx, action)
        if closed_by is None:
            return
    raise denied(action, ctx, "ImplicitDeny", params=params, closed_by=closed_by)


def targets_self(ctx: CallContext, params: dict[str, Any]) -> bool:
    target = params.get("UserPrincipalName")
    # UserPrincipalNames compare case-insensitively, as users are found.
    if target and target.lower() != ctx.principal.user_name.lower():
        return False
    # GetUser also names its user by UserId or by one of its AccessKey IDs: those must be the caller's too.
    if params.get("UserId") and params["UserId"] != ctx.principal.user_id:
        return False
    if params.get("UserAccessKeyId"):
        owner = ctx.conn.execute(
            select(access_keys.c.user_id).where(access_keys.c.id == params["UserAccessKeyId"])
        ).scalar()
        return owner is not None and owner == ctx.principal.user_id
    return True


def denied(
    action: Action,
    ctx: CallContext,
    reason: str,
    params: dict[str, Any] | None = None,
    closed_by: str | None = None,
) -> ApiError:
    detail = {
        "AuthAction": action.ram_action,
        "AuthPrincipalType": "SubUser",
        "AuthPrincipalOwnerId": ctx.principal.account_id,
        # Alibaba shows a RAM user's UID here.
        "AuthPrincipalDisplayName": ctx.principal.principal_id,
        "NoPermissionType": reason,
        "PolicyType": "AccountLevelIdentityBasedPolicy" if reason == "ExplicitDeny" else "",
        "EncodedDiagnosticMessage": "",
        **decide.denial_details(ctx, action, params or {}, reason),
    }
    why = "an explicit deny" if reason == "ExplicitDeny" else "no policy allows it"
    if closed_by:
        why += (
            f", and the security preference {closed_by} does not let RAM users do it for themselves "
            "(an administrator can turn it on with SetSecurityPreference)"
        )
    return ApiError(
        "NoPermission", f"You are not authorized to do action {action.ram_action}: {why}.", AccessDeniedDetail=detail
    )
