"""RAM user groups and their membership."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update

from openims import clock, ids, quotas
from openims.actions.context import CallContext
from openims.actions.paging import MARKER, max_items, page
from openims.actions.registry import WRITE, action
from openims.actions.users import UPN, USER, find_user
from openims.errors import ApiError, already_exists, missing, not_found
from openims.params import Str
from openims.store.schema import group_members, groups, users
from openims.store.tables.policies import group_policies

GROUP = "ACS::RAM::Group"
NAME_RULE = {
    "min_len": 1,
    "max_len": 64,
    "pattern": r"[A-Za-z0-9._-]+",
    "pattern_doc": "can contain only letters, digits, periods (.), hyphens (-) and underscores (_)",
}
GROUP_NAME = Str("GroupName", **NAME_RULE)  # type: ignore[arg-type]
DISPLAY_NAME = Str("DisplayName", max_len=24)
COMMENTS = Str("Comments", max_len=128)
# RAM judges a membership change on both the group and the user.
MEMBERSHIP_ARN = "group/{GroupName},user/{UserPrincipalName}"


def find_group(ctx: CallContext, name: str | None) -> Row[Any]:
    if not name:
        raise missing("GroupName")
    row = ctx.conn.execute(
        select(groups).where(groups.c.account_id == ctx.account_id, func.lower(groups.c.name) == name.lower())
    ).first()
    if row is None:
        raise not_found("Group", name)
    ctx.reference(GROUP, row.name)
    return row


def group_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "GroupId": row.id,
        "GroupName": row.name,
        "DisplayName": row.display_name,
        "Comments": row.comments,
        "CreateDate": clock.iso(row.created_ms),
        "UpdateDate": clock.iso(row.updated_ms),
    }


def _name_taken(ctx: CallContext, name: str) -> bool:
    return (
        ctx.conn.execute(
            select(groups.c.id).where(groups.c.account_id == ctx.account_id, func.lower(groups.c.name) == name.lower())
        ).first()
        is not None
    )


def insert_group(ctx: CallContext, name: str | None, display_name: str | None, comments: str | None) -> dict[str, Any]:
    """Create a group; shared by CreateGroup and the legacy CreateUserGroup."""
    if not name:
        raise missing("GroupName")
    if _name_taken(ctx, name):
        raise already_exists("Group", name)
    count = ctx.conn.execute(
        select(func.count()).select_from(groups).where(groups.c.account_id == ctx.account_id)
    ).scalar_one()
    if count >= quotas.GROUPS:
        raise ApiError("LimitExceeded.Group", f"An account can have at most {quotas.GROUPS} user groups.")
    group_id = ids.user_id()
    ctx.conn.execute(
        insert(groups).values(
            id=group_id,
            account_id=ctx.account_id,
            name=name,
            display_name=display_name or "",
            comments=comments or "",
            created_ms=ctx.now_ms,
            updated_ms=ctx.now_ms,
        )
    )
    return group_view(ctx.conn.execute(select(groups).where(groups.c.id == group_id)).one())


def modify_group(
    ctx: CallContext, name: str | None, new_name: str | None, new_display: str | None, new_comments: str | None
) -> dict[str, Any]:
    row = find_group(ctx, name)
    changes: dict[str, Any] = {}
    if new_name is not None and new_name != row.name:
        if new_name.lower() != row.name.lower() and _name_taken(ctx, new_name):
            raise already_exists("Group", new_name)
        changes["name"] = new_name
        ctx.reference(GROUP, new_name)
    if new_display is not None:
        changes["display_name"] = new_display
    if new_comments is not None:
        changes["comments"] = new_comments
    if changes:
        ctx.conn.execute(update(groups).where(groups.c.id == row.id).values(updated_ms=ctx.now_ms, **changes))
    return group_view(ctx.conn.execute(select(groups).where(groups.c.id == row.id)).one())


def remove_group(ctx: CallContext, name: str | None) -> None:
    row = find_group(ctx, name)
    live_members = (
        select(func.count())
        .select_from(group_members.join(users, users.c.id == group_members.c.user_id))
        .where(group_members.c.group_id == row.id, users.c.deleted_ms.is_(None))
    )
    if ctx.conn.execute(live_members).scalar_one():
        raise ApiError("DeleteConflict.Group.User", f"The group {row.name} still has members; remove them first.")
    if ctx.conn.execute(select(group_policies.c.group_id).where(group_policies.c.group_id == row.id).limit(1)).first():
        raise ApiError(
            "DeleteConflict.Group.Policy", f"The group {row.name} still has policies attached; detach them first."
        )
    ctx.conn.execute(delete(groups).where(groups.c.id == row.id))


def add_member(ctx: CallContext, group_name: str | None, upn: str) -> None:
    group = find_group(ctx, group_name)
    user = find_user(ctx, upn)
    already = ctx.conn.execute(
        select(group_members.c.group_id).where(group_members.c.group_id == group.id, group_members.c.user_id == user.id)
    ).first()
    if already:
        raise ApiError("EntityAlreadyExists.User.Group", f"The user {user.upn} is already in the group {group.name}.")
    count = ctx.conn.execute(
        select(func.count()).select_from(group_members).where(group_members.c.user_id == user.id)
    ).scalar_one()
    if count >= quotas.GROUPS_PER_USER:
        raise ApiError("LimitExceeded.User.Group", f"A user can be in at most {quotas.GROUPS_PER_USER} groups.")
    ctx.conn.execute(insert(group_members).values(group_id=group.id, user_id=user.id, joined_ms=ctx.now_ms))


CREATE_PARAMS = (Str("GroupName", required=True, **NAME_RULE), DISPLAY_NAME, COMMENTS)  # type: ignore[arg-type]
# An empty NewGroupName is refused (names need a character); an empty display name or comment clears it.
UPDATE_PARAMS = (
    GROUP_NAME,
    Str("NewGroupName", **NAME_RULE, keep_empty=True),  # type: ignore[arg-type]
    Str("NewDisplayName", max_len=24, keep_empty=True),
    Str("NewComments", max_len=128, keep_empty=True),
)


@action("CreateGroup", rw=WRITE, params=CREATE_PARAMS, resource=(GROUP, "GroupName"), arn="group/{GroupName}")
def create_group(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Create a RAM user group."""
    return {"Group": insert_group(ctx, p["GroupName"], p["DisplayName"], p["Comments"])}


