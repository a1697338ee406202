"""The legacy *UserGroup actions (no SDK method: signed RPC calls) act on the same groups as CreateGroup and its
siblings, and are recorded under their own event names."""

from __future__ import annotations

import pytest
from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from tests.support import Account


def fails(call, code: str, status: int) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    assert (info.value.code, info.value.statusCode) == (code, status), info.value.message


def test_legacy_names_manage_the_same_groups(acct: Account) -> None:
    ims = acct.ims()
    created = acct.call("CreateUserGroup", {"GroupName": "ops", "DisplayName": "Operations", "Comments": "on call"})
    assert (created["Group"]["GroupName"], created["Group"]["DisplayName"], created["Group"]["Comments"]) == (
        "ops",
        "Operations",
        "on call",
    )
    sdk_view = ims.get_group(m.GetGroupRequest(group_name="ops")).body.group
    assert sdk_view.group_id == created["Group"]["GroupId"]

    alice = acct.upn("alice")
    ims.create_user(m.CreateUserRequest(user_principal_name=alice, display_name="Alice"))
    added = acct.call("AddUserToUserGroup", {"GroupName": "ops", "UserPrincipalName": alice})
    members = ims.list_users_for_group(m.ListUsersForGroupRequest(group_name="ops")).body.users.user
    assert [u.user_principal_name for u in members] == [alice]

    updated = acct.call("UpdateUserGroup", {"GroupName": "ops", "NewGroupName": "sre", "NewComments": "renamed"})
    assert (updated["Group"]["GroupName"], updated["Group"]["Comments"], updated["Group"]["DisplayName"]) == (
        "sre",
        "renamed",
        "Operations",
    )
    ims.create_group(m.CreateGroupRequest(group_name="dev"))
    listed = acct.call("ListUserGroups")
    assert [g["GroupName"] for g in listed["Groups"]["Group"]] == ["dev", "sre"] and listed["IsTruncated"] is False
    assert [g["GroupName"] for g in acct.call("ListUserGroups", {"MaxItems": "1"})["Groups"]["Group"]] == ["dev"]

    fails(lambda: acct.call("DeleteUserGroup", {"GroupName": "sre"}), "DeleteConflict.Group.User", 409)
    ims.remove_user_from_group(m.RemoveUserFromGroupRequest(group_name="sre", user_principal_name=alice))
    deleted = acct.call("DeleteUserGroup", {"GroupName": "sre"})
    fails(lambda: ims.get_group(m.GetGroupRequest(group_name="sre")), "EntityNotExist.Group", 404)

    for body, name, rw, resource in (
        (created, "CreateUserGroup", "Write", "ops"),
        (added, "AddUserToUserGroup", "Write", f"ops;{alice}"),
        (updated, "UpdateUserGroup", "Write", "ops,sre"),
        (listed, "ListUserGroups", "Read", ""),
        (deleted, "DeleteUserGroup", "Write", "sre"),
    ):
        event = acct.event_for(body["RequestId"])
        assert (event["eventName"], event["eventRW"], event["resourceName"]) == (name, rw, resource)
        # ActionTrail's format: the group first, then (a membership change) the user.
        assert event["resourceType"] == ("ACS::RAM::Group" if resource else "") + (
            ";ACS::RAM::User" if "@" in resource else ""
        )
    assert set(acct.event_for(added["RequestId"])["referencedResources"]) == {"ACS::RAM::Group", "ACS::RAM::User"}
    assert acct.events(EventName="CreateGroup")[0]["requestParameters"]["GroupName"] == "dev"


def test_legacy_names_share_the_rules(acct: Account) -> None:
    ims = acct.ims()
    ims.create_group(m.CreateGroupRequest(group_name="ops"))
    alice = acct.upn("alice")
    ims.create_user(m.CreateUserRequest(user_principal_name=alice, display_name="Alice"))
    acct.call("AddUserToUserGroup", {"GroupName": "ops", "UserPrincipalName": alice})
    cases = [
        ("CreateUserGroup", {"GroupName": "OPS"}, "EntityAlreadyExists.Group", 409),
        ("CreateUserGroup", {"GroupName": "bad name"}, "InvalidParameter.GroupName.InvalidChars", 400),
        ("CreateUserGroup", {"GroupName": "g" * 65}, "InvalidParameter.GroupName.Length", 400),
        ("CreateUserGroup", {}, "MissingParameter", 400),
        ("UpdateUserGroup", {"GroupName": "nope", "NewComments": "x"}, "EntityNotExist.Group", 404),
        ("DeleteUserGroup", {"GroupName": "nope"}, "EntityNotExist.Group", 404),
        ("DeleteUserGroup", {}, "MissingParameter", 400),
        ("AddUserToUserGroup", {"GroupName": "ops", "UserPrincipalName": alice}, "EntityAlreadyExists.User.Group", 409),
        (
            "AddUserToUserGroup",
            {"GroupName": "ops", "UserPrincipalName": acct.upn("ghost")},
            "EntityNotExist.User",
            404,
        ),
        ("AddUserToUserGroup", {"GroupName": "ops"}, "MissingParameter", 400),
        ("ListUserGroups", {"MaxItems": "101"}, "InvalidParameter.MaxItems", 400),
    ]
    for name, params, code, status in cases:
        fails(lambda name=name, params=params: acct.call(name, params), code, status)
        assert acct.events(EventName=name)[0]["errorCode"] == code

    for i in range(49):
        acct.call("CreateUserGroup", {"GroupName": f"g{i}"})
    fails(lambda: acct.call("CreateUserGroup", {"GroupName": "one-more"}), "LimitExceeded.Group", 409)
    fails(lambda: ims.create_group(m.CreateGroupRequest(group_name="one-more")), "LimitExceeded.Group", 409)
