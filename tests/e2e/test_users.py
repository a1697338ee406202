"""RAM users through the official IMS SDK, with both signature versions, and their events."""

from __future__ import annotations

import pytest
from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from tests.support import Account


def error_of(call) -> TeaException:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    return info.value


@pytest.mark.parametrize("v2", [False, True], ids=["v3", "v2"])
def test_user_lifecycle_is_audited(acct: Account, v2: bool) -> None:
    ims = acct.ims(v2=v2)
    upn = acct.upn("alice")
    created = ims.create_user(
        m.CreateUserRequest(
            user_principal_name=upn,
            display_name="Alice",
            email="alice@example.com",
            mobile_phone="86-18600008888",
            comments="first user",
            tag=[m.CreateUserRequestTag(key="team", value="sre & sec")],
        )
    ).body
    assert created.user.user_principal_name == upn
    assert created.user.user_id.isdigit() and len(created.user.user_id) >= 16
    assert created.user.tags.tag[0].tag_key == "team" and created.user.tags.tag[0].tag_value == "sre & sec"

    got = ims.get_user(m.GetUserRequest(user_principal_name=upn)).body.user
    assert (got.display_name, got.email, got.mobile_phone, got.comments) == (
        "Alice",
        "alice@example.com",
        "86-18600008888",
        "first user",
    )
    assert ims.get_user(m.GetUserRequest(user_id=created.user.user_id)).body.user.user_principal_name == upn

    renamed = acct.upn("alice2")
    updated = ims.update_user(
        m.UpdateUserRequest(user_principal_name=upn, new_user_principal_name=renamed, new_display_name="Alice B")
    ).body.user
    assert updated.user_principal_name == renamed and updated.display_name == "Alice B"
    # Empty values: contact details and comments are cleared; a display name cannot be empty.
    cleared = ims.update_user(
        m.UpdateUserRequest(user_principal_name=renamed, new_email="", new_mobile_phone="", new_comments="")
    ).body.user
    assert (cleared.email, cleared.mobile_phone, cleared.comments, cleared.display_name) == ("", "", "", "Alice B")
    err = error_of(lambda: ims.update_user(m.UpdateUserRequest(user_principal_name=renamed, new_display_name="")))
    assert (err.code, err.statusCode) == ("InvalidParameter.NewDisplayName.Length", 400)
    assert [u.user_principal_name for u in ims.list_users(m.ListUsersRequest()).body.users.user] == [renamed]
    basic = ims.list_user_basic_infos(m.ListUserBasicInfosRequest()).body.user_basic_infos.user_basic_info
    assert [(b.user_principal_name, b.display_name) for b in basic] == [(renamed, "Alice B")]

    deleted = ims.delete_user(m.DeleteUserRequest(user_principal_name=renamed)).body
    err = error_of(lambda: ims.get_user(m.GetUserRequest(user_principal_name=renamed)))
    assert err.code == "EntityNotExist.User" and err.statusCode == 404

    event = acct.event_for(created.request_id)
    assert event["eventName"] == "CreateUser" and event["eventRW"] == "Write" and event["eventType"] == "ApiCall"
    assert event["serviceName"] == "Ims" and event["apiVersion"] == "2019-08-15" and event["isGlobal"] is True
    assert event["resourceType"] == "ACS::RAM::User" and event["resourceName"] == upn
    assert event["userIdentity"] == {
        "type": "root-account",
        "principalId": acct.account_id,
        "accountId": acct.account_id,
        "accessKeyId": acct.key_id,
        "userName": "root",
    }
    assert event["requestParameters"]["DisplayName"] == "Alice"
    assert event["responseElements"]["User"]["UserId"] == created.user.user_id
    assert event["sourceIpAddress"] == "127.0.0.1" and event["userAgent"].startswith("AlibabaCloud")
    assert "errorCode" not in event
    assert acct.event_for(deleted.request_id)["eventName"] == "DeleteUser"
    names = [(e["eventName"], e.get("errorCode")) for e in acct.events(ServiceName="Ims")]
    assert names == [
        ("GetUser", "EntityNotExist.User"),
        ("DeleteUser", None),
        ("ListUserBasicInfos", None),
        ("ListUsers", None),
        ("UpdateUser", "InvalidParameter.NewDisplayName.Length"),
        ("UpdateUser", None),
        ("UpdateUser", None),
        ("GetUser", None),
        ("GetUser", None),
        ("CreateUser", None),
    ]