@action("GetGroup", params=(GROUP_NAME,), resource=(GROUP, "GroupName"), arn="group/{GroupName}")
def get_group(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Query a RAM user group."""
    return {"Group": group_view(find_group(ctx, p["GroupName"]))}


@action("UpdateGroup", rw=WRITE, params=UPDATE_PARAMS, resource=(GROUP, "GroupName"), arn="group/{GroupName}")
def update_group(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Rename a group or change its display name or comments. An empty NewDisplayName or NewComments
    clears it; an empty NewGroupName is refused."""
    return {"Group": modify_group(ctx, p["GroupName"], p["NewGroupName"], p["NewDisplayName"], p["NewComments"])}


@action("DeleteGroup", rw=WRITE, params=(GROUP_NAME,), resource=(GROUP, "GroupName"), arn="group/{GroupName}")
def delete_group(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Delete a RAM user group with no members and no policies attached."""
    remove_group(ctx, p["GroupName"])
    return {}


@action("ListGroups", params=(MARKER, max_items(100, 100)), arn="group/*")
def list_groups(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the account's user groups."""
    query = select(groups).where(groups.c.account_id == ctx.account_id)
    rows, fields = page(ctx.conn, query, groups.c.name, p["Marker"], p["MaxItems"])
    return {"Groups": {"Group": [group_view(r) for r in rows]}, **fields}


@action(
    "AddUserToGroup",
    rw=WRITE,
    params=(GROUP_NAME, UPN),
    resource=(GROUP, "GroupName"),
    arn=MEMBERSHIP_ARN,
    resources=((USER, "UserPrincipalName"),),
)
def add_user_to_group(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Add a RAM user to a group."""
    add_member(ctx, p["GroupName"], p["UserPrincipalName"])
    return {}


@action(
    "RemoveUserFromGroup",
    rw=WRITE,
    params=(GROUP_NAME, UPN),
    resource=(GROUP, "GroupName"),
    arn=MEMBERSHIP_ARN,
    resources=((USER, "UserPrincipalName"),),
)
def remove_user_from_group(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Remove a RAM user from a group."""
    group = find_group(ctx, p["GroupName"])
    user = find_user(ctx, p["UserPrincipalName"])
    gone = ctx.conn.execute(
        delete(group_members).where(group_members.c.group_id == group.id, group_members.c.user_id == user.id)
    ).rowcount
    if not gone:
        raise ApiError("EntityNotExist.User.Group", f"The user {user.upn} is not in the group {group.name}.")
    return {}


@action(
    "ListGroupsForUser",
    params=(UPN,),
    resource=("ACS::RAM::User", "UserPrincipalName"),
    self_service=True,
    arn="user/{UserPrincipalName}",
)
def list_groups_for_user(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the groups a RAM user belongs to."""
    user = find_user(ctx, p["UserPrincipalName"])
    rows = ctx.conn.execute(
        select(groups, group_members.c.joined_ms)
        .join(group_members, group_members.c.group_id == groups.c.id)
        .where(group_members.c.user_id == user.id)
        .order_by(groups.c.name)
    ).all()
    items = [
        {
            "GroupId": r.id,
            "GroupName": r.name,
            "DisplayName": r.display_name,
            "Comments": r.comments,
            "JoinDate": clock.iso(r.joined_ms),
        }
        for r in rows
    ]
    return {"Groups": {"Group": items}}


@action(
    "ListUsersForGroup",
    params=(GROUP_NAME, MARKER, max_items(100, 100)),
    resource=(GROUP, "GroupName"),
    arn="group/{GroupName}",
)
def list_users_for_group(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the members of a group."""
    group = find_group(ctx, p["GroupName"])
    query = (
        select(users.c.id, users.c.upn, users.c.display_name, group_members.c.joined_ms)
        .join(group_members, group_members.c.user_id == users.c.id)
        .where(group_members.c.group_id == group.id, users.c.deleted_ms.is_(None))
    )
    rows, fields = page(ctx.conn, query, users.c.id, p["Marker"], p["MaxItems"])
    items = [
        {"UserId": r.id, "UserPrincipalName": r.upn, "DisplayName": r.display_name, "JoinDate": clock.iso(r.joined_ms)}
        for r in rows
    ]
    return {"Users": {"User": items}, **fields}
