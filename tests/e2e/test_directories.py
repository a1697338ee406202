"""The account's user directory and resource checks (OpenIMS-defined actions, signed RPC calls)."""

from __future__ import annotations

import json

import pytest
from alibabacloud_ims20190815 import models as m
from alibabacloud_ram20150501 import models as rm
from Tea.exceptions import TeaException

from tests.support import Account


def fails(call, code: str, status: int) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    assert (info.value.code, info.value.statusCode) == (code, status), info.value.message


def test_the_account_has_one_enabled_directory(acct: Account) -> None:
    ims = acct.ims()
    ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn("a"), display_name="A"))
    ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn("b"), display_name="B"))
    ims.create_group(m.CreateGroupRequest(group_name="g"))
    ims.delete_user(m.DeleteUserRequest(user_principal_name=acct.upn("b")))

    listed = acct.call("ListDirectories")
    [directory] = listed["Directories"]["Directory"]
    assert directory["DirectoryId"] == f"d-{acct.account_id}" and directory["AccountId"] == acct.account_id
    assert (directory["DirectoryType"], directory["Status"], directory["DirectoryName"]) == (
        "RAM",
        "Enabled",
        acct.alias,
    )
    assert directory["DefaultDomainName"] == acct.domain and directory["DomainNames"]["DomainName"] == [acct.domain]
    assert (directory["UserCount"], directory["GroupCount"]) == (1, 1) and directory["CreateDate"]

    got = acct.call("GetDirectory", {"DirectoryId": directory["DirectoryId"]})
    assert got["Directory"] == directory
    assert acct.call("GetDirectory")["Directory"]["DirectoryId"] == directory["DirectoryId"]
    enabled = acct.call("CheckDirectoryEnabled")
    assert (enabled["DirectoryId"], enabled["Enabled"]) == (directory["DirectoryId"], True)
    assert acct.call("CheckDirectoryEnabled", {"DirectoryId": directory["DirectoryId"]})["Enabled"] is True

    fails(lambda: acct.call("GetDirectory", {"DirectoryId": "d-1234567890123456"}), "EntityNotExist.Directory", 404)
    fails(lambda: acct.call("CheckDirectoryEnabled", {"DirectoryId": "nope"}), "EntityNotExist.Directory", 404)

    for body, name in ((listed, "ListDirectories"), (got, "GetDirectory"), (enabled, "CheckDirectoryEnabled")):
        event = acct.event_for(body["RequestId"])
        assert (event["eventName"], event["eventRW"], event["resourceType"], event["resourceName"]) == (
            name,
            "Read",
            "ACS::RAM::Directory",
            directory["DirectoryId"],
        )
    assert acct.events(EventName="GetDirectory")[0]["errorCode"] == "EntityNotExist.Directory"


