"""The legacy `*UserGroup` names of the group actions: the same groups, the same code, their own event names."""

from __future__ import annotations

from typing import Any

from openims.actions import groups
from openims.actions.context import CallContext
from openims.actions.paging import MARKER, max_items
from openims.actions.registry import WRITE, action
from openims.actions.users import UPN, USER

GROUP_ARN = "group/{GroupName}"
RESOURCE = (groups.GROUP, "GroupName")


@action("CreateUserGroup", rw=WRITE, params=groups.CREATE_PARAMS, resource=RESOURCE, arn=GROUP_ARN, extension=True)
def create_user_group(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Legacy name of CreateGroup: create a RAM user group."""
    return groups.create_group(ctx, p)


@action("UpdateUserGroup", rw=WRITE, params=groups.UPDATE_PARAMS, resource=RESOURCE, arn=GROUP_ARN, extension=True)
def update_user_group(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Legacy name of UpdateGroup: rename a group or change its display name or comments."""
    return groups.update_group(ctx, p)


@action("DeleteUserGroup", rw=WRITE, params=(groups.GROUP_NAME,), resource=RESOURCE, arn=GROUP_ARN, extension=True)
def delete_user_group(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Legacy name of DeleteGroup: delete a RAM user group with no members and no policies attached."""
    return groups.delete_group(ctx, p)


@action("ListUserGroups", params=(MARKER, max_items(100, 100)), extension=True, arn="group/*")
def list_user_groups(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Legacy name of ListGroups: list the account's user groups."""
    return groups.list_groups(ctx, p)


@action(
    "AddUserToUserGroup",
    rw=WRITE,
    params=(groups.GROUP_NAME, UPN),
    resource=RESOURCE,
    arn=groups.MEMBERSHIP_ARN,
    extension=True,
    resources=((USER, "UserPrincipalName"),),
)
def add_user_to_user_group(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Legacy name of AddUserToGroup: add a RAM user to a group."""
    return groups.add_user_to_group(ctx, p)
