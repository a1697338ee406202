"""RAM users: create, read, update, delete (to the recycle bin), list."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, insert, select, update

from openims import accounts, clock, ids, quotas
from openims.actions.context import CallContext
from openims.actions.paging import MARKER, max_items, page
from openims.actions.registry import WRITE, action
from openims.actions.tagging import has_all_tags, set_tags, tag_param, tags_of
from openims.errors import ApiError, already_exists, invalid, missing, not_found
from openims.params import Str
from openims.signin import console_access
from openims.store.prepared import Prepared
from openims.store.schema import access_keys, users

USER = "ACS::RAM::User"
NAME_CHARS = r"[A-Za-z0-9._-]{1,64}"
UPN_DOC = "must be <name>@<domain>: the name 1 to 64 letters, digits, periods, hyphens or underscores"
UPN = Str(
    "UserPrincipalName",
    required=True,
    min_len=1,
    max_len=128,
    pattern=NAME_CHARS + r"@[A-Za-z0-9.-]+",
    pattern_doc=UPN_DOC,
)
UPN_OPTIONAL = Str(
    "UserPrincipalName", min_len=1, max_len=128, pattern=NAME_CHARS + r"@[A-Za-z0-9.-]+", pattern_doc=UPN_DOC
)
USER_ID = Str("UserId", max_len=64)
DISPLAY_NAME_DOC = "can contain letters, digits, spaces and any printable characters"
STATUS_FILTER = Str("Status", choices=("active", "freeze", "active,freeze", "freeze,active"))


def split_upn(conn: Connection, account_id: str, upn: str, param: str = "UserPrincipalName") -> str:
    """The name part of a UPN, after checking its domain is one of the account's."""
    name, _, domain = upn.partition("@")
    if domain.lower() not in [d.lower() for d in accounts.user_domains(conn, account_id)]:
        raise invalid(
            param,
            "Domain",
            f'The parameter - "{param}" must use the account\'s default domain or a verified domain, not {domain}.',
        )
    return name


_LIVE_USER = select(users).where(users.c.account_id == bindparam("account_id"), users.c.deleted_ms.is_(None))
# The hot path runs them on every call: prepared (store/prepared.py).
_USER_BY = {
    "name": Prepared(_LIVE_USER.where(func.lower(users.c.name) == bindparam("value"))),
    "id": Prepared(_LIVE_USER.where(users.c.id == bindparam("value"))),
    "key": Prepared(
        _LIVE_USER.where(
            users.c.id
            == select(access_keys.c.user_id)
            .where(
                access_keys.c.id == bindparam("value"),
                access_keys.c.account_id == bindparam("account_id"),
                access_keys.c.deleted_ms.is_(None),
            )
            .scalar_subquery()
        )
    ),
}


def find_user(ctx: CallContext, upn: str | None = None, user_id: str | None = None, key_id: str | None = None) -> Any:
    """The live user (a named tuple of its columns) named by UPN, ID or one of its AccessKey IDs; a RAM user
    naming nobody means itself."""
    domain = None
    if upn:
        name, _, domain = upn.partition("@")
        by, value, wanted = "name", name.lower(), upn
    elif user_id:
        by, value, wanted = "id", user_id, user_id
    elif key_id:
        by, value, wanted = "key", key_id, key_id
    elif ctx.principal.user_id:
        by, value, wanted = "id", ctx.principal.user_id, ctx.principal.user_name
    else:
        raise missing("UserPrincipalName")
    row = _USER_BY[by].first(ctx.conn, {"account_id": ctx.account_id, "value": value})
    # A UPN stays valid under any of the account's domains (IMS keeps names across a default-domain change);
    # the common case, the domain the user was created with, needs no lookup of the account's domains.
    if row is None or (
        domain is not None
        and domain.lower() != row.upn.partition("@")[2].lower()
        and domain.lower() not in [d.lower() for d in accounts.user_domains(ctx.conn, ctx.account_id)]
    ):
        raise not_found("User", wanted)
    ctx.reference(USER, row.upn)
    return row


