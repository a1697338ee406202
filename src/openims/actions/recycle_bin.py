"""The recycle bin: deleted RAM users (with their keys, groups and login profile) and deleted AccessKeys stay
restorable for RETENTION_DAYS, then are purged for good.

A user in the bin is a `users` row with `deleted_ms` set; its keys, group memberships and login profile stay
attached to it, so restoring the user brings them back. A key deleted on its own has `access_keys.deleted_ms`
set; a key of a recycled user is in the bin too (UserRecycled) and comes back with the user unless it was
deleted on its own before. Nothing in the bin authenticates (see api/signing.py load_key).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, delete, func, or_, select, update

from openims import clock, quotas
from openims.actions.access_keys import ACCESS_KEY
from openims.actions.context import CallContext
from openims.actions.paging import MARKER, max_items, page
from openims.actions.registry import WRITE, action
from openims.actions.users import USER
from openims.errors import ApiError, invalid, missing, not_found
from openims.params import Str
from openims.runtime import Runtime
from openims.store.schema import access_keys, resource_tags, users

RETENTION_DAYS = 7
RETENTION_MS = RETENTION_DAYS * clock.DAY_MS
BATCH = 10_000

USER_ID = Str("UserId", max_len=64)
KEY_ID = Str("UserAccessKeyId", max_len=64)
FILTER = Str("Filter", max_len=256, doc="UserPrincipalName eq <name>@<domain>")
FILTER_RULE = re.compile(r"\s*UserPrincipalName\s+eq\s+(\S+)\s*", re.IGNORECASE)


def _fresh(column: Any, now_ms: int) -> ColumnElement[bool]:
    """Deleted, and not yet past retention (the purger may not have run yet: expired items are gone already)."""
    return and_(column.is_not(None), column > now_ms - RETENTION_MS)


def _dates(recycled_ms: int) -> dict[str, str]:
    return {"RecycleDate": clock.iso(recycled_ms), "DeleteDate": clock.iso(recycled_ms + RETENTION_MS)}


# Users


def _recycled_user(ctx: CallContext, user_id: str | None = None, key_id: str | None = None) -> Row[Any]:
    query = select(users).where(users.c.account_id == ctx.account_id, _fresh(users.c.deleted_ms, ctx.now_ms))
    if user_id:
        query, wanted = query.where(users.c.id == user_id), user_id
    elif key_id:
        owner = select(access_keys.c.user_id).where(
            access_keys.c.id == key_id, access_keys.c.account_id == ctx.account_id
        )
        query, wanted = query.where(users.c.id == owner.scalar_subquery()), key_id
    else:
        raise missing("UserId")
    row = ctx.conn.execute(query).first()
    if row is None:
        raise ApiError("EntityNotExist.User", f"The user is not in the recycle bin: {wanted}.")
    ctx.reference(USER, row.upn)
    return row


def _user_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "UserId": row.id,
        "UserPrincipalName": row.upn,
        "DisplayName": row.display_name,
        "CreateDate": clock.iso(row.created_ms),
        **_dates(row.deleted_ms),
    }


@action("GetUserInRecycleBin", params=(USER_ID, KEY_ID), resource=(USER, None))
def get_user_in_recycle_bin(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Query a RAM user in the recycle bin by UserId or by one of its AccessKey IDs (exactly one of them)."""
    if p["UserId"] and p["UserAccessKeyId"]:
        raise invalid("UserId", "Conflict", 'Specify only one of the parameters "UserId" and "UserAccessKeyId".')
    return {"User": _user_view(_recycled_user(ctx, p["UserId"], p["UserAccessKeyId"]))}


