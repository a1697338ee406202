"""RAM groups and membership through the official IMS SDK."""

from __future__ import annotations

import pytest
from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from tests.support import Account


def fails(call, code: str, status: int) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    assert (info.value.code, info.value.statusCode) == (code, status)


def test_group_lifecycle_and_membership(acct: Account) -> None:
    ims = acct.ims()
    created = ims.create_group(
        m.CreateGroupRequest(group_name="ops", display_name="Operations", comments="on call")
    ).body
    assert created.group.group_name == "ops" and created.group.group_id
    fails(lambda: ims.create_group(m.CreateGroupRequest(group_name="OPS")), "EntityAlreadyExists.Group", 409)
    fails(
        lambda: ims.create_group(m.CreateGroupRequest(group_name="bad name")),
        "InvalidParameter.GroupName.InvalidChars",
        400,
    )
    fails(lambda: ims.create_group(m.CreateGroupRequest()), "MissingParameter", 400)

    alice, bob = acct.upn("alice"), acct.upn("bob")
    for upn in (alice, bob):
        ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name=upn[:5]))
        ims.add_user_to_group(m.AddUserToGroupRequest(group_name="ops", user_principal_name=upn))
    fails(
        lambda: ims.add_user_to_group(m.AddUserToGroupRequest(group_name="ops", user_principal_name=alice)),
        "EntityAlreadyExists.User.Group",
        409,
    )
    fails(
        lambda: ims.add_user_to_group(m.AddUserToGroupRequest(group_name="nope", user_principal_name=alice)),
        "EntityNotExist.Group",
        404,
    )
    members = ims.list_users_for_group(m.ListUsersForGroupRequest(group_name="ops")).body.users.user
    assert sorted(u.user_principal_name for u in members) == sorted([alice, bob]) and all(u.join_date for u in members)
    mine = ims.list_groups_for_user(m.ListGroupsForUserRequest(user_principal_name=alice)).body.groups.group
    assert [(g.group_name, g.display_name) for g in mine] == [("ops", "Operations")]

    fails(lambda: ims.delete_group(m.DeleteGroupRequest(group_name="ops")), "DeleteConflict.Group.User", 409)
    updated = ims.update_group(
        m.UpdateGroupRequest(group_name="ops", new_group_name="sre", new_comments="renamed")
    ).body.group
    assert (updated.group_name, updated.comments, updated.display_name) == ("sre", "renamed", "Operations")
    fails(
        lambda: ims.update_group(m.UpdateGroupRequest(group_name="sre", new_group_name="")),
        "InvalidParameter.NewGroupName.Length",
        400,
    )
    cleared = ims.update_group(m.UpdateGroupRequest(group_name="sre", new_comments="")).body.group
    assert (cleared.group_name, cleared.comments, cleared.display_name) == ("sre", "", "Operations")
    assert ims.get_group(m.GetGroupRequest(group_name="sre")).body.group.group_id == created.group.group_id
    fails(lambda: ims.get_group(m.GetGroupRequest(group_name="ops")), "EntityNotExist.Group", 404)

    for upn in (alice, bob):
        ims.remove_user_from_group(m.RemoveUserFromGroupRequest(group_name="sre", user_principal_name=upn))
    fails(
        lambda: ims.remove_user_from_group(m.RemoveUserFromGroupRequest(group_name="sre", user_principal_name=alice)),
        "EntityNotExist.User.Group",
        404,
    )
    deleted = ims.delete_group(m.DeleteGroupRequest(group_name="sre")).body
    assert ims.list_groups(m.ListGroupsRequest()).body.groups.group == []

    event = acct.event_for(deleted.request_id)
    assert (event["eventName"], event["resourceType"], event["resourceName"]) == (
        "DeleteGroup",
        "ACS::RAM::Group",
        "sre",
    )
    adds = acct.events(EventName="AddUserToGroup")
    assert len(adds) == 4 and {e.get("errorCode") for e in adds} == {
        None,
        "EntityAlreadyExists.User.Group",
        "EntityNotExist.Group",
    }
    ok_add = next(e for e in adds if "errorCode" not in e)
    assert set(ok_add["referencedResources"]) == {"ACS::RAM::Group", "ACS::RAM::User"}


def test_group_quota_and_paging(acct: Account) -> None:
    ims = acct.ims()
    for i in range(50):
        ims.create_group(m.CreateGroupRequest(group_name=f"g{i:02d}"))
    fails(lambda: ims.create_group(m.CreateGroupRequest(group_name="one-too-many")), "LimitExceeded.Group", 409)
    names, marker = [], None
    while True:
        body = ims.list_groups(m.ListGroupsRequest(max_items=20, marker=marker)).body
        names += [g.group_name for g in body.groups.group]
        if not body.is_truncated:
            break
        marker = body.marker
    assert names == [f"g{i:02d}" for i in range(50)]
    fails(lambda: ims.list_groups(m.ListGroupsRequest(marker="%%%not-a-marker")), "InvalidParameter.Marker", 400)
    # A marker that decodes but is not one of ours, or belongs to another list, is refused too.
    fails(lambda: ims.list_groups(m.ListGroupsRequest(marker="QUJD")), "InvalidParameter.Marker", 400)
    ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn("u1"), display_name="u"))
    ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn("u2"), display_name="u"))
    users_marker = ims.list_users(m.ListUsersRequest(max_items=1)).body.marker
    fails(lambda: ims.list_groups(m.ListGroupsRequest(marker=users_marker)), "InvalidParameter.Marker", 400)


def test_groups_per_user_quota(acct: Account) -> None:
    ims = acct.ims()
    upn = acct.upn("joiner")
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="j"))
    for i in range(5):
        ims.create_group(m.CreateGroupRequest(group_name=f"team{i}"))
        ims.add_user_to_group(m.AddUserToGroupRequest(group_name=f"team{i}", user_principal_name=upn))
    ims.create_group(m.CreateGroupRequest(group_name="team5"))
    fails(
        lambda: ims.add_user_to_group(m.AddUserToGroupRequest(group_name="team5", user_principal_name=upn)),
        "LimitExceeded.User.Group",
        409,
    )
