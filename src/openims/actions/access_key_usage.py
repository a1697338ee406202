"""When AccessKeys were last used (recorded at signature verification by openims.credentials.key_usage)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from openims import clock
from openims.actions.access_keys import ACCESS_KEY, KEY_ID, find_key, key_owner
from openims.actions.context import CallContext
from openims.actions.registry import action
from openims.actions.users import UPN_OPTIONAL, USER
from openims.credentials import key_usage
from openims.store.schema import access_keys


def usage_view(use: key_usage.Use | None) -> dict[str, str]:
    """Empty strings for a key never used. SourceIp is an OpenIMS addition (the SDK ignores it)."""
    if use is None:
        return {"LastUsedDate": "", "ServiceName": "", "SourceIp": ""}
    return {"LastUsedDate": clock.iso(use.ms), "ServiceName": use.service, "SourceIp": use.source_ip}


@action(
    "GetAccessKeyLastUsed",
    params=(KEY_ID, UPN_OPTIONAL),
    resource=(ACCESS_KEY, "UserAccessKeyId"),
    self_service="AllowUserToManageAccessKeys",
    arn="user/{UserPrincipalName}",
)
def get_access_key_last_used(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """When an AccessKey pair was last used, for which service and from which address (the caller's own
    keys when UserPrincipalName is omitted)."""
    row = find_key(ctx, p["UserAccessKeyId"], p["UserPrincipalName"])
    use = key_usage.last_used(ctx.runtime, ctx.conn, [row.id]).get(row.id)
    return {"AccessKeyLastUsed": usage_view(use)}


@action(
    "GetAccessKeysLastUsed",
    params=(UPN_OPTIONAL,),
    resource=(USER, "UserPrincipalName"),
    self_service="AllowUserToManageAccessKeys",
    arn="user/{UserPrincipalName}",
    extension=True,
)
def get_access_keys_last_used(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """When each AccessKey pair of a RAM user (or, for the root account without a user, of the account
    itself) was last used."""
    owner = key_owner(ctx, p["UserPrincipalName"])
    mine = access_keys.c.user_id.is_(None) if owner is None else access_keys.c.user_id == owner
    key_ids = list(
        ctx.conn.execute(
            select(access_keys.c.id)
            .where(access_keys.c.account_id == ctx.account_id, mine, access_keys.c.deleted_ms.is_(None))
            .order_by(access_keys.c.created_ms, access_keys.c.id)
        ).scalars()
    )
    uses = key_usage.last_used(ctx.runtime, ctx.conn, key_ids)
    return {
        "AccessKeysLastUsed": {"AccessKeyLastUsed": [{"AccessKeyId": k, **usage_view(uses.get(k))} for k in key_ids]}
    }
