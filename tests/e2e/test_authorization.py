"""RAM policies decide every IMS, ActionTrail and RAM call of a RAM user: system and custom policies,
user and group attachments, explicit deny, conditions, denial details, and changes seen at once by every
server process on the database."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from alibabacloud_actiontrail20200706 import models as at
from alibabacloud_ims20190815 import models as m
from alibabacloud_ram20150501 import models as rm
from Tea.exceptions import TeaException

from tests.support import Account, Server


class Caller:
    """A RAM user with an AccessKey, and SDK clients signed by it."""

    def __init__(self, acct: Account, name: str) -> None:
        self.acct = acct
        self.name = name
        self.upn = acct.upn(name)
        ims = acct.ims()
        self.user_id = ims.create_user(
            m.CreateUserRequest(user_principal_name=self.upn, display_name=name)
        ).body.user.user_id
        key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=self.upn)).body.access_key
        self.key_id, self.secret = key.access_key_id, key.access_key_secret

    def ims(self, acct: Account | None = None) -> Any:
        return (acct or self.acct).ims(self.key_id, self.secret)

    def ram(self, acct: Account | None = None) -> Any:
        return (acct or self.acct).ram(self.key_id, self.secret)

    def trail(self) -> Any:
        return self.acct.trail(self.key_id, self.secret)

    def attach(self, policy: str, policy_type: str = "System") -> None:
        self.acct.ram().attach_policy_to_user(
            rm.AttachPolicyToUserRequest(policy_name=policy, policy_type=policy_type, user_name=self.name)
        )

    def detach(self, policy: str, policy_type: str = "System") -> None:
        self.acct.ram().detach_policy_from_user(
            rm.DetachPolicyFromUserRequest(policy_name=policy, policy_type=policy_type, user_name=self.name)
        )

    def call(
        self, action: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """An IMS call through the SDK runtime, with extra HTTP headers."""
        return self.acct.call(action, params, key_id=self.key_id, secret=self.secret, headers=headers)


def policy(acct: Account, name: str, *statements: dict[str, Any]) -> str:
    text = json.dumps({"Version": "1", "Statement": list(statements)})
    acct.ram().create_policy(rm.CreatePolicyRequest(policy_name=name, policy_document=text))
    return text


def statement(effect: str, action: Any, resource: Any = "*", **condition: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"Effect": effect, "Action": action, "Resource": resource}
    if condition:
        out["Condition"] = condition
    return out


def denied(call, kind: str = "ImplicitDeny") -> TeaException:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    err = info.value
    assert (err.code, err.statusCode) == ("NoPermission", 403), err.message
    assert err.data["AccessDeniedDetail"]["NoPermissionType"] == kind
    return err


def new_user(acct: Account, name: str) -> str:
    upn = acct.upn(name)
    acct.ims().create_user(m.CreateUserRequest(user_principal_name=upn, display_name=name))
    return upn


def test_read_only_user_can_list_but_not_create(acct: Account) -> None:
    other = new_user(acct, "someone")
    auditor = Caller(acct, "auditor")
    auditor.attach("AliyunRAMReadOnlyAccess")
    ims, ram = auditor.ims(), auditor.ram()
    assert {u.user_principal_name for u in ims.list_users(m.ListUsersRequest()).body.users.user} == {other, auditor.upn}
    assert ims.get_user(m.GetUserRequest(user_principal_name=other)).body.user.user_principal_name == other
    assert ims.list_groups(m.ListGroupsRequest()).body.groups.group == []
    assert ims.get_account_summary().body.summary_map.users == 2
    assert any(
        p.policy_name == "AliyunRAMReadOnlyAccess"
        for p in ram.list_policies(rm.ListPoliciesRequest()).body.policies.policy
    )
    assert (
        ram.list_policies_for_user(rm.ListPoliciesForUserRequest(user_name="auditor"))
        .body.policies.policy[0]
        .policy_name
        == "AliyunRAMReadOnlyAccess"
    )

    err = denied(lambda: ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn("new"), display_name="n")))
    detail = err.data["AccessDeniedDetail"]
    assert detail["AuthAction"] == "ram:CreateUser" and detail["AuthPrincipalType"] == "SubUser"
    assert detail["AuthPrincipalOwnerId"] == acct.account_id and detail["AuthPrincipalDisplayName"] == auditor.user_id
    assert detail["PolicyType"] == "AccountLevelIdentityBasedPolicy" and detail["EncodedDiagnosticMessage"]
    denied(
        lambda: ram.create_policy(
            rm.CreatePolicyRequest(
                policy_name="Mine", policy_document=json.dumps({"Version": "1", "Statement": [statement("Allow", "*")]})
            )
        )
    )
    denied(
        lambda: ram.attach_policy_to_user(
            rm.AttachPolicyToUserRequest(policy_name="AdministratorAccess", policy_type="System", user_name="auditor")
        )
    )
    denied(lambda: auditor.trail().lookup_events(at.LookupEventsRequest()))
    events = acct.events(ErrorCode="NoPermission")
    assert {e["eventName"] for e in events} == {"CreateUser", "CreatePolicy", "AttachPolicyToUser", "LookupEvents"}
    assert all(e["userIdentity"]["userName"] == auditor.upn and e["userIdentity"]["type"] == "ram-user" for e in events)
    assert acct.event_for(err.data["RequestId"])["errorMessage"] == err.data["Message"]


def test_custom_policy_scoped_to_user_names(acct: Account) -> None:
    dev1, ops1 = new_user(acct, "dev-1"), new_user(acct, "ops-1")
    ims_root = acct.ims()
    dev1_id = ims_root.get_user(m.GetUserRequest(user_principal_name=dev1)).body.user.user_id
    ops1_id = ims_root.get_user(m.GetUserRequest(user_principal_name=ops1)).body.user.user_id
    ops_key = ims_root.create_access_key(
        m.CreateAccessKeyRequest(user_principal_name=ops1)
    ).body.access_key.access_key_id
    policy(acct, "DevUsers", statement("Allow", "ram:*", "acs:ram:*:*:user/dev-*"))
    lead = Caller(acct, "lead")
    lead.attach("DevUsers", "Custom")
    ims = lead.ims()

    assert ims.get_user(m.GetUserRequest(user_principal_name=dev1)).body.user.user_id == dev1_id
    assert (
        ims.update_user(m.UpdateUserRequest(user_principal_name=dev1, new_display_name="Dev 1")).body.user.display_name
        == "Dev 1"
    )
    assert ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=dev1)).body.access_key.access_key_id
    assert ims.create_user(
        m.CreateUserRequest(user_principal_name=acct.upn("dev-2"), display_name="d")
    ).body.user.user_principal_name == acct.upn("dev-2")
    assert ims.get_user(m.GetUserRequest(user_id=dev1_id)).body.user.user_principal_name == dev1

    err = denied(lambda: ims.get_user(m.GetUserRequest(user_principal_name=ops1)))
    assert err.data["AccessDeniedDetail"]["AuthAction"] == "ram:GetUser"
    denied(lambda: ims.delete_user(m.DeleteUserRequest(user_principal_name=ops1)))
    denied(lambda: ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn("ops-2"), display_name="o")))
    denied(lambda: ims.list_users(m.ListUsersRequest()))
    # Naming the user by ID or by one of its AccessKeys is judged on that user, not on the caller.
    denied(lambda: ims.get_user(m.GetUserRequest(user_id=ops1_id)))
    denied(lambda: ims.get_user(m.GetUserRequest(user_access_key_id=ops_key)))
    # The caller's own self-service still works.
    assert ims.get_user(m.GetUserRequest()).body.user.user_principal_name == lead.upn
    assert ims.get_user(m.GetUserRequest(user_id=lead.user_id)).body.user.user_principal_name == lead.upn
    assert ims.get_user(m.GetUserRequest(user_access_key_id=lead.key_id)).body.user.user_principal_name == lead.upn
    assert ims_root.get_user(m.GetUserRequest(user_principal_name=ops1)).body.user.display_name == "ops-1"
    assert [e["resourceName"] for e in acct.events(EventName="DeleteUser")] == [ops1]


def test_explicit_deny_overrides_administrator_access_and_self_service(acct: Account) -> None:
    protected = new_user(acct, "protected-1")
    policy(
        acct,
        "Guardrails",
        statement("Deny", "ram:DeleteUser"),
        statement("Deny", "ram:*", "acs:ram:*:*:user/protected-*"),
    )
    admin = Caller(acct, "admin")
    admin.attach("AdministratorAccess")
    admin.attach("Guardrails", "Custom")
    ims = admin.ims()
    created = new_user(acct, "temp")
    assert (
        ims.update_user(m.UpdateUserRequest(user_principal_name=created, new_display_name="t")).body.user.display_name
        == "t"
    )
    assert (
        admin.ram().list_policies(rm.ListPoliciesRequest(policy_type="Custom")).body.policies.policy[0].policy_name
        == "Guardrails"
    )
    err = denied(lambda: ims.delete_user(m.DeleteUserRequest(user_principal_name=created)), "ExplicitDeny")
    assert err.data["AccessDeniedDetail"]["PolicyType"] == "AccountLevelIdentityBasedPolicy"
    denied(lambda: ims.get_user(m.GetUserRequest(user_principal_name=protected)), "ExplicitDeny")

    decoded = (
        acct.ram()
        .decode_diagnostic_message(
            rm.DecodeDiagnosticMessageRequest(
                encoded_diagnostic_message=err.data["AccessDeniedDetail"]["EncodedDiagnosticMessage"]
            )
        )
        .body.decoded_diagnostic_message
    )
    assert decoded.auth_action == "ram:DeleteUser" and decoded.explicit_deny is True
    assert decoded.auth_resource == f"acs:ram:*:{acct.account_id}:user/temp"
    assert decoded.auth_principal.auth_principal_display_name == admin.user_id
    assert decoded.auth_principal.auth_principal_owner_id == acct.account_id
    assert [
        (p.policy_identifier, p.policy_type, p.policy_version, p.attached_entity_type, p.effect)
        for p in decoded.matched_policies
    ] == [("Guardrails", "Custom", "v1", "User", "Deny")]
    assert {c.condition_key: c.condition_values for c in decoded.auth_conditions}["acs:SourceIp"] == ["127.0.0.1"]
    # Another account cannot read this account's diagnostic messages.
    with pytest.raises(TeaException) as info:
        acct.server.new_account().ram().decode_diagnostic_message(
            rm.DecodeDiagnosticMessageRequest(
                encoded_diagnostic_message=err.data["AccessDeniedDetail"]["EncodedDiagnosticMessage"]
            )
        )
    assert info.value.code == "InvalidParameter.EncodedDiagnosticMessage"

    # A Deny also overrides self-service (switched on by the security preferences): this user may still
    # list its keys, but not create one.
    acct.ims().set_security_preference(m.SetSecurityPreferenceRequest(allow_user_to_manage_access_keys=True))
    policy(acct, "NoNewKeys", statement("Deny", "ram:CreateAccessKey"))
    keeper = Caller(acct, "keeper")
    assert keeper.ims().create_access_key(m.CreateAccessKeyRequest()).body.access_key.access_key_id
    keeper.attach("NoNewKeys", "Custom")
    assert len(keeper.ims().list_access_keys(m.ListAccessKeysRequest()).body.access_keys.access_key) == 2
    denied(lambda: keeper.ims().create_access_key(m.CreateAccessKeyRequest()), "ExplicitDeny")


def test_source_ip_mfa_transport_and_time_conditions(acct: Account) -> None:
    ram = acct.ram()
    name = "Conditional"
    policy(acct, name, statement("Allow", "ram:ListUsers", IpAddress={"acs:SourceIp": ["127.0.0.1/32"]}))
    user = Caller(acct, "cond")
    user.attach(name, "Custom")
    ims = user.ims()
    assert ims.list_users(m.ListUsersRequest()).body.users.user

    def switch(*statements: dict[str, Any]) -> None:
        text = json.dumps({"Version": "1", "Statement": list(statements)})
        ram.create_policy_version(
            rm.CreatePolicyVersionRequest(
                policy_name=name,
                policy_document=text,
                set_as_default=True,
                rotate_strategy="DeleteOldestNonDefaultVersionWhenLimitExceeded",
            )
        )

    switch(statement("Allow", "ram:ListUsers", IpAddress={"acs:SourceIp": "10.0.0.0/8"}))
    denied(lambda: ims.list_users(m.ListUsersRequest()))
    switch(statement("Allow", "ram:ListUsers", NotIpAddress={"acs:SourceIp": "10.0.0.0/8"}))
    assert ims.list_users(m.ListUsersRequest()).body.users.user

    # An AccessKey call is never MFA-authenticated.
    switch(statement("Allow", "ram:ListUsers", Bool={"acs:MFAPresent": "true"}))
    denied(lambda: ims.list_users(m.ListUsersRequest()))
    switch(statement("Allow", "ram:*"), statement("Deny", "ram:*", Bool={"acs:MFAPresent": "false"}))
    denied(lambda: ims.list_users(m.ListUsersRequest()), "ExplicitDeny")

    switch(statement("Allow", "ram:ListUsers", Bool={"acs:SecureTransport": "true"}))
    denied(lambda: user.call("ListUsers"))
    denied(lambda: user.call("ListUsers", headers={"x-forwarded-proto": "https"}))  # no proxy is trusted by default
    with acct.server.sibling(OPENIMS_TRUSTED_PROXIES="127.0.0.1") as behind_proxy:
        proxied = Account(behind_proxy, acct.account_id, acct.alias, acct.key_id, acct.secret)
        assert proxied.call(
            "ListUsers", key_id=user.key_id, secret=user.secret, headers={"x-forwarded-proto": "https"}
        )["Users"]["User"]

    switch(statement("Allow", "ram:ListUsers", DateLessThan={"acs:CurrentTime": "2001-01-01T00:00:00+08:00"}))
    denied(lambda: ims.list_users(m.ListUsersRequest()))
    switch(
        statement(
            "Allow",
            "ram:ListUsers",
            DateGreaterThan={"acs:CurrentTime": "2001-01-01T00:00:00Z"},
            StringLike={"acs:SourceIp": "127.*"},
        )
    )
    assert ims.list_users(m.ListUsersRequest()).body.users.user


def test_group_policies_apply_to_members(acct: Account) -> None:
    ims, ram = acct.ims(), acct.ram()
    member, outsider = Caller(acct, "member"), Caller(acct, "outsider")
    ims.create_group(m.CreateGroupRequest(group_name="admins"))
    ram.attach_policy_to_group(
        rm.AttachPolicyToGroupRequest(policy_name="AliyunRAMFullAccess", policy_type="System", group_name="admins")
    )
    ims.add_user_to_group(m.AddUserToGroupRequest(group_name="admins", user_principal_name=member.upn))
    created = (
        member.ims().create_user(m.CreateUserRequest(user_principal_name=acct.upn("by-member"), display_name="b")).body
    )
    assert created.user.user_principal_name == acct.upn("by-member")
    denied(lambda: outsider.ims().list_users(m.ListUsersRequest()))
    # A Deny on the user itself beats the group's Allow.
    policy(acct, "NoGroupChanges", statement("Deny", "ram:*Group*"))
    member.attach("NoGroupChanges", "Custom")
    denied(lambda: member.ims().create_group(m.CreateGroupRequest(group_name="more")), "ExplicitDeny")
    member.detach("NoGroupChanges", "Custom")
    member.ims().create_group(m.CreateGroupRequest(group_name="more"))
    # Leaving the group takes the group's policies away from the next call.
    ims.remove_user_from_group(m.RemoveUserFromGroupRequest(group_name="admins", user_principal_name=member.upn))
    denied(lambda: member.ims().list_users(m.ListUsersRequest()))
    ims.add_user_to_group(m.AddUserToGroupRequest(group_name="more", user_principal_name=member.upn))
    ram.attach_policy_to_group(
        rm.AttachPolicyToGroupRequest(policy_name="AliyunRAMReadOnlyAccess", policy_type="System", group_name="more")
    )
    assert member.ims().list_users(m.ListUsersRequest()).body.users.user
    ram.detach_policy_from_group(
        rm.DetachPolicyFromGroupRequest(policy_name="AliyunRAMReadOnlyAccess", policy_type="System", group_name="more")
    )
    denied(lambda: member.ims().list_users(m.ListUsersRequest()))


def test_actiontrail_read_only_user_can_look_up_events(acct: Account) -> None:
    reader = Caller(acct, "reader")
    denied(lambda: reader.trail().lookup_events(at.LookupEventsRequest()))
    reader.attach("AliyunActionTrailReadOnlyAccess")
    found = reader.trail().lookup_events(at.LookupEventsRequest(max_results="50")).body.events
    assert any(e["eventName"] == "AttachPolicyToUser" for e in found)
    # ActionTrail access grants nothing in RAM.
    denied(lambda: reader.ims().list_users(m.ListUsersRequest()))


@pytest.fixture
def twin(server: Server) -> Iterator[Server]:
    with server.sibling() as other:
        yield other


def test_changes_take_effect_on_the_next_call_on_every_server(acct: Account, twin: Server) -> None:
    there = Account(twin, acct.account_id, acct.alias, acct.key_id, acct.secret)
    user = Caller(acct, "roamer")
    user.attach("AliyunRAMReadOnlyAccess")
    assert user.ims(there).list_users(m.ListUsersRequest()).body.users.user
    assert user.ims().list_users(m.ListUsersRequest()).body.users.user
    # Detached through this server: the other server's very next call is denied.
    user.detach("AliyunRAMReadOnlyAccess")
    denied(lambda: user.ims(there).list_users(m.ListUsersRequest()))
    # Attached through the other server: this one sees it at once.
    there.ram().attach_policy_to_user(
        rm.AttachPolicyToUserRequest(policy_name="AliyunRAMReadOnlyAccess", policy_type="System", user_name="roamer")
    )
    assert user.ims().list_users(m.ListUsersRequest()).body.users.user

    # A new default version, set on one server, replaces the compiled version both servers have cached.
    policy(acct, "Switchable", statement("Allow", "ram:GetGroup"))
    user.attach("Switchable", "Custom")
    acct.ims().create_group(m.CreateGroupRequest(group_name="g1"))
    for client in (user.ims(), user.ims(there)):
        client.get_group(m.GetGroupRequest(group_name="g1"))
    user.detach("AliyunRAMReadOnlyAccess")
    acct.ram().create_policy_version(
        rm.CreatePolicyVersionRequest(
            policy_name="Switchable",
            set_as_default=True,
            policy_document=json.dumps({"Version": "1", "Statement": [statement("Deny", "ram:GetGroup")]}),
        )
    )
    for client in (user.ims(), user.ims(there)):
        denied(lambda c=client: c.get_group(m.GetGroupRequest(group_name="g1")), "ExplicitDeny")
    there.ram().set_default_policy_version(rm.SetDefaultPolicyVersionRequest(policy_name="Switchable", version_id="v1"))
    for client in (user.ims(), user.ims(there)):
        client.get_group(m.GetGroupRequest(group_name="g1"))


def test_policy_actions_are_authorized_on_policy_and_user(acct: Account) -> None:
    new_user(acct, "dev-7")
    new_user(acct, "ops-7")
    policy(
        acct,
        "Delegate",
        statement(
            "Allow",
            ["ram:AttachPolicyToUser", "ram:DetachPolicyFromUser", "ram:GetPolicy"],
            ["acs:ram:*:*:policy/AliyunRAMReadOnlyAccess", "acs:ram:*:*:user/dev-*"],
        ),
    )
    delegate = Caller(acct, "delegate")
    delegate.attach("Delegate", "Custom")
    ram = delegate.ram()
    ram.attach_policy_to_user(
        rm.AttachPolicyToUserRequest(policy_name="AliyunRAMReadOnlyAccess", policy_type="System", user_name="dev-7")
    )
    ram.detach_policy_from_user(
        rm.DetachPolicyFromUserRequest(policy_name="AliyunRAMReadOnlyAccess", policy_type="System", user_name="dev-7")
    )
    assert (
        ram.get_policy(
            rm.GetPolicyRequest(policy_name="AliyunRAMReadOnlyAccess", policy_type="System")
        ).body.policy.policy_type
        == "System"
    )
    err = denied(
        lambda: ram.attach_policy_to_user(
            rm.AttachPolicyToUserRequest(policy_name="AliyunRAMReadOnlyAccess", policy_type="System", user_name="ops-7")
        )
    )
    assert err.data["AccessDeniedDetail"]["AuthAction"] == "ram:AttachPolicyToUser"
    denied(
        lambda: ram.attach_policy_to_user(
            rm.AttachPolicyToUserRequest(policy_name="AdministratorAccess", policy_type="System", user_name="dev-7")
        )
    )
    denied(lambda: ram.get_policy(rm.GetPolicyRequest(policy_name="Delegate", policy_type="Custom")))
    # The encoded diagnostic message is opaque to the caller.
    assert b"AttachPolicyToUser" not in base64.b64decode(err.data["AccessDeniedDetail"]["EncodedDiagnosticMessage"])


def test_account_wide_lists_and_self_service_use_user_and_group_arns(acct: Account) -> None:
    new_user(acct, "dev-3")
    acct.ims().create_group(m.CreateGroupRequest(group_name="team"))
    policy(acct, "UserAdmin", statement("Allow", "ram:*", "acs:ram:*:*:user/*"))
    admin = Caller(acct, "useradmin")
    admin.attach("UserAdmin", "Custom")
    ims = admin.ims()
    assert {u.user_principal_name for u in ims.list_users(m.ListUsersRequest()).body.users.user} == {
        acct.upn("dev-3"),
        admin.upn,
    }
    assert len(ims.list_user_basic_infos(m.ListUserBasicInfosRequest()).body.user_basic_infos.user_basic_info) == 2
    err = denied(lambda: ims.list_groups(m.ListGroupsRequest()))
    decoded = (
        acct.ram()
        .decode_diagnostic_message(
            rm.DecodeDiagnosticMessageRequest(
                encoded_diagnostic_message=err.data["AccessDeniedDetail"]["EncodedDiagnosticMessage"]
            )
        )
        .body.decoded_diagnostic_message
    )
    assert decoded.auth_resource == f"acs:ram:*:{acct.account_id}:group/*" and decoded.explicit_deny is False

    # ChangePassword is about the caller's own user: a Deny on that user's ARN stops it.
    password = "Initial-Pass-1234"
    changer = Caller(acct, "changer")
    acct.ims().create_login_profile(m.CreateLoginProfileRequest(user_principal_name=changer.upn, password=password))
    changer.ims().change_password(m.ChangePasswordRequest(old_password=password, new_password="Second-Pass-5678"))
    policy(acct, "FrozenPassword", statement("Deny", "ram:ChangePassword", "acs:ram:*:*:user/changer"))
    changer.attach("FrozenPassword", "Custom")
    denied(
        lambda: changer.ims().change_password(
            m.ChangePasswordRequest(old_password="Second-Pass-5678", new_password="Third-Pass-9012")
        ),
        "ExplicitDeny",
    )


def test_resources_are_named_as_ram_names_them(acct: Account) -> None:
    """System policies live under `system` (a grant on the account's policy/* cannot attach AdministratorAccess),
    membership changes are judged on the group and the user, MFA devices under mfa/, and a user's own name
    matches whatever its letter case."""
    mine = f"acs:ram:*:{acct.account_id}"
    bob = Caller(acct, "bob")
    policy(acct, "AttachCustom", statement("Allow", "ram:AttachPolicyToUser", [f"{mine}:policy/*", f"{mine}:user/*"]))
    bob.attach("AttachCustom", "Custom")
    escalate = rm.AttachPolicyToUserRequest(policy_name="AdministratorAccess", policy_type="System", user_name="bob")
    denied(lambda: bob.ram().attach_policy_to_user(escalate))
    policy(
        acct,
        "AttachReadOnly",
        statement(
            "Allow", "ram:AttachPolicyToUser", ["acs:ram:*:system:policy/AliyunRAMReadOnlyAccess", f"{mine}:user/*"]
        ),
    )
    bob.attach("AttachReadOnly", "Custom")
    bob.ram().attach_policy_to_user(
        rm.AttachPolicyToUserRequest(policy_name="AliyunRAMReadOnlyAccess", policy_type="System", user_name="bob")
    )

    acct.ims().create_group(m.CreateGroupRequest(group_name="team"))
    carol = Caller(acct, "carol")
    policy(acct, "GroupOnly", statement("Allow", "ram:AddUserToGroup", f"{mine}:group/team"))
    carol.attach("GroupOnly", "Custom")
    join = m.AddUserToGroupRequest(group_name="team", user_principal_name=bob.upn)
    denied(lambda: carol.ims().add_user_to_group(join))
    policy(acct, "GroupAndUsers", statement("Allow", "ram:AddUserToGroup", [f"{mine}:group/team", f"{mine}:user/b*"]))
    carol.attach("GroupAndUsers", "Custom")
    carol.ims().add_user_to_group(join)

    policy(
        acct,
        "MfaOnly",
        statement("Allow", ["ram:ListVirtualMFADevices", "ram:DeleteVirtualMFADevice"], f"{mine}:mfa/*"),
    )
    carol.attach("MfaOnly", "Custom")
    device = acct.ims().create_virtual_mfadevice(m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="spare")).body
    carol.ims().list_virtual_mfadevices(m.ListVirtualMFADevicesRequest())
    carol.ims().delete_virtual_mfadevice(
        m.DeleteVirtualMFADeviceRequest(serial_number=device.virtual_mfadevice.serial_number)
    )

    login, domain = carol.upn.split("@")
    assert (
        carol.ims()
        .get_user(m.GetUserRequest(user_principal_name=f"{login.upper()}@{domain.upper()}"))
        .body.user.user_id
        == carol.user_id
    )


def test_a_grant_on_custom_policies_cannot_attach_or_detach_a_system_policy(acct: Account) -> None:
    """`policy/*` of the account covers its custom policies only: leaving PolicyType out, or writing the
    system policy's name in another case, must not let a policy attacher give itself AdministratorAccess or
    take it away from an administrator. The policy acted on is the policy authorized."""
    arn = f"acs:ram:*:{acct.account_id}:"
    policy(
        acct,
        "AttachCustomOnly",
        statement(
            "Allow",
            [
                "ram:AttachPolicyToUser",
                "ram:DetachPolicyFromUser",
                "ram:AttachPolicyToGroup",
                "ram:DetachPolicyFromGroup",
            ],
            [arn + "policy/*", arn + "user/*", arn + "group/*"],
        ),
    )
    policy(acct, "Harmless", statement("Allow", "ram:GetUser", "*"))
    mallory = Caller(acct, "mallory")
    mallory.attach("AttachCustomOnly", "Custom")
    admin = Caller(acct, "admin")
    admin.attach("AdministratorAccess")
    acct.ims().create_group(m.CreateGroupRequest(group_name="admins"))
    acct.ram().attach_policy_to_group(
        rm.AttachPolicyToGroupRequest(policy_name="AdministratorAccess", policy_type="System", group_name="admins")
    )
    ram = mallory.ram()
    for name, kind in (("AdministratorAccess", None), ("administratoraccess", None), ("AdministratorAccess", "System")):
        denied(
            lambda: ram.attach_policy_to_user(
                rm.AttachPolicyToUserRequest(policy_name=name, policy_type=kind, user_name="mallory")
            )
        )
        denied(
            lambda: ram.detach_policy_from_user(
                rm.DetachPolicyFromUserRequest(policy_name=name, policy_type=kind, user_name="admin")
            )
        )
        denied(
            lambda: ram.attach_policy_to_group(
                rm.AttachPolicyToGroupRequest(policy_name=name, policy_type=kind, group_name="admins")
            )
        )
        denied(
            lambda: ram.detach_policy_from_group(
                rm.DetachPolicyFromGroupRequest(policy_name=name, policy_type=kind, group_name="admins")
            )
        )
    err = denied(
        lambda: ram.attach_policy_to_user(
            rm.AttachPolicyToUserRequest(policy_name="AdministratorAccess", user_name="mallory")
        )
    )
    decoded = (
        acct.ram()
        .decode_diagnostic_message(
            rm.DecodeDiagnosticMessageRequest(
                encoded_diagnostic_message=err.data["AccessDeniedDetail"]["EncodedDiagnosticMessage"]
            )
        )
        .body.decoded_diagnostic_message
    )
    assert decoded.auth_resource == "acs:ram:*:system:policy/AdministratorAccess"  # what was judged
    root = acct.ram()
    mine = root.list_policies_for_user(rm.ListPoliciesForUserRequest(user_name="mallory")).body.policies.policy
    assert [p.policy_name for p in mine] == ["AttachCustomOnly"]
    theirs = root.list_policies_for_user(rm.ListPoliciesForUserRequest(user_name="admin")).body.policies.policy
    assert [p.policy_name for p in theirs] == ["AdministratorAccess"]
    group = root.list_policies_for_group(rm.ListPoliciesForGroupRequest(group_name="admins")).body.policies.policy
    assert [p.policy_name for p in group] == ["AdministratorAccess"]
    # The grant still works for what it names: a custom policy, with or without PolicyType.
    ram.attach_policy_to_user(rm.AttachPolicyToUserRequest(policy_name="Harmless", user_name="mallory"))
    ram.detach_policy_from_user(
        rm.DetachPolicyFromUserRequest(policy_name="harmless", policy_type="Custom", user_name="mallory")
    )
    failed = acct.events(EventName="AttachPolicyToUser", ErrorCode="NoPermission")
    assert failed and all(e["userIdentity"]["userName"] == mallory.upn for e in failed)
