"""Who may call what. Until an explicit rule allows a call, it is denied.

Rules, in order: the root account may do anything in its own account; each decider in `DECIDERS` may
deny (False) or allow (True); a RAM user may call a self-service action on itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from openims.errors import ApiError

if TYPE_CHECKING:
    from openims.actions.context import CallContext
    from openims.actions.registry import Action

# Each returns True (allowed), False (explicitly denied) or None (no opinion).
Decider = Callable[["CallContext", "Action", dict[str, Any]], "bool | None"]
DECIDERS: list[Decider] = []
# Whether self-service may be used for this action: None if so, else the security preference that switches
# it off (named in the denial, since no policy is at fault).
SELF_SERVICE_GATES: list[Callable[[CallContext, Action], str | None]] = []
# Extra AccessDeniedDetail fields for a denial (PolicyType, EncodedDiagnosticMessage): (ctx, action, params, reason).
DENIAL_DETAILS: list[Callable[[CallContext, Action, dict[str, Any], str], dict[str, Any]]] = []


def authorize(ctx: CallContext, action: Action, params: dict[str, Any]) -> None:
    """Raise NoPermission unless a rule allows the caller to run `action` with `params`."""
    principal = ctx.principal
    if principal.is_root:
        return
    verdicts = [decide(ctx, action, params) for decide in DECIDERS]
    if False in verdicts:
        raise denied(action, ctx, "ExplicitDeny", params=params)
    if True in verdicts:
        return
    closed_by = None
    if action.self_service and targets_self(ctx, params):
        closed_by = next((why for gate in SELF_SERVICE_GATES if (why := gate(ctx, action))), None)
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
        from sqlalchemy import select

        from openims.store.schema import access_keys

        owner = ctx.conn.execute(
            select(access_keys.c.user_id).where(access_keys.c.id == params["UserAccessKeyId"])
        ).scalar()
        return owner is not None and owner == ctx.principal.user_id
    return True


def denied(
    action: Action,
    ctx: CallContext,
    reason: str,
    policy_type: str = "",
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
        "PolicyType": policy_type or ("AccountLevelIdentityBasedPolicy" if reason == "ExplicitDeny" else ""),
        "EncodedDiagnosticMessage": "",
    }
    for describe in DENIAL_DETAILS:
        detail.update(describe(ctx, action, params or {}, reason))
    why = "an explicit deny" if reason == "ExplicitDeny" else "no policy allows it"
    if closed_by:
        why += (
            f", and the security preference {closed_by} does not let RAM users do it for themselves "
            "(an administrator can turn it on with SetSecurityPreference)"
        )
    return ApiError(
        "NoPermission", f"You are not authorized to do action {action.ram_action}: {why}.", AccessDeniedDetail=detail
    )