def user_view(row: Row[Any], tags: list[dict[str, str]] | None = None, basic: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "UserId": row.id,
        "UserPrincipalName": row.upn,
        "DisplayName": row.display_name,
        "Status": row.status,
    }
    if basic:
        return view
    view.update(
        {
            "UserName": row.name,
            "Email": row.email,
            "MobilePhone": row.mobile_phone,
            "Comments": row.comments,
            "ProvisionType": row.provision_type,
            "CreateDate": clock.iso(row.created_ms),
            "UpdateDate": clock.iso(row.updated_ms),
            "LastLoginDate": clock.iso(row.last_login_ms),
        }
    )
    if tags is not None:
        view["Tags"] = {"Tag": tags}
    return view


_LIVE_USERS = (
    select(func.count())
    .select_from(users)
    .where(users.c.account_id == bindparam("account_id"), users.c.deleted_ms.is_(None))
)
_INSERT_USER = insert(users)


def insert_user(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Create one user from CreateUser-shaped params; shared with batch creation."""
    name = split_upn(ctx.conn, ctx.account_id, p["UserPrincipalName"])
    if ctx.conn.execute(_LIVE_USERS, {"account_id": ctx.account_id}).scalar_one() >= quotas.USERS:
        raise ApiError("LimitExceeded.User", f"An account can have at most {quotas.USERS} RAM users.")
    if _USER_BY["name"].first(ctx.conn, {"account_id": ctx.account_id, "value": name.lower()}):
        raise already_exists("User", p["UserPrincipalName"])
    user_id = ids.user_id()
    ctx.conn.execute(
        _INSERT_USER,
        {
            "id": user_id,
            "account_id": ctx.account_id,
            "name": name,
            "upn": p["UserPrincipalName"],
            "display_name": p["DisplayName"],
            "email": p.get("Email") or "",
            "mobile_phone": p.get("MobilePhone") or "",
            "comments": p.get("Comments") or "",
            "created_ms": ctx.now_ms,
            "updated_ms": ctx.now_ms,
        },
    )
    set_tags(ctx.conn, ctx.account_id, "user", user_id, p.get("Tag") or [])
    row = _USER_BY["id"].first(ctx.conn, {"account_id": ctx.account_id, "value": user_id})
    return user_view(row, tags_of(ctx.conn, "user", [user_id])[user_id])


CREATE_USER_PARAMS = (
    UPN,
    Str("DisplayName", required=True, min_len=1, max_len=24),
    Str(
        "MobilePhone",
        max_len=32,
        pattern=r"[0-9+-]{1,32}",
        pattern_doc="is <country code>-<number>, for example 86-1868888****",
    ),
    Str("Email", max_len=128, pattern=r"[^@\s]+@[^@\s]+", pattern_doc="must be an email address"),
    Str("Comments", min_len=1, max_len=128),
    tag_param(),
)


@action(
    "CreateUser",
    rw=WRITE,
    params=CREATE_USER_PARAMS,
    resource=(USER, "UserPrincipalName"),
    arn="user/{UserPrincipalName}",
)
def create_user(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Create a RAM user."""
    return {"User": insert_user(ctx, p)}


@action(
    "GetUser",
    params=(UPN_OPTIONAL, USER_ID, Str("UserAccessKeyId", max_len=64)),
    resource=(USER, "UserPrincipalName"),
    self_service=True,
    arn="user/{UserPrincipalName}",
)
def get_user(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Query a RAM user by UserPrincipalName, UserId or one of its AccessKey IDs."""
    row = find_user(ctx, p["UserPrincipalName"], p["UserId"], p["UserAccessKeyId"])
    return {"User": user_view(row, tags_of(ctx.conn, "user", [row.id])[row.id])}


@action(
    "UpdateUser",
    rw=WRITE,
    resource=(USER, "UserPrincipalName"),
    arn="user/{UserPrincipalName}",
    params=(
        UPN_OPTIONAL,
        USER_ID,
        Str("NewUserPrincipalName", min_len=1, max_len=128, pattern=UPN.pattern, pattern_doc=UPN_DOC, keep_empty=True),
        Str("NewDisplayName", min_len=1, max_len=24, keep_empty=True),
        # An empty phone number, email or comment clears it.
        Str(
            "NewMobilePhone",
            max_len=32,
            pattern=r"[0-9+-]{1,32}",
            pattern_doc="is <country code>-<number>",
            keep_empty=True,
        ),
        Str(
            "NewEmail", max_len=128, pattern=r"[^@\s]+@[^@\s]+", pattern_doc="must be an email address", keep_empty=True
        ),
        Str("NewComments", max_len=128, keep_empty=True),
    ),
)
def update_user(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Modify a RAM user's name, display name, contact details or comments. An empty NewMobilePhone,
    NewEmail or NewComments clears it; an empty NewUserPrincipalName or NewDisplayName is refused."""
    if not (p["UserPrincipalName"] or p["UserId"]):
        raise missing("UserPrincipalName")
    row = find_user(ctx, p["UserPrincipalName"], p["UserId"])
    changes: dict[str, Any] = {}
    new_upn = p["NewUserPrincipalName"]
    if new_upn is not None and new_upn != row.upn:
        new_name = split_upn(ctx.conn, ctx.account_id, new_upn, "NewUserPrincipalName")
        if (
            new_name.lower() != row.name.lower()
            and ctx.conn.execute(
                select(users.c.id).where(
                    users.c.account_id == ctx.account_id,
                    users.c.deleted_ms.is_(None),
                    func.lower(users.c.name) == new_name.lower(),
                )
            ).first()
        ):
            raise already_exists("User", new_upn)
        changes.update(name=new_name, upn=new_upn)
        ctx.reference(USER, new_upn)
    for param, column in (
        ("NewDisplayName", "display_name"),
        ("NewMobilePhone", "mobile_phone"),
        ("NewEmail", "email"),
        ("NewComments", "comments"),
    ):
        if p[param] is not None:
            changes[column] = p[param]
    if changes:
        ctx.conn.execute(update(users).where(users.c.id == row.id).values(updated_ms=ctx.now_ms, **changes))
    row = ctx.conn.execute(select(users).where(users.c.id == row.id)).one()
    return {"User": user_view(row)}


@action(
    "DeleteUser",
    rw=WRITE,
    params=(UPN_OPTIONAL, USER_ID),
    resource=(USER, "UserPrincipalName"),
    arn="user/{UserPrincipalName}",
)
def delete_user(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Delete a RAM user: it moves to the recycle bin with its keys, groups and login profile, and its
    AccessKeys stop working at once."""
    if not (p["UserPrincipalName"] or p["UserId"]):
        raise missing("UserPrincipalName")
    row = find_user(ctx, p["UserPrincipalName"], p["UserId"])
    ctx.conn.execute(update(users).where(users.c.id == row.id).values(deleted_ms=ctx.now_ms, updated_ms=ctx.now_ms))
    # Restoring brings the user back as it was, but not its console sessions or saved MFA tickets.
    console_access.end(ctx.conn, row.id)
    return {}


def _list(ctx: CallContext, p: dict[str, Any], basic: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    query = select(users).where(users.c.account_id == ctx.account_id, users.c.deleted_ms.is_(None))
    if p["Status"]:
        query = query.where(users.c.status.in_(p["Status"].split(",")))
    if p["Tag"]:
        query = query.where(has_all_tags("user", users.c.id, p["Tag"]))
    # By name (unique among live users), as people look for them.
    rows, fields = page(ctx.conn, query, users.c.name, p["Marker"], p["MaxItems"])
    tags = None if basic else tags_of(ctx.conn, "user", [r.id for r in rows])
    return [user_view(r, None if tags is None else tags[r.id], basic=basic) for r in rows], fields


@action("ListUsers", params=(MARKER, max_items(1000, 1000), STATUS_FILTER, tag_param()), arn="user/*")
def list_users(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """List RAM users with their details."""
    items, fields = _list(ctx, p, basic=False)
    return {"Users": {"User": items}, **fields}


@action("ListUserBasicInfos", params=(MARKER, max_items(1000, 100), STATUS_FILTER, tag_param()), arn="user/*")
def list_user_basic_infos(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """List RAM users' basic information (ID, name, display name, status)."""
    items, fields = _list(ctx, p, basic=True)
    return {"UserBasicInfos": {"UserBasicInfo": items}, **fields}