def test_check_resource(acct: Account) -> None:
    ims = acct.ims()
    upn = acct.upn("alice")
    user = ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="Alice")).body.user
    group = ims.create_group(m.CreateGroupRequest(group_name="ops")).body.group
    app = ims.create_application(
        m.CreateApplicationRequest(app_name="web", display_name="Web", app_type="WebApp")
    ).body.application

    def check(**params: str) -> dict:  # type: ignore[type-arg]
        return acct.call("CheckResource", params)

    found = [
        check(ResourceType="user", ResourceName=upn),
        check(ResourceType="user", ResourceId=user.user_id),
        check(ResourceType="group", ResourceName="OPS"),
        check(ResourceType="group", ResourceId=group.group_id),
        check(ResourceType="application", ResourceId=app.app_id),
        check(ResourceType="application", ResourceName="web"),
        check(ResourceType="domain", ResourceName=acct.domain.upper()),
    ]
    expected = [
        ("user", user.user_id, upn),
        ("user", user.user_id, upn),
        ("group", group.group_id, "ops"),
        ("group", group.group_id, "ops"),
        ("application", app.app_id, "web"),
        ("application", app.app_id, "web"),
        ("domain", acct.domain, acct.domain),
    ]
    assert [(f["ResourceType"], f["ResourceId"], f["ResourceName"], f["Exists"], f["Accessible"]) for f in found] == [
        (*e, True, True) for e in expected
    ]

    missing = [
        check(ResourceType="user", ResourceName=acct.upn("ghost")),
        check(ResourceType="user", ResourceName="ghost@elsewhere.example.com"),
        check(ResourceType="user", ResourceId="123"),
        check(ResourceType="group", ResourceName="nope"),
        check(ResourceType="application", ResourceId="123"),
        check(ResourceType="domain", ResourceName="example.com"),
    ]
    assert all((f["Exists"], f["Accessible"]) == (False, False) for f in missing)
    assert missing[0]["ResourceName"] == acct.upn("ghost")

    fails(lambda: acct.call("CheckResource", {"ResourceType": "user"}), "MissingParameter", 400)
    fails(lambda: acct.call("CheckResource", {"ResourceName": upn}), "MissingParameter", 400)
    fails(
        lambda: acct.call("CheckResource", {"ResourceType": "bucket", "ResourceName": "x"}),
        "InvalidParameter.ResourceType",
        400,
    )
    fails(
        lambda: acct.call("CheckResource", {"ResourceType": "user", "ResourceId": "1", "ResourceName": upn}),
        "InvalidParameter.ResourceId",
        400,
    )

    event = acct.event_for(found[0]["RequestId"])
    assert (event["eventName"], event["eventRW"], event["resourceType"]) == (
        "CheckResource",
        "Read",
        "ACS::RAM::Directory;ACS::RAM::User",
    )
    assert event["referencedResources"]["ACS::RAM::User"] == [upn]
    assert [e.get("errorCode") for e in acct.events(EventName="CheckResource")[:2]] == [
        "InvalidParameter.ResourceId",
        "InvalidParameter.ResourceType",
    ]


def test_a_ram_user_without_permissions_is_denied(acct: Account) -> None:
    ims = acct.ims()
    upn = acct.upn("bob")
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="Bob"))
    key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    for name, params in (("ListDirectories", {}), ("CheckResource", {"ResourceType": "user", "ResourceName": upn})):
        fails(
            lambda name=name, params=params: acct.call(
                name, params, key_id=key.access_key_id, secret=key.access_key_secret
            ),
            "NoPermission",
            403,
        )
        event = acct.events(EventName=name)[0]
        assert event["errorCode"] == "NoPermission" and event["userIdentity"]["type"] == "ram-user"


def test_accessible_follows_the_callers_policies(acct: Account) -> None:
    ims = acct.ims()
    for name in ("checker", "dev-1", "ops-1"):
        ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn(name), display_name=name))
    document = {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": ["ram:CheckResource", "ram:ListDirectories"], "Resource": "*"},
            {"Effect": "Allow", "Action": "ram:GetUser", "Resource": "acs:ram:*:*:user/dev-*"},
        ],
    }
    ram = acct.ram()
    ram.create_policy(rm.CreatePolicyRequest(policy_name="Checker", policy_document=json.dumps(document)))
    ram.attach_policy_to_user(
        rm.AttachPolicyToUserRequest(policy_name="Checker", policy_type="Custom", user_name="checker")
    )
    key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=acct.upn("checker"))).body.access_key

    def check(name: str) -> tuple[bool, bool]:
        body = acct.call(
            "CheckResource",
            {"ResourceType": "user", "ResourceName": acct.upn(name)},
            key_id=key.access_key_id,
            secret=key.access_key_secret,
        )
        return body["Exists"], body["Accessible"]

    assert check("dev-1") == (True, True)
    assert check("ops-1") == (True, False)
    assert check("ghost") == (False, False)
    assert acct.call("ListDirectories", key_id=key.access_key_id, secret=key.access_key_secret)["Directories"][
        "Directory"
    ]
    events = acct.events(EventName="CheckResource")
    assert len(events) == 3 and all("errorCode" not in e and e["userIdentity"]["type"] == "ram-user" for e in events)
