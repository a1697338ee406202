"""The RAM policy API through the official RAM SDK: custom policies and versions, system policies,
attachments, their limits and errors, and their events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from alibabacloud_ims20190815 import models as m
from alibabacloud_ram20150501 import models as rm
from Tea.exceptions import TeaException

from tests.support import Account

SYSTEM_NAMES = {
    "AdministratorAccess",
    "AliyunRAMFullAccess",
    "AliyunRAMReadOnlyAccess",
    "AliyunActionTrailFullAccess",
    "AliyunActionTrailReadOnlyAccess",
}


def document(action: Any = "ram:Get*", resource: Any = "*", effect: str = "Allow") -> str:
    return json.dumps({"Version": "1", "Statement": [{"Effect": effect, "Action": action, "Resource": resource}]})


def fails(call, code: str, status: int) -> TeaException:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    assert (info.value.code, info.value.statusCode) == (code, status), info.value.message
    return info.value


def create(acct: Account, name: str, doc: str | None = None, **extra: Any) -> Any:
    return (
        acct.ram()
        .create_policy(rm.CreatePolicyRequest(policy_name=name, policy_document=doc or document(), **extra))
        .body
    )


def test_custom_policy_lifecycle_is_audited(acct: Account) -> None:
    ram = acct.ram()
    v1 = document("ram:Get*")
    created = create(
        acct, "Readers", v1, description="read RAM", tag=[rm.CreatePolicyRequestTag(key="team", value="sec & ops")]
    )
    assert (
        created.policy.policy_name,
        created.policy.policy_type,
        created.policy.default_version,
        created.policy.description,
    ) == ("Readers", "Custom", "v1", "read RAM")
    assert created.policy.create_date.endswith("Z")

    got = ram.get_policy(rm.GetPolicyRequest(policy_name="Readers", policy_type="Custom")).body
    assert (got.policy.attachment_count, got.policy.default_version, got.policy.policy_document) == (0, "v1", v1)
    assert (
        got.default_policy_version.version_id,
        got.default_policy_version.is_default_version,
        got.default_policy_version.policy_document,
    ) == ("v1", True, v1)

    v2 = document(["ram:Get*", "ram:List*"])
    added = ram.create_policy_version(
        rm.CreatePolicyVersionRequest(policy_name="Readers", policy_document=v2, set_as_default=True)
    ).body.policy_version
    assert (added.version_id, added.is_default_version, added.policy_document) == ("v2", True, v2)
    v3 = ram.create_policy_version(
        rm.CreatePolicyVersionRequest(policy_name="Readers", policy_document=v1)
    ).body.policy_version
    assert (v3.version_id, v3.is_default_version) == ("v3", False)
    assert ram.get_policy(rm.GetPolicyRequest(policy_name="Readers")).body.policy.default_version == "v2"
    listed = ram.list_policy_versions(rm.ListPolicyVersionsRequest(policy_name="Readers", policy_type="Custom")).body
    assert [(v.version_id, v.is_default_version) for v in listed.policy_versions.policy_version] == [
        ("v3", False),
        ("v2", True),
        ("v1", False),
    ]
    one = ram.get_policy_version(
        rm.GetPolicyVersionRequest(policy_name="Readers", policy_type="Custom", version_id="v1")
    ).body
    assert one.policy_version.policy_document == v1 and one.policy_version.is_default_version is False

    ram.set_default_policy_version(rm.SetDefaultPolicyVersionRequest(policy_name="Readers", version_id="v1"))
    assert ram.get_policy(rm.GetPolicyRequest(policy_name="Readers")).body.default_policy_version.policy_document == v1
    ram.delete_policy_version(rm.DeletePolicyVersionRequest(policy_name="Readers", version_id="v2"))
    ram.delete_policy_version(rm.DeletePolicyVersionRequest(policy_name="Readers", version_id="v3"))
    # Version IDs are never reused: the next one is v4.
    assert (
        ram.create_policy_version(
            rm.CreatePolicyVersionRequest(policy_name="Readers", policy_document=v2)
        ).body.policy_version.version_id
        == "v4"
    )
    ram.delete_policy_version(rm.DeletePolicyVersionRequest(policy_name="Readers", version_id="v4"))
    deleted = ram.delete_policy(rm.DeletePolicyRequest(policy_name="Readers")).body
    fails(lambda: ram.get_policy(rm.GetPolicyRequest(policy_name="Readers")), "EntityNotExist.Policy", 404)

    event = acct.event_for(created.request_id)
    assert (event["eventName"], event["eventRW"], event["serviceName"], event["eventSource"], event["apiVersion"]) == (
        "CreatePolicy",
        "Write",
        "Ram",
        "ram.aliyuncs.com",
        "2015-05-01",
    )
    assert (event["resourceType"], event["resourceName"]) == ("ACS::RAM::Policy", "Readers")
    assert event["requestParameters"]["PolicyDocument"] == v1 and acct.secret not in json.dumps(event)
    assert acct.event_for(deleted.request_id)["eventName"] == "DeletePolicy"
    names = [e["eventName"] for e in acct.events(ResourceName="Readers")]
    for name in (
        "CreatePolicyVersion",
        "SetDefaultPolicyVersion",
        "DeletePolicyVersion",
        "GetPolicy",
        "ListPolicyVersions",
        "GetPolicyVersion",
    ):
        assert name in names
    reads = acct.events(EventName="GetPolicyVersion")
    assert reads[0]["eventRW"] == "Read" and reads[0]["resourceType"] == "ACS::RAM::Policy"


def test_list_policies_has_system_policies_pages_and_filters(acct: Account) -> None:
    ram = acct.ram()
    for name in ("Alpha", "beta", "Gamma"):
        create(
            acct, name, tag=[rm.CreatePolicyRequestTag(key="owner", value=name.lower())] if name != "Gamma" else None
        )
    everything = ram.list_policies(rm.ListPoliciesRequest()).body
    names = [(p.policy_name, p.policy_type) for p in everything.policies.policy]
    assert names[:5] == sorted(((n, "System") for n in SYSTEM_NAMES), key=lambda x: x[0].lower())
    assert names[5:] == [("Alpha", "Custom"), ("beta", "Custom"), ("Gamma", "Custom")]
    assert everything.is_truncated is False
    alpha = everything.policies.policy[5]
    assert (
        alpha.tags.tag[0].tag_key == "owner" and alpha.tags.tag[0].tag_value == "alpha" and alpha.attachment_count == 0
    )

    seen, marker = [], None
    while True:
        page = ram.list_policies(rm.ListPoliciesRequest(max_items=3, marker=marker)).body
        seen += [p.policy_name for p in page.policies.policy]
        if not page.is_truncated:
            break
        marker = page.marker
    assert seen == [n for n, _ in names]
    custom = ram.list_policies(rm.ListPoliciesRequest(policy_type="Custom")).body.policies.policy
    assert [p.policy_name for p in custom] == ["Alpha", "beta", "Gamma"]
    system = ram.list_policies(rm.ListPoliciesRequest(policy_type="System")).body.policies.policy
    assert {p.policy_name for p in system} == SYSTEM_NAMES
    tagged = ram.list_policies(
        rm.ListPoliciesRequest(tag=[rm.ListPoliciesRequestTag(key="owner", value="beta")])
    ).body.policies.policy
    assert [p.policy_name for p in tagged] == ["beta"]
    fails(lambda: ram.list_policies(rm.ListPoliciesRequest(policy_type="Other")), "InvalidParameter.PolicyType", 400)
    fails(lambda: ram.list_policies(rm.ListPoliciesRequest(max_items=1001)), "InvalidParameter.MaxItems", 400)
    fails(lambda: ram.list_policies(rm.ListPoliciesRequest(marker="%%%")), "InvalidParameter.Marker", 400)
    assert acct.ims().get_account_summary().body.summary_map.policies == 3


def test_system_policies_are_readable_and_immutable(acct: Account) -> None:
    ram = acct.ram()
    admin = ram.get_policy(rm.GetPolicyRequest(policy_name="AdministratorAccess", policy_type="System")).body
    assert admin.policy.policy_type == "System" and admin.policy.default_version == "v1"
    assert json.loads(admin.default_policy_version.policy_document)["Statement"] == [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}
    ]
    read = ram.get_policy_version(
        rm.GetPolicyVersionRequest(policy_name="AliyunRAMReadOnlyAccess", policy_type="System", version_id="v1")
    ).body
    assert json.loads(read.policy_version.policy_document)["Statement"][0]["Action"] == ["ram:Get*", "ram:List*"]
    trail = ram.list_policy_versions(
        rm.ListPolicyVersionsRequest(policy_name="AliyunActionTrailReadOnlyAccess", policy_type="System")
    ).body
    assert json.loads(trail.policy_versions.policy_version[0].policy_document)["Statement"][0]["Action"] == [
        "actiontrail:Get*",
        "actiontrail:Describe*",
        "actiontrail:LookupEvents",
    ]

    fails(
        lambda: ram.delete_policy(rm.DeletePolicyRequest(policy_name="AdministratorAccess")),
        "Forbidden.SystemPolicy",
        403,
    )
    fails(
        lambda: ram.create_policy_version(
            rm.CreatePolicyVersionRequest(policy_name="AliyunRAMFullAccess", policy_document=document())
        ),
        "Forbidden.SystemPolicy",
        403,
    )
    fails(
        lambda: ram.set_default_policy_version(
            rm.SetDefaultPolicyVersionRequest(policy_name="AliyunRAMFullAccess", version_id="v1")
        ),
        "Forbidden.SystemPolicy",
        403,
    )
    fails(lambda: create(acct, "administratoraccess"), "EntityAlreadyExists.Policy", 409)
    fails(
        lambda: ram.get_policy(rm.GetPolicyRequest(policy_name="AdministratorAccess", policy_type="Custom")),
        "EntityNotExist.Policy",
        404,
    )
    fails(
        lambda: ram.get_policy_version(
            rm.GetPolicyVersionRequest(policy_name="AdministratorAccess", policy_type="System", version_id="v2")
        ),
        "EntityNotExist.Policy.Version",
        404,
    )
    failed = acct.events(ErrorCode="Forbidden.SystemPolicy")
    assert {e["eventName"] for e in failed} == {"DeletePolicy", "CreatePolicyVersion", "SetDefaultPolicyVersion"}


def test_policy_validation_and_limits(acct: Account) -> None:
    ram = acct.ram()
    fails(lambda: ram.create_policy(rm.CreatePolicyRequest(policy_document=document())), "MissingParameter", 400)
    fails(lambda: ram.create_policy(rm.CreatePolicyRequest(policy_name="P1")), "MissingParameter", 400)
    fails(lambda: create(acct, "bad_name"), "InvalidParameter.PolicyName.InvalidChars", 400)
    fails(lambda: create(acct, "x" * 129), "InvalidParameter.PolicyName.Length", 400)
    fails(lambda: create(acct, "P1", description="d" * 1025), "InvalidParameter.Description.Length", 400)
    err = fails(lambda: create(acct, "P1", document("ram:Create User")), "MalformedPolicyDocument", 400)
    assert 'Statement[0].Action[0] "ram:Create User"' in err.message
    err = fails(
        lambda: create(
            acct, "P1", '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "ram:*", "Resource": "*",'
        ),
        "MalformedPolicyDocument",
        400,
    )
    assert "line 1" in err.message
    big = document("ram:GetUser", [f"acs:ram:*:*:user/u{i:04d}" for i in range(300)])
    err = fails(lambda: create(acct, "P1", big), "LimitExceeded.Policy.Size", 409)
    assert "6144" in err.message
    create(acct, "P1")
    fails(lambda: create(acct, "p1"), "EntityAlreadyExists.Policy", 409)
    assert {e["errorCode"] for e in acct.events(EventName="CreatePolicy") if "errorCode" in e} >= {
        "MalformedPolicyDocument",
        "LimitExceeded.Policy.Size",
        "EntityAlreadyExists.Policy",
        "MissingParameter",
    }

    for _ in range(4):
        ram.create_policy_version(rm.CreatePolicyVersionRequest(policy_name="P1", policy_document=document()))
    fails(
        lambda: ram.create_policy_version(rm.CreatePolicyVersionRequest(policy_name="P1", policy_document=document())),
        "LimitExceeded.Policy.Version",
        409,
    )
    fails(
        lambda: ram.create_policy_version(rm.CreatePolicyVersionRequest(policy_name="P1", policy_document="{}")),
        "MalformedPolicyDocument",
        400,
    )
    fails(
        lambda: ram.create_policy_version(
            rm.CreatePolicyVersionRequest(policy_name="P1", policy_document=document(), rotate_strategy="Sometimes")
        ),
        "InvalidParameter.RotateStrategy",
        400,
    )
    rotated = ram.create_policy_version(
        rm.CreatePolicyVersionRequest(
            policy_name="P1",
            policy_document=document(),
            rotate_strategy="DeleteOldestNonDefaultVersionWhenLimitExceeded",
        )
    ).body
    assert rotated.policy_version.version_id == "v6"
    versions = ram.list_policy_versions(
        rm.ListPolicyVersionsRequest(policy_name="P1")
    ).body.policy_versions.policy_version
    # The default v1 stays; the oldest non-default (v2) made room.
    assert [v.version_id for v in versions] == ["v6", "v5", "v4", "v3", "v1"]

    fails(
        lambda: ram.delete_policy_version(rm.DeletePolicyVersionRequest(policy_name="P1", version_id="v1")),
        "DeleteConflict.Policy.DefaultVersion",
        409,
    )
    fails(
        lambda: ram.delete_policy_version(rm.DeletePolicyVersionRequest(policy_name="P1", version_id="v2")),
        "EntityNotExist.Policy.Version",
        404,
    )
    fails(
        lambda: ram.set_default_policy_version(rm.SetDefaultPolicyVersionRequest(policy_name="P1", version_id="v9")),
        "EntityNotExist.Policy.Version",
        404,
    )
    fails(
        lambda: ram.set_default_policy_version(rm.SetDefaultPolicyVersionRequest(policy_name="P1", version_id="1")),
        "InvalidParameter.VersionId.InvalidChars",
        400,
    )
    fails(lambda: ram.delete_policy(rm.DeletePolicyRequest(policy_name="P1")), "DeleteConflict.Policy.Version", 409)
    ram.delete_policy(rm.DeletePolicyRequest(policy_name="P1", cascading_delete=True))
    fails(
        lambda: ram.list_policy_versions(rm.ListPolicyVersionsRequest(policy_name="P1")), "EntityNotExist.Policy", 404
    )
    fails(lambda: ram.delete_policy(rm.DeletePolicyRequest(policy_name="P1")), "EntityNotExist.Policy", 404)


def test_attachments_to_users_and_groups(acct: Account) -> None:
    ram, ims = acct.ram(), acct.ims()
    upn = acct.upn("dev-1")
    user_id = ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="Dev One")).body.user.user_id
    ims.create_group(m.CreateGroupRequest(group_name="devs", comments="developers"))
    create(acct, "Custom1", description="first")

    attached = ram.attach_policy_to_user(
        rm.AttachPolicyToUserRequest(policy_name="AliyunRAMReadOnlyAccess", policy_type="System", user_name="dev-1")
    ).body
    ram.attach_policy_to_user(rm.AttachPolicyToUserRequest(policy_name="Custom1", policy_type="Custom", user_name=upn))
    ram.attach_policy_to_group(
        rm.AttachPolicyToGroupRequest(policy_name="Custom1", policy_type="Custom", group_name="devs")
    )
    fails(
        lambda: ram.attach_policy_to_user(
            rm.AttachPolicyToUserRequest(policy_name="Custom1", policy_type="Custom", user_name="DEV-1")
        ),
        "EntityAlreadyExists.User.Policy",
        409,
    )
    fails(
        lambda: ram.attach_policy_to_group(rm.AttachPolicyToGroupRequest(policy_name="custom1", group_name="devs")),
        "EntityAlreadyExists.Group.Policy",
        409,
    )

    mine = ram.list_policies_for_user(rm.ListPoliciesForUserRequest(user_name="dev-1")).body.policies.policy
    assert [(p.policy_name, p.policy_type, p.default_version) for p in mine] == [
        ("AliyunRAMReadOnlyAccess", "System", "v1"),
        ("Custom1", "Custom", "v1"),
    ]
    assert mine[1].description == "first" and mine[0].attach_date.endswith("Z")
    theirs = ram.list_policies_for_group(rm.ListPoliciesForGroupRequest(group_name="devs")).body.policies.policy
    assert [p.policy_name for p in theirs] == ["Custom1"]
    entities = ram.list_entities_for_policy(
        rm.ListEntitiesForPolicyRequest(policy_name="Custom1", policy_type="Custom")
    ).body
    assert [(u.user_id, u.user_name, u.display_name) for u in entities.users.user] == [(user_id, "dev-1", "Dev One")]
    assert [(g.group_name, g.comments) for g in entities.groups.group] == [("devs", "developers")]
    assert entities.roles.role == []
    assert ram.get_policy(rm.GetPolicyRequest(policy_name="Custom1")).body.policy.attachment_count == 2
    system = {
        p.policy_name: p.attachment_count
        for p in ram.list_policies(rm.ListPoliciesRequest(policy_type="System")).body.policies.policy
    }
    assert system["AliyunRAMReadOnlyAccess"] == 1 and system["AdministratorAccess"] == 0

    fails(lambda: ram.delete_policy(rm.DeletePolicyRequest(policy_name="Custom1")), "DeleteConflict.Policy.User", 409)
    ram.detach_policy_from_user(
        rm.DetachPolicyFromUserRequest(policy_name="Custom1", policy_type="Custom", user_name="dev-1")
    )
    fails(lambda: ram.delete_policy(rm.DeletePolicyRequest(policy_name="Custom1")), "DeleteConflict.Policy.Group", 409)
    ram.detach_policy_from_group(
        rm.DetachPolicyFromGroupRequest(policy_name="Custom1", policy_type="Custom", group_name="devs")
    )
    fails(
        lambda: ram.detach_policy_from_user(
            rm.DetachPolicyFromUserRequest(policy_name="Custom1", policy_type="Custom", user_name="dev-1")
        ),
        "EntityNotExist.User.Policy",
        404,
    )
    fails(
        lambda: ram.detach_policy_from_group(rm.DetachPolicyFromGroupRequest(policy_name="Custom1", group_name="devs")),
        "EntityNotExist.Group.Policy",
        404,
    )
    ram.delete_policy(rm.DeletePolicyRequest(policy_name="Custom1"))

    fails(
        lambda: ram.attach_policy_to_user(
            rm.AttachPolicyToUserRequest(policy_name="Nope", policy_type="Custom", user_name="dev-1")
        ),
        "EntityNotExist.Policy",
        404,
    )
    fails(
        lambda: ram.attach_policy_to_user(
            rm.AttachPolicyToUserRequest(policy_name="AdministratorAccess", policy_type="System", user_name="ghost")
        ),
        "EntityNotExist.User",
        404,
    )
    fails(
        lambda: ram.attach_policy_to_group(
            rm.AttachPolicyToGroupRequest(policy_name="AdministratorAccess", policy_type="System", group_name="ghosts")
        ),
        "EntityNotExist.Group",
        404,
    )
    fails(
        lambda: ram.attach_policy_to_user(
            rm.AttachPolicyToUserRequest(policy_name="AdministratorAccess", policy_type="Both", user_name="dev-1")
        ),
        "InvalidParameter.PolicyType",
        400,
    )
    fails(
        lambda: ram.attach_policy_to_user(
            rm.AttachPolicyToUserRequest(policy_name="AdministratorAccess", user_name="dev 1")
        ),
        "InvalidParameter.UserName.InvalidChars",
        400,
    )
    fails(
        lambda: ram.attach_policy_to_user(rm.AttachPolicyToUserRequest(policy_name="AdministratorAccess")),
        "MissingParameter",
        400,
    )
    fails(
        lambda: ram.attach_policy_to_user(
            rm.AttachPolicyToUserRequest(
                policy_name="AdministratorAccess", policy_type="System", user_name="dev-1", resource_group_id="rg-123"
            )
        ),
        "InvalidParameter.ResourceGroupId",
        400,
    )
    fails(
        lambda: ram.list_policies_for_user(rm.ListPoliciesForUserRequest(user_name="ghost")), "EntityNotExist.User", 404
    )

    event = acct.event_for(attached.request_id)
    assert (event["eventName"], event["eventRW"], event["resourceType"], event["resourceName"]) == (
        "AttachPolicyToUser",
        "Write",
        "ACS::RAM::Policy;ACS::RAM::User",
        f"AliyunRAMReadOnlyAccess;{upn}",  # the RAM UserName as the user's UserPrincipalName
    )
    assert event["referencedResources"]["ACS::RAM::User"] == [upn]
    assert event["requestParameters"] == {
        "PolicyName": "AliyunRAMReadOnlyAccess",
        "PolicyType": "System",
        "UserName": "dev-1",
    }


def test_attachment_quotas(acct: Account) -> None:
    ram, ims = acct.ram(), acct.ims()
    ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn("many"), display_name="m"))
    ims.create_group(m.CreateGroupRequest(group_name="crowd"))
    # System and custom policies count separately (RAM: 20 system and 5 custom per user or group).
    for name in sorted(SYSTEM_NAMES):
        ram.attach_policy_to_user(
            rm.AttachPolicyToUserRequest(policy_name=name, policy_type="System", user_name="many")
        )
        ram.attach_policy_to_group(
            rm.AttachPolicyToGroupRequest(policy_name=name, policy_type="System", group_name="crowd")
        )
    for n in range(5):
        create(acct, f"Own{n}")
        ram.attach_policy_to_user(
            rm.AttachPolicyToUserRequest(policy_name=f"Own{n}", policy_type="Custom", user_name="many")
        )
        ram.attach_policy_to_group(
            rm.AttachPolicyToGroupRequest(policy_name=f"Own{n}", policy_type="Custom", group_name="crowd")
        )
    create(acct, "Sixth")
    fails(
        lambda: ram.attach_policy_to_user(
            rm.AttachPolicyToUserRequest(policy_name="Sixth", policy_type="Custom", user_name="many")
        ),
        "LimitExceeded.User.Policy",
        409,
    )
    fails(
        lambda: ram.attach_policy_to_group(
            rm.AttachPolicyToGroupRequest(policy_name="Sixth", policy_type="Custom", group_name="crowd")
        ),
        "LimitExceeded.Group.Policy",
        409,
    )
    summary = ims.get_account_summary().body.summary_map
    assert (summary.attached_policies_per_user_quota, summary.attached_system_policies_per_user_quota) == (5, 20)
    assert (summary.attached_policies_per_group_quota, summary.attached_system_policies_per_group_quota) == (5, 20)


def test_deleted_users_drop_out_of_attachments_and_groups_must_be_detached_first(acct: Account) -> None:
    ram, ims = acct.ram(), acct.ims()
    upn = acct.upn("leaver")
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="l"))
    ims.create_group(m.CreateGroupRequest(group_name="temp"))
    create(acct, "Shared")
    ram.attach_policy_to_user(
        rm.AttachPolicyToUserRequest(policy_name="Shared", policy_type="Custom", user_name="leaver")
    )
    ram.attach_policy_to_group(
        rm.AttachPolicyToGroupRequest(policy_name="Shared", policy_type="Custom", group_name="temp")
    )
    ims.delete_user(m.DeleteUserRequest(user_principal_name=upn))
    # As RAM documents: a group with policies attached cannot be deleted, and nothing changes.
    fails(lambda: ims.delete_group(m.DeleteGroupRequest(group_name="temp")), "DeleteConflict.Group.Policy", 409)
    assert ims.get_group(m.GetGroupRequest(group_name="temp")).body.group.group_name == "temp"
    ram.detach_policy_from_group(
        rm.DetachPolicyFromGroupRequest(policy_name="Shared", policy_type="Custom", group_name="temp")
    )
    ims.delete_group(m.DeleteGroupRequest(group_name="temp"))
    entities = ram.list_entities_for_policy(
        rm.ListEntitiesForPolicyRequest(policy_name="Shared", policy_type="Custom")
    ).body
    assert entities.users.user == [] and entities.groups.group == []
    assert ram.get_policy(rm.GetPolicyRequest(policy_name="Shared")).body.policy.attachment_count == 0
    ram.delete_policy(rm.DeletePolicyRequest(policy_name="Shared"))


def test_decode_diagnostic_message_rejects_foreign_messages(acct: Account) -> None:
    ram = acct.ram()
    for bad in ("not base64!", "QUJD", "A" * 64):
        fails(
            lambda b=bad: ram.decode_diagnostic_message(
                rm.DecodeDiagnosticMessageRequest(encoded_diagnostic_message=b)
            ),
            "InvalidParameter.EncodedDiagnosticMessage",
            400,
        )
    fails(lambda: ram.decode_diagnostic_message(rm.DecodeDiagnosticMessageRequest()), "MissingParameter", 400)


def test_quotas_hold_under_concurrent_calls(acct: Account) -> None:
    from concurrent.futures import ThreadPoolExecutor

    ram, ims = acct.ram(), acct.ims()
    ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn("busy"), display_name="b"))
    names = [f"Con{i}" for i in range(8)]
    for name in names:
        create(acct, name)

    def attach(name: str) -> str:
        try:
            acct.ram().attach_policy_to_user(
                rm.AttachPolicyToUserRequest(policy_name=name, policy_type="Custom", user_name="busy")
            )
            return "ok"
        except TeaException as err:
            return err.code

    def add_version(_: int) -> str:
        try:
            acct.ram().create_policy_version(
                rm.CreatePolicyVersionRequest(policy_name="Con0", policy_document=document())
            )
            return "ok"
        except TeaException as err:
            return err.code

    with ThreadPoolExecutor(8) as pool:
        attached = list(pool.map(attach, names))
        versions = list(pool.map(add_version, range(8)))
    assert sorted(attached) == ["LimitExceeded.User.Policy"] * 3 + ["ok"] * 5
    assert sorted(versions) == ["LimitExceeded.Policy.Version"] * 4 + ["ok"] * 4
    listed = ram.list_policy_versions(
        rm.ListPolicyVersionsRequest(policy_name="Con0")
    ).body.policy_versions.policy_version
    assert [v.version_id for v in listed] == ["v5", "v4", "v3", "v2", "v1"]
    assert len(ram.list_policies_for_user(rm.ListPoliciesForUserRequest(user_name="busy")).body.policies.policy) == 5