def test_validation_errors_are_clear_and_audited(acct: Account) -> None:
    ims = acct.ims()
    cases = [
        (
            m.CreateUserRequest(user_principal_name=acct.upn("bad name!"), display_name="x"),
            "InvalidParameter.UserPrincipalName.InvalidChars",
        ),
        (
            m.CreateUserRequest(user_principal_name=acct.upn("ok"), display_name="x" * 25),
            "InvalidParameter.DisplayName.Length",
        ),
        (
            m.CreateUserRequest(user_principal_name="bob@elsewhere.example.com", display_name="Bob"),
            "InvalidParameter.UserPrincipalName.Domain",
        ),
        (m.CreateUserRequest(user_principal_name=acct.upn("ok2")), "MissingParameter"),
        (
            m.CreateUserRequest(
                user_principal_name=acct.upn("ok3"),
                display_name="x",
                tag=[m.CreateUserRequestTag(key="see", value="https://example.com")],
            ),
            "InvalidParameter.Tag.Value.InvalidChars",
        ),
    ]
    for request, code in cases:
        err = error_of(lambda: ims.create_user(request))
        assert err.code == code and err.statusCode == 400, (code, err.code)
        assert err.data["RequestId"] and err.data["HostId"] and err.data["Recommend"]
    failed = acct.events(EventName="CreateUser")
    assert sorted(e["errorCode"] for e in failed) == sorted(code for _, code in cases)
    assert ims.list_users(m.ListUsersRequest()).body.users.user == []


def test_duplicate_names_and_pagination(acct: Account) -> None:
    ims = acct.ims()
    for i in range(5):
        ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn(f"user{i}"), display_name=f"User {i}"))
    err = error_of(
        lambda: ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn("USER3"), display_name="again"))
    )
    assert err.code == "EntityAlreadyExists.User" and err.statusCode == 409
    seen, marker = [], None
    while True:
        body = ims.list_users(m.ListUsersRequest(max_items=2, marker=marker)).body
        seen += [u.user_principal_name for u in body.users.user]
        if not body.is_truncated:
            break
        marker = body.marker
    assert sorted(seen) == sorted(acct.upn(f"user{i}") for i in range(5))
    err = error_of(lambda: ims.list_users(m.ListUsersRequest(max_items=1001)))
    assert err.code == "InvalidParameter.MaxItems"


def test_tag_filter_and_summary(acct: Account) -> None:
    ims = acct.ims()
    ims.create_user(
        m.CreateUserRequest(
            user_principal_name=acct.upn("tagged"),
            display_name="T",
            tag=[m.CreateUserRequestTag(key="env", value="prod")],
        )
    )
    ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn("plain"), display_name="P"))
    only = ims.list_users(m.ListUsersRequest(tag=[m.ListUsersRequestTag(key="env", value="prod")])).body.users.user
    assert [u.user_principal_name for u in only] == [acct.upn("tagged")]
    summary = ims.get_account_summary().body.summary_map
    assert summary.users == 2 and summary.users_quota == 1000 and summary.access_keys_per_user_quota == 2
    assert ims.get_default_domain().body.default_domain_name == acct.domain


@pytest.mark.parametrize("v2", [False, True], ids=["v3", "v2"])
def test_characters_that_need_encoding_survive_signing(acct: Account, v2: bool) -> None:
    ims = acct.ims(v2=v2)
    upn = acct.upn("enc.o-d_e")
    user = ims.create_user(
        m.CreateUserRequest(
            user_principal_name=upn,
            display_name="Alice / Ops ~ é",
            comments="a b*c+d=e&f",
            tag=[m.CreateUserRequestTag(key="k~*", value="100% 中文")],
        )
    ).body.user
    assert (user.display_name, user.comments) == ("Alice / Ops ~ é", "a b*c+d=e&f")
    assert user.tags.tag[0].tag_value == "100% 中文"
