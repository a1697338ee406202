"""AccessKeys of RAM users and of the root account."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, select, update

from openims import accounts, clock, quotas
from openims.actions.context import CallContext
from openims.actions.registry import WRITE, Created, action
from openims.actions.users import UPN_OPTIONAL, USER, find_user
from openims.errors import ApiError
from openims.params import Str
from openims.store.schema import access_keys

ACCESS_KEY = "ACS::RAM::AccessKey"
KEY_ID = Str("UserAccessKeyId", required=True, max_len=64)


def key_owner(ctx: CallContext, upn: str | None) -> str | None:
    """The user ID whose keys are meant: the named user, the calling RAM user, or None for the root account."""
    if upn or not ctx.principal.is_root:
        return str(find_user(ctx, upn).id)
    return None


def _owned_by(user_id: str | None) -> Any:
    return access_keys.c.user_id.is_(None) if user_id is None else access_keys.c.user_id == user_id


def find_key(ctx: CallContext, key_id: str, upn: str | None) -> Row[Any]:
    owner = key_owner(ctx, upn)
    row = ctx.conn.execute(
        select(access_keys).where(
            access_keys.c.id == key_id,
            access_keys.c.account_id == ctx.account_id,
            _owned_by(owner),
            access_keys.c.deleted_ms.is_(None),
        )
    ).first()
    if row is None:
        raise ApiError("EntityNotExist.User.AccessKey", f"The AccessKey does not exist: {key_id}.")
    ctx.reference(ACCESS_KEY, key_id)
    return row


def key_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "AccessKeyId": row.id,
        "Status": row.status,
        "CreateDate": clock.iso(row.created_ms),
        "UpdateDate": clock.iso(row.updated_ms),
    }


@action(
    "CreateAccessKey",
    rw=WRITE,
    params=(UPN_OPTIONAL,),
    resource=(ACCESS_KEY, None),
    secrets=("AccessKeySecret",),
    self_service="AllowUserToManageAccessKeys",
    arn="user/{UserPrincipalName}",
    resources=((USER, "UserPrincipalName"), (ACCESS_KEY, Created("AccessKey.AccessKeyId"))),
    sensitive=True,
)
def create_access_key(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Create an AccessKey pair for a RAM user (or, called by the root account without a user, for itself).
    The secret is returned only here."""
    owner = key_owner(ctx, p["UserPrincipalName"])
    count = ctx.conn.execute(
        select(func.count())
        .select_from(access_keys)
        .where(access_keys.c.account_id == ctx.account_id, _owned_by(owner), access_keys.c.deleted_ms.is_(None))
    ).scalar_one()
    limit = quotas.ACCESS_KEYS_PER_USER if owner else quotas.ACCESS_KEYS_PER_ACCOUNT
    if count >= limit:
        raise ApiError("LimitExceeded.User.AccessKey", f"At most {limit} AccessKey pairs are allowed here.")
    key_id, secret = accounts.new_access_key(ctx.conn, ctx.runtime, ctx.account_id, owner, ctx.now_ms)
    ctx.reference(ACCESS_KEY, key_id)
    return {
        "AccessKey": {
            "AccessKeyId": key_id,
            "AccessKeySecret": secret,
            "Status": "Active",
            "CreateDate": clock.iso(ctx.now_ms),
        }
    }


@action(
    "UpdateAccessKey",
    rw=WRITE,
    resource=(ACCESS_KEY, "UserAccessKeyId"),
    self_service="AllowUserToManageAccessKeys",
    arn="user/{UserPrincipalName}",
    params=(KEY_ID, Str("Status", required=True, choices=("Active", "Inactive")), UPN_OPTIONAL),
    resources=((USER, "UserPrincipalName"),),
    sensitive=True,
)
def update_access_key(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Enable or disable an AccessKey pair."""
    row = find_key(ctx, p["UserAccessKeyId"], p["UserPrincipalName"])
    ctx.conn.execute(
        update(access_keys).where(access_keys.c.id == row.id).values(status=p["Status"], updated_ms=ctx.now_ms)
    )
    return {}


@action(
    "DeleteAccessKey",
    rw=WRITE,
    params=(KEY_ID, UPN_OPTIONAL),
    resource=(ACCESS_KEY, "UserAccessKeyId"),
    self_service="AllowUserToManageAccessKeys",
    arn="user/{UserPrincipalName}",
    resources=((USER, "UserPrincipalName"),),
    sensitive=True,
)
def delete_access_key(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Delete an AccessKey pair: it stops authenticating at once and moves to the recycle bin, from which
    RestoreAccessKeyFromRecycleBin can bring it back until it is purged."""
    row = find_key(ctx, p["UserAccessKeyId"], p["UserPrincipalName"])
    ctx.conn.execute(
        update(access_keys).where(access_keys.c.id == row.id).values(deleted_ms=ctx.now_ms, updated_ms=ctx.now_ms)
    )
    return {}


@action(
    "ListAccessKeys",
    params=(UPN_OPTIONAL,),
    resource=("ACS::RAM::User", "UserPrincipalName"),
    self_service="AllowUserToManageAccessKeys",
    arn="user/{UserPrincipalName}",
)
def list_access_keys(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the AccessKey pairs of a RAM user, or of the root account. Secrets are never listed."""
    owner = key_owner(ctx, p["UserPrincipalName"])
    rows = ctx.conn.execute(
        select(access_keys)
        .where(access_keys.c.account_id == ctx.account_id, _owned_by(owner), access_keys.c.deleted_ms.is_(None))
        .order_by(access_keys.c.created_ms)
    ).all()
    return {"AccessKeys": {"AccessKey": [key_view(r) for r in rows]}}
