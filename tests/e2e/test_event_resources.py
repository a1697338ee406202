"""Everything that happened to one user, through the official SDKs: every resource an event touches is
searchable, ActionTrail's further lookup keys, and what each write changed (old and new values, secrets never)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from alibabacloud_actiontrail20200706 import models as am
from alibabacloud_ims20190815 import models as m
from alibabacloud_ram20150501 import models as rm
from Tea.exceptions import TeaException

from tests.e2e.test_cli import openims
from tests.e2e.test_mfa import _raw_database_text, bind_request, codes
from tests.support import Account

DOCUMENT = json.dumps({"Version": "1", "Statement": [{"Effect": "Allow", "Action": "ims:Get*", "Resource": "*"}]})
SCENARIO = (
    "CreateUser",
    "UpdateUser",
    "AddUserToGroup",
    "RemoveUserFromGroup",
    "CreateAccessKey",
    "DeleteAccessKey",
    "AttachPolicyToUser",
    "BindMFADevice",
    "CreateLoginProfile",
)


@dataclass
class Story:
    acct: Account
    upn: str
    user_id: str
    key_id: str
    secrets: tuple[str, ...]


def lookup(acct: Account, **attrs: str) -> list[dict]:
    return acct.events(**attrs)


@pytest.fixture
def story(acct: Account) -> Story:
    """One user's life: created, renamed in display, in and out of a group, a key made and deleted, a policy
    attached, an MFA device bound, a password set; plus a second key it uses itself."""
    ims, ram = acct.ims(), acct.ram()
    upn = acct.upn("alice")
    user_id = ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="Alice")).body.user.user_id
    ims.update_user(m.UpdateUserRequest(user_principal_name=upn, new_display_name="Alice Liddell"))
    ims.create_group(m.CreateGroupRequest(group_name="wonderland"))
    ims.add_user_to_group(m.AddUserToGroupRequest(group_name="wonderland", user_principal_name=upn))
    ims.remove_user_from_group(m.RemoveUserFromGroupRequest(group_name="wonderland", user_principal_name=upn))
    gone = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    ims.delete_access_key(m.DeleteAccessKeyRequest(user_principal_name=upn, user_access_key_id=gone.access_key_id))
    ram.create_policy(rm.CreatePolicyRequest(policy_name="ReadIms", policy_document=DOCUMENT))
    ram.attach_policy_to_user(
        rm.AttachPolicyToUserRequest(policy_name="ReadIms", policy_type="Custom", user_name="alice")
    )
    device = ims.create_virtual_mfadevice(
        m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="alice-phone")
    ).body.virtual_mfadevice
    ims.bind_mfadevice(bind_request(upn, device.serial_number, codes(device.base_32string_seed)))
    password = "Looking-Glass-42"
    ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=upn, password=password))
    key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    # Alice's own call, with her key (the policy lets her read).
    acct.ims(key.access_key_id, key.access_key_secret).get_user(m.GetUserRequest(user_principal_name=upn))
    secrets = (gone.access_key_secret, key.access_key_secret, device.base_32string_seed, password)
    return Story(acct, upn, user_id, key.access_key_id, secrets)


def test_every_event_of_the_user_is_found_by_its_name(story: Story) -> None:
    acct, upn = story.acct, story.upn
    found = lookup(acct, ResourceName=upn)
    assert set(SCENARIO) <= {e["eventName"] for e in found}
    # ActionTrail's format: types separated by ";", names of a type by ",", the per-type groups by ";".
    added = next(e for e in found if e["eventName"] == "AddUserToGroup")
    assert added["resourceType"] == "ACS::RAM::Group;ACS::RAM::User"
    assert added["resourceName"] == f"wonderland;{upn}"
    assert added["referencedResources"] == {"ACS::RAM::Group": ["wonderland"], "ACS::RAM::User": [upn]}
    created_key = next(e for e in found if e["eventName"] == "CreateAccessKey")
    assert set(created_key["referencedResources"]) == {"ACS::RAM::User", "ACS::RAM::AccessKey"}
    attached = next(e for e in found if e["eventName"] == "AttachPolicyToUser")
    assert attached["referencedResources"]["ACS::RAM::User"] == [upn]  # the RAM UserName, as its UPN
    bound = next(e for e in found if e["eventName"] == "BindMFADevice")
    assert set(bound["referencedResources"]) == {"ACS::RAM::User", "ACS::RAM::VirtualMFADevice"}
    # A resource and its type together, and the group's own history includes the membership changes.
    assert {e["eventName"] for e in lookup(acct, ResourceName="wonderland", ResourceType="ACS::RAM::Group")} == {
        "CreateGroup",
        "AddUserToGroup",
        "RemoveUserFromGroup",
    }
    assert lookup(acct, ResourceName="wonderland", ResourceType="ACS::RAM::User") == []
    keys = lookup(acct, ResourceType="ACS::RAM::AccessKey", EventName="CreateAccessKey")
    assert len(keys) == 2
    # A refused authentication (a known key, a bad signature) names what its request named.
    with pytest.raises(TeaException):
        acct.call("DeleteUser", {"UserPrincipalName": upn}, secret="not-the-secret")
    refused = lookup(acct, ResourceName=upn, ErrorCode="SignatureDoesNotMatch")
    assert [e["eventName"] for e in refused] == ["DeleteUser"]


def test_the_further_lookup_keys(story: Story) -> None:
    acct, upn = story.acct, story.upn
    own = lookup(acct, User="alice")
    assert [(e["eventName"], e["userIdentity"]["userName"]) for e in own] == [("GetUser", upn)]
    assert lookup(acct, User="Alice") == []  # exact and case-sensitive, as ActionTrail
    assert [e["eventName"] for e in lookup(acct, PrincipalId=story.user_id)] == ["GetUser"]
    assert {e["eventName"] for e in lookup(acct, ServiceName="Ram")} == {"CreatePolicy", "AttachPolicyToUser"}
    sensitive = {e["eventName"] for e in lookup(acct, SensitiveAction="true")}
    assert {"CreateAccessKey", "DeleteAccessKey", "AttachPolicyToUser", "BindMFADevice", "CreateLoginProfile"} <= (
        sensitive
    )
    assert not sensitive & {"CreateUser", "UpdateUser", "CreateGroup", "GetUser", "LookupEvents"}
    assert "CreateUser" in {e["eventName"] for e in lookup(acct, SensitiveAction="false")}
    assert {e["eventType"] for e in lookup(acct, EventType="ApiCall")} == {"ApiCall"}
    assert lookup(acct, EventType="ConsoleSignin") == []
    assert lookup(acct, RoleName="AliyunServiceRoleForActionTrail") == []
    # Allowed pairs (and more, ANDed).
    assert [e["eventName"] for e in lookup(acct, ServiceName="Ram", SensitiveAction="true")] == [
        "AttachPolicyToUser",
        "CreatePolicy",
    ]
    assert [e["eventName"] for e in lookup(acct, ResourceName=upn, EventName="BindMFADevice")] == ["BindMFADevice"]
    assert [e["eventName"] for e in lookup(acct, ResourceName=upn, User="alice")] == ["GetUser"]
    assert len(lookup(acct, EventType="ApiCall", EventName="Create*", ResourceName=upn)) == 4
    with pytest.raises(TeaException) as bad:
        lookup(acct, SensitiveAction="yes")
    assert bad.value.code == "InvalidParameter.LookupAttribute.Value"


def test_end_before_start_is_actiontrails_error(acct: Account) -> None:
    with pytest.raises(TeaException) as err:
        acct.trail().lookup_events(
            am.LookupEventsRequest(start_time="2026-01-02T00:00:00Z", end_time="2026-01-01T00:00:00Z")
        )
    assert err.value.code == "InvalidParameterCombination"


def _attributes(change: dict) -> dict[str, dict]:
    return {a["attribute"]: a for a in change["attributes"]}


def test_what_changed_old_and_new_values(story: Story) -> None:
    acct, upn = story.acct, story.upn
    trail = acct.trail()
    catalogue = json.loads(
        trail.describe_resource_life_cycle_events(
            am.DescribeResourceLifeCycleEventsRequest(service_name="Ims", resource_type="ACS::RAM::User")
        ).body.data
    )
    assert [s["value"] for s in catalogue] == ["Ims"]
    (user_type,) = catalogue[0]["children"]
    by_label = {c["label"]: c["value"].split(",") for c in user_type["children"]}
    assert "CreateUser" in by_label["Create Events"] and "DeleteUser" in by_label["Delete Events"]
    assert "AddUserToGroup" in by_label["Update Events"]
    changes = json.loads(
        acct.call(
            "DescribeResourceLifeCycleEvents",
            {"ResourceType": "ACS::RAM::User", "ResourceName": upn},
            version="2020-07-06",
        )["Data"]
    )
    names = [c["eventName"] for c in changes]
    assert names[:2] == ["CreateUser", "UpdateUser"]  # oldest first
    assert set(SCENARIO) <= set(names)
    by_event = {c["eventName"]: c for c in changes}
    assert by_event["CreateUser"]["change"] == "Create" and by_event["CreateUser"]["userName"] == "root"
    assert _attributes(by_event["UpdateUser"])["DisplayName"] | {"attribute": ""} == {
        "attribute": "",
        "old": "Alice",
        "new": "Alice Liddell",
    }
    assert _attributes(by_event["AddUserToGroup"])["Groups"]["new"] == ["wonderland"]
    assert _attributes(by_event["RemoveUserFromGroup"])["Groups"] == {
        "attribute": "Groups",
        "old": ["wonderland"],
        "new": [],
    }
    assert _attributes(by_event["AttachPolicyToUser"])["Policies"]["new"] == ["Custom:ReadIms"]
    assert _attributes(by_event["BindMFADevice"])["MFADevice"]["old"] == ""
    password = _attributes(by_event["CreateLoginProfile"])["Password"]
    assert password == {"attribute": "Password", "changed": True}
    keys = [c for c in changes if c["eventName"] in ("CreateAccessKey", "DeleteAccessKey")]
    assert [_attributes(c)["AccessKeys"]["new"] for c in keys][1] == []
    # The same changes in the events themselves, per resource (the group's side of the membership too).
    added = lookup(acct, ResourceName=upn, EventName="AddUserToGroup")[0]
    sides = {c["resourceType"]: c for c in added["additionalEventData"]["resourceChanges"]}
    assert _attributes(sides["ACS::RAM::Group"])["Members"]["new"] == [upn]
    created = lookup(acct, EventName="CreateAccessKey", ResourceName=story.key_id)[0]
    key_change = {c["resourceType"]: c for c in created["additionalEventData"]["resourceChanges"]}
    assert key_change["ACS::RAM::AccessKey"]["change"] == "Create"
    assert _attributes(key_change["ACS::RAM::AccessKey"])["Status"]["new"] == "Active"

    # The operator's CLI shows the same history, by the user's short name too.
    server = acct.server
    shown = openims(
        "--data-dir", str(server.data_dir), "events", "history", "user", "alice", "--account", acct.account_id,
        env=server.env,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "Alice Liddell" in shown.stdout and "UpdateUser" in shown.stdout and "(changed)" in shown.stdout
    as_json = openims(
        "--data-dir", str(server.data_dir), "events", "history", "user", upn, "--account", acct.account_id, "--json",
        env=server.env,
    )  # fmt: skip
    assert [json.loads(line)["eventName"] for line in as_json.stdout.splitlines()] == names


def test_no_secret_in_responses_events_or_database(story: Story) -> None:
    acct = story.acct
    answers = (
        json.dumps(lookup(acct))
        + acct.call(
            "DescribeResourceLifeCycleEvents",
            {"ResourceType": "ACS::RAM::User", "ResourceName": story.upn},
            version="2020-07-06",
        )["Data"]
    )
    assert story.upn in answers
    raw = _raw_database_text(acct.server)
    for secret in story.secrets:
        assert secret not in answers, secret
        assert secret.encode() not in raw, secret