@action("ListUsersInRecycleBin", params=(FILTER, MARKER, max_items(100, 100)))
def list_users_in_recycle_bin(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the RAM users in the recycle bin, optionally only those named by `UserPrincipalName eq <name>`."""
    query = select(users).where(users.c.account_id == ctx.account_id, _fresh(users.c.deleted_ms, ctx.now_ms))
    if p["Filter"]:
        match = FILTER_RULE.fullmatch(p["Filter"])
        if not match:
            raise invalid(
                "Filter",
                "Format",
                'The parameter - "Filter" must be of the form "UserPrincipalName eq <name>@<domain>".',
            )
        query = query.where(func.lower(users.c.upn) == match.group(1).lower())
    rows, fields = page(ctx.conn, query, users.c.id, p["Marker"], p["MaxItems"])
    return {"Users": {"User": [_user_view(r) for r in rows]}, **fields}


@action(
    "RestoreUserFromRecycleBin", rw=WRITE, params=(Str("UserId", required=True, max_len=64),), resource=(USER, None)
)
def restore_user_from_recycle_bin(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Restore a RAM user with its AccessKeys (except those deleted on their own), groups and login profile.
    Fails, changing nothing, when a live user has taken its name meanwhile."""
    row = _recycled_user(ctx, user_id=p["UserId"])
    live = select(users.c.id).where(users.c.account_id == ctx.account_id, users.c.deleted_ms.is_(None))
    if ctx.conn.execute(live.where(func.lower(users.c.name) == row.name.lower())).first():
        raise ApiError(
            "EntityAlreadyExists.User",
            f"A live user is named {row.name} now: rename or delete it before restoring {row.upn}.",
        )
    if ctx.conn.execute(select(func.count()).select_from(live.subquery())).scalar_one() >= quotas.USERS:
        raise ApiError("LimitExceeded.User", f"An account can have at most {quotas.USERS} RAM users.")
    ctx.conn.execute(update(users).where(users.c.id == row.id).values(deleted_ms=None, updated_ms=ctx.now_ms))
    return {}


@action("DeleteUserInRecycleBin", rw=WRITE, params=(Str("UserId", required=True, max_len=64),), resource=(USER, None))
def delete_user_in_recycle_bin(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Delete a RAM user in the recycle bin for good, with its AccessKeys, group memberships, login profile
    and MFA binding."""
    _erase_users(ctx.conn, [_recycled_user(ctx, user_id=p["UserId"]).id])
    return {}


def _erase_users(conn: Any, user_ids: list[str]) -> None:
    # Keys, memberships, login profiles and MFA bindings go by ON DELETE CASCADE; tags have no foreign key.
    conn.execute(
        delete(resource_tags).where(resource_tags.c.resource_type == "user", resource_tags.c.resource_id.in_(user_ids))
    )
    conn.execute(delete(users).where(users.c.id.in_(user_ids)))


# AccessKeys


def _recycled_keys(ctx: CallContext) -> Any:
    """Keys in the bin: deleted on their own, or belonging to a user in the bin."""
    return (
        select(access_keys, users.c.upn, users.c.deleted_ms.label("user_deleted_ms"))
        .select_from(access_keys.outerjoin(users, users.c.id == access_keys.c.user_id))
        .where(
            access_keys.c.account_id == ctx.account_id,
            or_(_fresh(access_keys.c.deleted_ms, ctx.now_ms), _fresh(users.c.deleted_ms, ctx.now_ms)),
        )
    )


def _bin_owner(ctx: CallContext, user_id: str | None) -> str | None:
    """Whose keys are meant: the user named by UserId (live or in the bin), the calling RAM user, or None for
    the root account's own keys."""
    if user_id:
        live_or_recycled = users.c.deleted_ms.is_(None) | _fresh(users.c.deleted_ms, ctx.now_ms)
        row = ctx.conn.execute(
            select(users.c.id, users.c.upn).where(
                users.c.account_id == ctx.account_id, users.c.id == user_id, live_or_recycled
            )
        ).first()
        if row is None:
            raise not_found("User", user_id)
        ctx.reference(USER, row.upn)
        return str(row.id)
    return ctx.principal.user_id


def _owned_by(user_id: str | None) -> ColumnElement[bool]:
    return access_keys.c.user_id.is_(None) if user_id is None else access_keys.c.user_id == user_id


def _recycled_key(ctx: CallContext, key_id: str | None, owner: str | None, any_owner: bool = False) -> Row[Any]:
    if not key_id:
        raise missing("UserAccessKeyId")
    query = _recycled_keys(ctx).where(access_keys.c.id == key_id)
    if not any_owner:
        query = query.where(_owned_by(owner))
    row = ctx.conn.execute(query).first()
    if row is None and any_owner:
        raise ApiError("EntityNotExist.User.AccessKey", f"The AccessKey is not in the recycle bin: {key_id}.")
    if row is None:
        # Without UserId the caller's own keys are meant; saying so beats a bare "not found" for a key
        # that GetAccessKeyInfoInRecycleBin shows (without telling whose it is).
        whose = "the root account's" if owner is None else ("your" if owner == ctx.principal.user_id else "this user's")
        raise ApiError(
            "EntityNotExist.User.AccessKey",
            f"The AccessKey {key_id} is not among {whose} keys in the "
            "recycle bin; for a RAM user's key, pass that user's UserId.",
        )
    ctx.reference(ACCESS_KEY, row.id)
    if row.upn:
        ctx.reference(USER, row.upn)
    return row


def _key_view(row: Row[Any]) -> dict[str, Any]:
    recycled = row.deleted_ms if row.deleted_ms is not None else row.user_deleted_ms
    return {"AccessKeyId": row.id, "CreateDate": clock.iso(row.created_ms), **_dates(recycled)}


@action("ListAccessKeysInRecycleBin", params=(USER_ID,), resource=(USER, None))
def list_access_keys_in_recycle_bin(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """List a RAM user's AccessKeys in the recycle bin (the caller's own when UserId is omitted; for the
    root account, its own keys)."""
    owner = _bin_owner(ctx, p["UserId"])
    rows = ctx.conn.execute(
        _recycled_keys(ctx).where(_owned_by(owner)).order_by(access_keys.c.created_ms, access_keys.c.id)
    ).all()
    return {"AccessKeys": {"AccessKey": [_key_view(r) for r in rows]}}


@action(
    "GetAccessKeyInfoInRecycleBin",
    params=(Str("UserAccessKeyId", required=True, max_len=64),),
    resource=(ACCESS_KEY, "UserAccessKeyId"),
)
def get_access_key_info_in_recycle_bin(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Query an AccessKey in the recycle bin: its owner, when it was deleted and when it will be purged."""
    row = _recycled_key(ctx, p["UserAccessKeyId"], None, any_owner=True)
    return {
        "AccessKey": {
            **_key_view(row),
            "UserId": row.user_id or "",
            "UserPrincipalName": row.upn or "",
            "UserRecycled": row.user_deleted_ms is not None,
        }
    }


@action(
    "RestoreAccessKeyFromRecycleBin",
    rw=WRITE,
    params=(KEY_ID, USER_ID),
    resource=(ACCESS_KEY, "UserAccessKeyId"),
    sensitive=True,
)
def restore_access_key_from_recycle_bin(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Restore a deleted AccessKey of a live user (or of the root account); it authenticates again at once."""
    owner = _bin_owner(ctx, p["UserId"])
    row = _recycled_key(ctx, p["UserAccessKeyId"], owner)
    if row.user_deleted_ms is not None:
        raise ApiError(
            "EntityNotExist.User", f"The AccessKey's user {row.upn} is in the recycle bin: restore the user first."
        )
    live = ctx.conn.execute(
        select(func.count())
        .select_from(access_keys)
        .where(access_keys.c.account_id == ctx.account_id, _owned_by(owner), access_keys.c.deleted_ms.is_(None))
    ).scalar_one()
    limit = quotas.ACCESS_KEYS_PER_USER if owner else quotas.ACCESS_KEYS_PER_ACCOUNT
    if live >= limit:
        raise ApiError(
            "LimitExceeded.User.AccessKey",
            f"At most {limit} AccessKey pairs are allowed here; delete one before restoring.",
        )
    ctx.conn.execute(
        update(access_keys).where(access_keys.c.id == row.id).values(deleted_ms=None, updated_ms=ctx.now_ms)
    )
    return {}


@action(
    "DeleteAccessKeyInRecycleBin",
    rw=WRITE,
    params=(KEY_ID, USER_ID),
    resource=(ACCESS_KEY, "UserAccessKeyId"),
    sensitive=True,
)
def delete_access_key_in_recycle_bin(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Delete an AccessKey in the recycle bin for good."""
    row = _recycled_key(ctx, p["UserAccessKeyId"], _bin_owner(ctx, p["UserId"]))
    ctx.conn.execute(delete(access_keys).where(access_keys.c.id == row.id))
    return {}


def purge(rt: Runtime) -> int:
    """Delete users and keys past retention, in bounded batches; returns how many rows went."""
    cutoff = clock.now_ms() - RETENTION_MS
    removed = 0
    for table, erase in ((users, _erase_users), (access_keys, _erase_keys)):
        while True:
            with rt.db.transaction() as conn:
                expired = (
                    conn.execute(select(table.c.id).where(table.c.deleted_ms < cutoff).limit(BATCH)).scalars().all()
                )
                if expired:
                    erase(conn, list(expired))
            removed += len(expired)
            if len(expired) < BATCH:
                break
    return removed


def _erase_keys(conn: Any, key_ids: list[str]) -> None:
    conn.execute(delete(access_keys).where(access_keys.c.id.in_(key_ids)))
